//! The host under test: started by the tool in a temporary directory
//! (`--spawn`), and measured through `/proc` (CPU time and peak RSS).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::devices::Broker;

/// How long a spawned host may take to print its ready line (a debug build
/// compiles its built-in plugin first).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// What the ready line of `edgehook serve --ready-format json` says: one
/// JSON object, printed when the host takes events, with the bound
/// addresses (README, "Configuration reference").
#[derive(Debug, serde::Deserialize)]
struct Ready {
    edgehook: String,
    api_listen: SocketAddr,
    mqtt_listen: Option<SocketAddr>,
}

impl Ready {
    /// Reads the standard output of `child` (the host `binary`) until its
    /// ready line, then goes on reading it so that the host never blocks
    /// on a full pipe.
    async fn read(child: &mut Child, binary: &Path) -> anyhow::Result<Self> {
        let stdout = child.stdout.take().context("the host's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(ready) = Self::parse(&line) {
                    return Ok(Some(ready));
                }
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let ready = match ready {
            Ok(Ok(Some(ready))) => ready,
            Ok(Ok(None)) => bail!(
                "{} exited before it was ready: {}",
                binary.display(),
                child.wait().await?
            ),
            Ok(Err(err)) => return Err(err).context("reading the host's output"),
            Err(_) => bail!(
                "{} printed no ready line within {READY_TIMEOUT:?}",
                binary.display()
            ),
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ready)
    }

    /// The ready object in `line`, if it is one.
    fn parse(line: &str) -> Option<Self> {
        serde_json::from_str::<Self>(line)
            .ok()
            .filter(|ready| ready.edgehook == "ready")
    }
}

/// The spawned host's client id on an external broker. Its persistent
/// session is cleared before and after each run: messages a failed run
/// left queued would otherwise reach the next run's host.
const CLIENT_ID: &str = "edgehook-bench-host";

/// Clock ticks per second of `/proc/PID/stat` times: USER_HZ, which Linux
/// fixes at 100 for user space on every architecture it runs on today.
const CLOCK_TICKS: f64 = 100.0;

/// A host the tool started, with the addresses it was given.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    /// The process id.
    pub pid: u32,
    /// Base URL of its API.
    pub api: String,
    /// Its API token.
    pub token: String,
    /// Its embedded broker, unless it uses an external one.
    pub mqtt: Option<SocketAddr>,
    /// The external broker, where its session is kept.
    external: Option<Broker>,
    /// How it was started, to start it again.
    binary: PathBuf,
    args: Vec<String>,
    dir: TempDir,
}

impl Spawned {
    /// Starts `binary serve` in a fresh temporary directory on free
    /// loopback ports, with `mqtt_url` as its external broker if given
    /// (starting from a clean session there), with `--mqtt-auth devices` when
    /// `device_logins`, and `extra` arguments, and waits until it is ready.
    pub async fn start(
        binary: &Path,
        mqtt_url: Option<&str>,
        device_logins: bool,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let external = mqtt_url.map(Broker::from_url).transpose()?;
        if let Some(broker) = &external {
            broker.clear_session(CLIENT_ID).await?;
        }
        // The host runs in its directory: a relative path would be read from there.
        let binary =
            std::path::absolute(binary).with_context(|| format!("finding {}", binary.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("edgehook-bench-")
            .tempdir()
            .context("creating the host's temporary directory")?;
        let [data, plugins, webhooks] = ["data", "plugins", "webhooks"].map(|d| dir.path().join(d));
        for path in [&data, &plugins, &webhooks] {
            std::fs::create_dir(path).with_context(|| format!("creating {}", path.display()))?;
        }
        let token = generate_token();
        let mut args: Vec<String> = vec!["serve".into(), "--allow-private-networks".into()];
        for (flag, path) in [
            ("--data", &data),
            ("--plugins", &plugins),
            ("--webhooks", &webhooks),
        ] {
            args.extend([flag.to_owned(), path.display().to_string()]);
        }
        args.extend(["--api-token".to_owned(), token.clone()]);
        args.extend(["--ready-format".to_owned(), "json".to_owned()]);
        match mqtt_url {
            Some(url) => {
                args.extend(["--mqtt-url", url, "--mqtt-client-id", CLIENT_ID].map(str::to_owned))
            }
            // The load publishes far faster per device than a device may by
            // default: lift the limit (it is still checked on every event).
            None => args.extend(["--device-publish-rate", "1000000/s"].map(str::to_owned)),
        };
        if device_logins {
            args.extend(["--mqtt-auth", "devices"].map(str::to_owned));
        }
        args.extend_from_slice(extra);
        let listen = Listen {
            api: "127.0.0.1:0".parse()?,
            mqtt: mqtt_url
                .is_none()
                .then(|| "127.0.0.1:0".parse())
                .transpose()?,
        };
        let (child, pid, ready) = launch(&binary, &args, &listen, dir.path()).await?;
        Ok(Self {
            child,
            pid,
            api: format!("http://{}", ready.api_listen),
            token,
            mqtt: ready.mqtt_listen,
            external,
            binary,
            args,
            dir,
        })
    }

    /// Kills the host, as a crash would, and starts it again with the same
    /// data on the same ports; returns once it is ready again.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("stopping the host")?;
        let listen = Listen {
            api: self.api.trim_start_matches("http://").parse()?,
            mqtt: self.mqtt,
        };
        let (child, pid, _) = launch(&self.binary, &self.args, &listen, self.dir.path()).await?;
        self.child = child;
        self.pid = pid;
        Ok(())
    }

    /// Why the host is no longer running, if it is not.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(err) => Some(err.to_string()),
        }
    }

    /// Stops the host, clears its session on an external broker, and
    /// removes its directory.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("stopping the host")?;
        match &self.external {
            Some(broker) => broker.clear_session(CLIENT_ID).await,
            None => Ok(()),
        }
    }
}

