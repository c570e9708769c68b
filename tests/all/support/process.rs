//! `edgehook serve` as its own process, for tests that kill it or read its
//! log: the binary of this workspace, its ready line read for the bound
//! addresses (one JSON object, `--ready-format json`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::WAIT;

/// The API token of the host processes.
pub const TOKEN: &str = "crash-test-token-0123456789";

/// The `edgehook` binary of this workspace, as this test run built it
/// ([`edgehook_tests::edgehook_binary`]).
pub fn edgehook_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/all-… → target/debug
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    edgehook_tests::edgehook_binary(profile_dir)
}

/// Runs `edgehook ARGS` to its end; (success, stdout, stderr).
pub async fn cli(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(edgehook_binary())
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A temporary directory with a host's `data`, `plugins` and `webhooks`
/// directories, for [`serve_in`] and [`HostProcess::start`].
pub fn host_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for sub in ["data", "plugins", "webhooks"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("the host's directories");
    }
    dir
}

/// `edgehook serve` with its API on a free loopback port and the token
/// [`TOKEN`], its plugins, webhooks and data under `dir`, its ready line one
/// JSON object; killed on drop.
pub fn serve_in(dir: &Path) -> Command {
    let mut command = Command::new(edgehook_binary());
    command
        .arg("serve")
        .args(["--api-listen", "127.0.0.1:0", "--api-token", TOKEN])
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--plugins")
        .arg(dir.join("plugins"))
        .arg("--webhooks")
        .arg(dir.join("webhooks"))
        .args(["--ready-format", "json"])
        .kill_on_drop(true);
    command
}

/// `mqtt` and what most tests run with: private destinations allowed, no
/// retries, devices not paced.
fn usual<'a>(mqtt: &[&'a str]) -> Vec<&'a str> {
    let mut args = mqtt.to_vec();
    args.extend([
        "--allow-private-networks",
        "--retry-delays",
        "",
        "--device-publish-rate",
        super::UNPACED,
    ]);
    args
}

/// An `edgehook serve` process on `dir`, killed on drop.
pub struct HostProcess {
    child: Child,
    /// Its embedded broker's address, if it runs one.
    pub mqtt_addr: Option<SocketAddr>,
    /// Its embedded broker's TLS listener, if it has one.
    pub mqtt_tls_addr: Option<SocketAddr>,
    pub api_addr: SocketAddr,
}

/// The address under `key` in the ready object, if it has one.
fn address(ready: &serde_json::Value, key: &str) -> Option<SocketAddr> {
    let value = ready.get(key).filter(|value| !value.is_null())?;
    let text = value.as_str().expect("addresses are strings");
    Some(text.parse().expect("an address in the ready object"))
}

/// The ready object in `line` (`--ready-format json`), if it is one.
pub fn ready_object(line: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .filter(|object| object["edgehook"] == "ready")
}

impl HostProcess {
    /// Starts `edgehook serve` with `mqtt` (broker options) and the API on
    /// port 0, its plugins, webhooks and data under `dir`; the bound
    /// addresses are read from its ready line, so no port is picked before
    /// the host binds it.
    pub async fn start(dir: &Path, mqtt: &[&str]) -> Self {
        Self::start_with_env(dir, mqtt, &[]).await
    }

    /// [`HostProcess::start`] with extra environment variables.
    pub async fn start_with_env(dir: &Path, mqtt: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch(dir, &usual(mqtt), env, Stdio::inherit()).await
    }

    /// [`HostProcess::start`] logging at `info`, with its log lines
    /// (standard error), as they come.
    pub async fn start_logged(
        dir: &Path,
        mqtt: &[&str],
    ) -> (Self, mpsc::UnboundedReceiver<String>) {
        Self::logged(dir, &usual(mqtt)).await
    }

    /// A host on `dir` with the settings of the config file `config` (and
    /// its broker on a free loopback port unless the file says otherwise),
    /// with its log lines as they come: for the tests of the config file,
    /// which the command line's settings would hide.
    pub async fn start_configured(
        dir: &Path,
        config: &Path,
    ) -> (Self, mpsc::UnboundedReceiver<String>) {
        let config = config.to_str().expect("a UTF-8 path");
        Self::logged(dir, &["--config", config]).await
    }

    async fn logged(dir: &Path, args: &[&str]) -> (Self, mpsc::UnboundedReceiver<String>) {
        let mut host = Self::launch(dir, args, &[], Stdio::piped()).await;
        let mut lines = BufReader::new(host.child.stderr.take().unwrap()).lines();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                // Read to the end even when the test stopped listening, so
                // that the host never blocks on a full pipe.
                let _ = tx.send(line);
            }
        });
        (host, rx)
    }

    async fn launch(dir: &Path, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut child = serve_in(dir)
            .args(args)
            .env_remove("EDGEHOOK_LOG_LEVEL")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("edgehook starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(ready) = ready_object(&line) {
                    return ready;
                }
            }
            panic!("edgehook exited before it was ready");
        });
        let ready = ready.await.expect("edgehook ready in time");
        // Keep reading its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            mqtt_addr: address(&ready, "mqtt_listen"),
            mqtt_tls_addr: address(&ready, "mqtt_tls_listen"),
            api_addr: address(&ready, "api_listen").expect("the API address"),
        }
    }

    /// Kills the host with SIGKILL and waits for it.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.unwrap();
    }

    /// Asks the host to stop, as a service manager does (SIGTERM).
    pub fn terminate(&self) {
        self.signal(rustix::process::Signal::TERM);
    }

    /// Asks the host to read its configuration again (SIGHUP).
    pub fn hang_up(&self) {
        self.signal(rustix::process::Signal::HUP);
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = self.child.id().expect("the host is running");
        let pid = rustix::process::Pid::from_raw(i32::try_from(pid).expect("a pid"))
            .expect("a pid is not 0");
        rustix::process::kill_process(pid, signal).expect("signal sent");
    }

    /// Waits for the host to end by itself (within [`WAIT`]); its exit
    /// status.
    pub async fn exited(mut self) -> std::process::ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the host ended in time")
            .unwrap()
    }
}
