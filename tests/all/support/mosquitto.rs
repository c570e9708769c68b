//! A real mosquitto for the tests of an external broker.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use super::WAIT;

/// A mosquitto process on a free loopback port, killed on drop.
pub struct Mosquitto {
    pub addr: SocketAddr,
    child: Child,
    /// Its log lines so far.
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

/// Ports tried before [`Mosquitto::start`] gives up.
const PORT_TRIES: usize = 5;

impl Mosquitto {
    /// Starts mosquitto on a free port. The port is picked before mosquitto
    /// binds it, so another process may take it in between: then mosquitto
    /// exits ("Address already in use") and another port is tried.
    pub async fn start() -> Self {
        for _ in 0..PORT_TRIES {
            if let Some(broker) = Self::try_start().await {
                return broker;
            }
        }
        panic!("mosquitto did not start on any of {PORT_TRIES} free ports");
    }

    /// Mosquitto on a port free a moment ago; `None` when it exits before
    /// saying it runs.
    async fn try_start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            // Keep every message for a session that is away (the crash
            // test has thousands in flight), not mosquitto's default 1000.
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 0\n"
            ),
        )
        .unwrap();
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
        let broker = Self {
            addr: ([127, 0, 0, 1], port).into(),
            child,
            log,
            _dir: dir,
        };
        match tokio::time::timeout(WAIT, running).await {
            Ok(Ok(())) => Some(broker),
            Ok(Err(_)) => None,
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
