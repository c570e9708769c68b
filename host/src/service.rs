//! Telling a service manager (systemd's `Type=notify`) how the host is:
//! `READY=1` once it serves, `STOPPING=1` when a stop begins, and
//! `WATCHDOG=1` every half `WATCHDOG_USEC` while the pipeline's loop is
//! alive ([`Liveness`]): a loop that is stuck stops the pings, and the
//! manager restarts the host. Without `NOTIFY_SOCKET` nothing is sent.
//!
//! The protocol is one datagram per message on the Unix socket named by
//! `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The service manager's socket, when the host runs under one.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    /// Where the datagrams go.
    to: std::os::unix::net::SocketAddr,
    /// Every half of the manager's watchdog timeout, when it has one for
    /// this process.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` names; `None` without one (or when it
    /// cannot be used, which is logged).
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let to = match address(&path) {
            Ok(to) => to,
            Err(err) => {
                tracing::warn!("NOTIFY_SOCKET {path:?} cannot be used: {err}");
                return None;
            }
        };
        let socket = match UnixDatagram::unbound() {
            Ok(socket) => socket,
            Err(err) => {
                tracing::warn!("no socket for the service manager's notifications: {err}");
                return None;
            }
        };
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|pid| pid.parse() == Ok(std::process::id()));
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|&usec| usec > 0 && for_us)
            .map(|usec| Duration::from_micros(usec) / 2);
        Some(Self {
            socket,
            to,
            watchdog,
        })
    }

    /// Sends `state` (`READY=1`, …); a failure is logged, never fatal.
    pub fn notify(&self, state: &str) {
        if let Err(err) = self.socket.send_to_addr(state.as_bytes(), &self.to) {
            tracing::warn!("cannot tell the service manager {state}: {err}");
        }
    }

    /// Pings the watchdog every half its timeout while `alive` says the
    /// pipeline's loop went round lately, until `shutdown`.
    pub async fn watch(self: Arc<Self>, alive: Liveness, shutdown: CancellationToken) {
        let Some(every) = self.watchdog else {
            return;
        };
        let mut ticks = tokio::time::interval(every);
        let mut quiet = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            // A loop waiting for work goes round every BEAT.
            let window = (every * 2).max(Liveness::BEAT * 3);
            if alive.within(window) {
                if std::mem::take(&mut quiet) {
                    tracing::info!("the pipeline goes round again; watchdog pings resumed");
                }
                self.notify("WATCHDOG=1");
            } else if !std::mem::replace(&mut quiet, true) {
                tracing::error!(
                    "the pipeline has not gone round for {}: no watchdog pings, the service manager will restart the host",
                    humantime::format_duration(window)
                );
            }
        }
    }
}

/// `NOTIFY_SOCKET`'s value as an address.
fn address(path: &std::ffi::OsStr) -> std::io::Result<std::os::unix::net::SocketAddr> {
    use std::os::unix::ffi::OsStrExt as _;
    let bytes = path.as_bytes();
    match bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        Some(name) => <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name),
        #[cfg(not(target_os = "linux"))]
        Some(_) => Err(std::io::Error::other("abstract sockets are Linux's")),
        None => std::os::unix::net::SocketAddr::from_pathname(path),
    }
}

/// When the pipeline's loop last went round, shared with the watchdog.
#[derive(Debug, Clone)]
pub struct Liveness {
    since: Instant,
    /// Milliseconds after `since`.
    last: Arc<AtomicU64>,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            since: Instant::now(),
            last: Arc::default(),
        }
    }
}

impl Liveness {
    /// How often a loop that waits for work says it is alive.
    pub const BEAT: Duration = Duration::from_secs(1);

    /// The loop went round now.
    pub fn beat(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Whether the loop went round within `window`.
    pub fn within(&self, window: Duration) -> bool {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.since.elapsed().saturating_sub(last) <= window
    }
}

#[cfg(test)]
mod tests {
    use super::Liveness;
    use std::time::Duration;

    #[test]
    fn a_loop_that_stops_beating_is_not_alive() {
        let alive = Liveness::default();
        alive.beat();
        assert!(alive.within(Duration::from_millis(500)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!alive.within(Duration::from_millis(30)));
        alive.beat();
        assert!(alive.within(Duration::from_millis(30)));
    }
}
