//! The API's accept loop: HTTP/1 over TCP with the limits of a server that
//! anyone on the network may connect to.
//!
//! - A new connection, or one whose next request has begun, has
//!   [`ApiLimits::header_timeout`] to finish the request's headers; a
//!   keep-alive connection may wait [`ApiLimits::idle_timeout`] before it
//!   begins the next. Neither runs while a request is being answered, so a
//!   long `GET /v1/events` stream is never cut. [`Patience`] is that
//!   policy, without I/O.
//! - At most [`ApiLimits::max_connections`] connections are served at once.
//!   The loop does not accept beyond that: further connections wait in the
//!   listen backlog (then the kernel refuses them) until one closes. A
//!   WebSocket (`/v1/stream`) leaves this count once upgraded; it has its
//!   own limit.
//! - On shutdown it stops accepting, lets each connection finish its
//!   request in progress, closes idle ones, and returns when all are gone.

use std::io;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use crate::config::ApiLimits;

/// Serves `app` on `listener` until `shutdown` is cancelled and every
/// connection has finished.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ApiLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors, or a connection reset before
                    // it was taken: the listener itself is fine.
                    tracing::warn!("API: cannot accept a connection: {err}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            connection(stream, app, limits, shutdown).await;
            drop(slot);
        });
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

/// The pause after a failed `accept`, so that running out of file
/// descriptors does not spin the loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

async fn connection(
    stream: TcpStream,
    app: Router,
    limits: ApiLimits,
    shutdown: CancellationToken,
) {
    let watch = Arc::new(Watch {
        patience: Mutex::new(Patience::new(limits, Instant::now())),
        changed: Notify::new(),
    });
    let io = TokioIo::new(Watched {
        stream,
        watch: watch.clone(),
    });
    let service_watch = watch.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let answering = Answering::start(service_watch.clone());
        let mut app = app.clone();
        async move {
            let response = tower_service::Service::call(&mut app, request.map(Body::new)).await?;
            // The request counts as answered when its body is dropped:
            // written out, or the connection gone.
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _answering = &answering;
                    frame
                }))
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // [`Watch`] times headers and idleness; hyper's own header timer would
    // also run while a keep-alive connection is idle.
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!("API connection ended: {err}");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = watch.expired() => {
                tracing::debug!("API connection closed: headers too slow or idle too long");
                return;
            }
        }
    }
}

/// Where a connection is in its life, for its deadlines: pure, driven by
/// the connection's reads and requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    phase: Phase,
    limits: ApiLimits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's headers, since this instant.
    Headers(Instant),
    /// Answering this many requests.
    Answering(usize),
    /// Idle between requests, since this instant.
    Idle(Instant),
}

impl Patience {
    /// A connection accepted at `now`: its first headers are due.
    pub fn new(limits: ApiLimits, now: Instant) -> Self {
        Self {
            phase: Phase::Headers(now),
            limits,
        }
    }

    /// Bytes arrived at `now`; on an idle connection they begin a request.
    /// Whether the deadline changed.
    pub fn read(&mut self, now: Instant) -> bool {
        let idle = matches!(self.phase, Phase::Idle(_));
        if idle {
            self.phase = Phase::Headers(now);
        }
        idle
    }

    /// A request's headers are in: no deadline until it is answered.
    pub fn request(&mut self) {
        self.phase = match self.phase {
            Phase::Answering(n) => Phase::Answering(n + 1),
            Phase::Headers(_) | Phase::Idle(_) => Phase::Answering(1),
        };
    }

    /// A request was answered at `now`.
    pub fn answered(&mut self, now: Instant) {
        self.phase = match self.phase {
            Phase::Answering(n) if n > 1 => Phase::Answering(n - 1),
            _ => Phase::Idle(now),
        };
    }

    /// When the connection is to be closed, unless something happens first.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Headers(since) => Some(since + self.limits.header_timeout),
            Phase::Idle(since) => Some(since + self.limits.idle_timeout),
            Phase::Answering(_) => None,
        }
    }
}

/// A connection's [`Patience`], shared by its reads, its requests and the
/// task that closes it.
#[derive(Debug)]
struct Watch {
    patience: Mutex<Patience>,
    /// Told whenever the deadline changes.
    changed: Notify,
}

impl Watch {
    fn update<T>(&self, change: impl FnOnce(&mut Patience) -> T) -> T {
        let result = change(&mut self.patience.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_one();
        result
    }

    fn deadline(&self) -> Option<Instant> {
        self.patience
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .deadline()
    }

    /// Resolves once the deadline in force has passed.
    async fn expired(&self) {
        loop {
            let changed = self.changed.notified();
            match self.deadline() {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// One request being answered; dropping it marks it answered.
struct Answering(Arc<Watch>);

impl Answering {
    fn start(watch: Arc<Watch>) -> Self {
        watch.update(Patience::request);
        Self(watch)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.update(|p| p.answered(Instant::now()));
    }
}

/// The connection's socket, telling its [`Watch`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            let mut patience = self
                .watch
                .patience
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if patience.read(Instant::now()) {
                self.watch.changed.notify_one();
            }
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// The deadlines of one keep-alive connection through two requests,
    /// one of them a long stream, with the README's 10 s and 60 s ("HTTP API").
    #[test]
    fn headers_have_ten_seconds_and_idleness_sixty_but_answers_have_no_deadline() {
        let t0 = Instant::now();
        let mut p = Patience::new(ApiLimits::default(), t0);
        assert_eq!(p.deadline(), Some(t0 + 10 * S), "a new connection");
        assert!(!p.read(t0 + 3 * S), "bytes of the first request");
        assert_eq!(p.deadline(), Some(t0 + 10 * S), "trickling buys no time");
        p.request();
        assert_eq!(p.deadline(), None, "an answer (a stream) may take hours");
        p.answered(t0 + 3600 * S);
        assert_eq!(p.deadline(), Some(t0 + 3660 * S), "idle after the answer");
        assert!(p.read(t0 + 3650 * S), "the next request begins");
        assert_eq!(p.deadline(), Some(t0 + 3660 * S), "its headers are due");
        assert!(!p.read(t0 + 3655 * S));
        assert_eq!(p.deadline(), Some(t0 + 3660 * S));
        p.request();
        p.request();
        p.answered(t0 + 3700 * S);
        assert_eq!(p.deadline(), None, "one of two answered");
        p.answered(t0 + 3701 * S);
        assert_eq!(p.deadline(), Some(t0 + 3761 * S));
    }
}