/// Where a spawned host listens: port 0 for any free one.
struct Listen {
    api: SocketAddr,
    /// Its embedded broker; `None` with an external one.
    mqtt: Option<SocketAddr>,
}

/// Runs `binary args` in `dir`, listening on `listen`, and waits for its
/// ready line.
async fn launch(
    binary: &Path,
    args: &[String],
    listen: &Listen,
    dir: &Path,
) -> anyhow::Result<(Child, u32, Ready)> {
    let mut command = Command::new(binary);
    command
        .args(args)
        .args(["--api-listen", &listen.api.to_string()]);
    if let Some(mqtt) = listen.mqtt {
        command.args(["--mqtt-listen", &mqtt.to_string()]);
    }
    if std::env::var_os("EDGEHOOK_LOG_LEVEL").is_none() {
        command.env("EDGEHOOK_LOG_LEVEL", "warn");
    }
    let mut child = command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id().context("the host exited at once")?;
    let ready = Ready::read(&mut child, binary).await?;
    Ok((child, pid, ready))
}

/// A random token for the spawned host's API, from the standard library's
/// randomly seeded hasher.
fn generate_token() -> String {
    (0..2)
        .map(|_| format!("{:016x}", RandomState::new().build_hasher().finish()))
        .collect()
}

/// A process seen through `/proc`.
#[derive(Debug, Clone)]
pub struct Proc {
    dir: PathBuf,
}

impl Proc {
    /// The process `pid`.
    pub fn pid(pid: u32) -> Self {
        Self {
            dir: Path::new("/proc").join(pid.to_string()),
        }
    }

    /// This process.
    pub fn current() -> Self {
        Self {
            dir: PathBuf::from("/proc/self"),
        }
    }

    /// User plus system CPU time used so far; `None` where there is no
    /// `/proc` or the process is gone.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(self.dir.join("stat")).ok()?;
        // The command name, in parentheses, may hold spaces: count the
        // fields after it. It ends field 2; utime and stime are 14 and 15.
        let after_name = stat.get(stat.rfind(')')? + 2..)?;
        let mut fields = after_name.split(' ').skip(14 - 3);
        let utime: u64 = fields.next()?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        Some(Duration::from_secs_f64(
            (utime + stime) as f64 / CLOCK_TICKS,
        ))
    }

    /// The resident set size in bytes now (`VmRSS`).
    pub fn rss(&self) -> Option<u64> {
        self.status_kib("VmRSS:").map(|kib| kib * 1024)
    }

    /// A `/proc/PID/status` figure given in kB.
    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(self.dir.join("status")).ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix(field))?;
        line.trim().strip_suffix("kB")?.trim().parse().ok()
    }

    /// The peak resident set size in bytes (`VmHWM`).
    pub fn peak_rss(&self) -> Option<u64> {
        self.status_kib("VmHWM:").map(|kib| kib * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_a_peak_rss() {
        let me = Proc::current();
        assert!(me.cpu_time().is_some());
        assert!(me.peak_rss().is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn the_ready_object_gives_the_bound_addresses() {
        let line = r#"{"edgehook":"ready","api_listen":"127.0.0.1:8080","mqtt_listen":"127.0.0.1:1883","mqtt_url":null}"#;
        let ready = Ready::parse(line).expect("a ready object");
        assert_eq!(ready.api_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            ready.mqtt_listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:1883")
        );
        let external = r#"{"edgehook":"ready","api_listen":"127.0.0.1:1","mqtt_listen":null}"#;
        assert_eq!(Ready::parse(external).and_then(|r| r.mqtt_listen), None);
        assert!(Ready::parse("API token: x").is_none());
        assert!(Ready::parse(r#"{"edgehook":"stopping","api_listen":"127.0.0.1:1"}"#).is_none());
    }

    #[test]
    fn tokens_are_long_and_fresh() {
        let token = generate_token();
        assert_eq!(token.len(), 32);
        assert_ne!(token, generate_token());
    }
}
