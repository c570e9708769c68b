//! A real mosquitto for the tests of an external broker: plain, or with a
//! TLS listener too, and restarted on the same ports when a test kills it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use super::WAIT;
use super::nats_secure::TlsFiles;

/// A mosquitto process on a free loopback port, killed on drop.
pub struct Mosquitto {
    pub addr: SocketAddr,
    /// Its TLS listener, if it has one ([`Mosquitto::start_tls`]).
    pub tls_addr: Option<SocketAddr>,
    /// The CA (PEM) that signed the TLS listener's certificate.
    pub ca_file: Option<PathBuf>,
    child: Child,
    /// Its log lines so far.
    log: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

/// Ports tried before [`Mosquitto::start`] gives up.
const PORT_TRIES: usize = 5;

impl Mosquitto {
    /// Starts mosquitto on a free port. The port is picked before mosquitto
    /// binds it, so another process may take it in between: then mosquitto
    /// exits ("Address already in use") and another port is tried.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// [`Mosquitto::start`] with a TLS listener too (on another free port),
    /// its certificate for `localhost` and `127.0.0.1` signed by a new CA,
    /// [`Mosquitto::ca_file`].
    pub async fn start_tls() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(tls: bool) -> Self {
        for _ in 0..PORT_TRIES {
            if let Some(broker) = Self::try_start(tls).await {
                return broker;
            }
        }
        panic!("mosquitto did not start on any of {PORT_TRIES} free ports");
    }

    /// Mosquitto on ports free a moment ago; `None` when it exits before
    /// saying it runs.
    async fn try_start(tls: bool) -> Option<Self> {
        let free_port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port()
        };
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        // Keep every message for a session that is away (the crash test has
        // thousands in flight), not mosquitto's default 1000.
        let mut conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 0\n"
        );
        let (mut tls_addr, mut ca_file) = (None, None);
        if tls {
            let files = TlsFiles::write(dir.path());
            let tls_port = free_port();
            conf.push_str(&format!(
                "listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
                files.server_cert.display(),
                files.server_key.display()
            ));
            tls_addr = Some(([127, 0, 0, 1], tls_port).into());
            ca_file = Some(files.ca);
        }
        std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
        let (child, log) = Self::spawn(dir.path()).await?;
        Some(Self {
            addr: ([127, 0, 0, 1], port).into(),
            tls_addr,
            ca_file,
            child,
            log,
            dir,
        })
    }

    /// Kills this mosquitto and starts it again on the same ports, with
    /// the same configuration and no session kept (`persistence false`).
    pub async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, log) = Self::spawn(self.dir.path())
            .await
            .expect("mosquitto runs again on its ports");
        self.child = child;
        self.log = log;
    }

    /// Runs mosquitto with `dir`'s `mosquitto.conf`; its process and log
    /// once it says it runs, `None` when it exits first.
    async fn spawn(dir: &Path) -> Option<(Child, Arc<Mutex<Vec<String>>>)> {
        let conf = dir.join("mosquitto.conf");
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto must be installed for the external-broker tests (apt-get install mosquitto)");
        // Mosquitto logs on stderr: "... running" once every listener is
        // open, or an error and the end of the stream when one is not. The
        // rest of its log is read and dropped so that it never blocks.
        let stderr = child.stderr.take().expect("piped stderr");
        let (running_tx, running) = tokio::sync::oneshot::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            let mut running_tx = Some(running_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.ends_with(" running")
                    && let Some(tx) = running_tx.take()
                {
                    let _ = tx.send(());
                }
                kept.lock().unwrap().push(line);
            }
        });
        match tokio::time::timeout(WAIT, running).await {
            Ok(Ok(())) => Some((child, log)),
            Ok(Err(_)) => {
                let _ = child.wait();
                None
            }
            Err(_) => panic!("mosquitto neither ran nor exited in time"),
        }
    }

    /// The MQTT protocol a client connected with, as mosquitto logged it
    /// (`New client connected from … as ID (p2, …)`): 2 for MQTT 3.1.1, 5
    /// for MQTT 5.
    pub fn protocol_of(&self, client_id: &str) -> Option<u8> {
        let marker = format!(" as {client_id} (p");
        let log = self.log.lock().unwrap();
        let line = log.iter().find(|l| l.contains(&marker))?;
        let rest = &line[line.find(&marker)? + marker.len()..];
        rest.split(',').next()?.parse().ok()
    }

    /// How many times a client connected as `client_id` so far, as
    /// mosquitto logged it.
    pub fn connections_of(&self, client_id: &str) -> usize {
        let marker = format!(" as {client_id} (p");
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| l.contains(&marker)).count()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
