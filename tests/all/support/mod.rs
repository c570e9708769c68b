//! What the black-box tests share: a host on loopback ports in a temporary
//! directory, plugin manifests, recording HTTP endpoints ([`endpoint`]), an
//! MQTT device ([`device`]), one that writes its packets by hand
//! ([`raw_device`]), devices publishing under load ([`load`]), a real
//! mosquitto ([`mosquitto`]), a real NATS JetStream cluster with TLS and the
//! hosts' login ([`nats`]) and one server with TLS and each kind of login
//! ([`nats_secure`]), the host as its own process ([`process`]) and a
//! WebSocket API client ([`ws`]).

mod device;
mod endpoint;
mod load;
mod login_client;
mod mosquitto;
mod nats;
mod nats_secure;
mod process;
mod raw_device;
mod ws;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgehook::config::{Config, Settings};
use edgehook::server::Host;

pub use device::Device;
pub use endpoint::{Arrival, Endpoint, Scripted, Seen, Step, verify_signature};
pub use load::{Acked, publish_under_load};
pub use login_client::{Heard, LoginClient, login_settled};
pub use mosquitto::Mosquitto;
pub use nats::NatsCluster;
pub use nats_secure::{HOSTS_PASSWORD, HOSTS_USER, Logins, OTHER_PASSWORD, OTHER_USER, SecureNats};
pub use process::{HostProcess, TOKEN, edgehook_binary, serve_in};
pub use raw_device::RawDevice;
pub use ws::Ws;

/// The publish rate of the tests' devices: the load tests publish as fast
/// as they can, far over a device's default rate; the tests of that limit
/// set their own.
pub const UNPACED: &str = "1000000/s";

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// A host running in a temporary directory, on loopback ports.
pub struct TestHost {
    pub host: Host,
    pub dir: tempfile::TempDir,
}

impl TestHost {
    /// Starts a host whose plugins directory holds `plugins` (name, wasm
    /// path, manifest text), with private networks allowed (the endpoints
    /// of the tests are on loopback) unless `settings` says otherwise.
    pub async fn start(plugins: &[(&str, &str, &str)], settings: Settings) -> Self {
        init_logging();
        let dir = tempfile::tempdir().expect("temporary directory");
        let plugins_dir = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins_dir).unwrap();
        for (name, wasm, manifest) in plugins {
            install(&plugins_dir, name, wasm, manifest);
        }
        let defaults = Settings {
            mqtt_listen: Some("127.0.0.1:0".parse().unwrap()),
            api_listen: Some("127.0.0.1:0".parse().unwrap()),
            plugins: Some(plugins_dir),
            webhooks: Some(dir.path().join("webhooks")),
            data: Some(dir.path().join("data")),
            allow_private_networks: Some(true),
            plugin_instances: Some(32),
            // The tests of other behaviour want the first failure's
            // hook-error at once; tests of retries set their own.
            retry_delays: Some(String::new()),
            device_publish_rate: Some(UNPACED.into()),
            ..Settings::default()
        };
        let settings = if settings.mqtt_url.is_some() {
            Settings {
                mqtt_listen: None,
                ..settings.or(defaults)
            }
        } else {
            settings.or(defaults)
        };
        let cfg = Config::build(settings).expect("valid test configuration");
        let host = Host::start(cfg).await.expect("host starts");
        Self { host, dir }
    }

    /// Stops this host and starts another on the same plugins, webhooks and
    /// data directories (loopback ports again); the directories live on in
    /// the returned [`TestHost`].
    pub async fn restart(self) -> Self {
        let Self { host, dir } = self;
        host.stop().await;
        let cfg = Config::build(Settings {
            mqtt_listen: Some("127.0.0.1:0".parse().unwrap()),
            api_listen: Some("127.0.0.1:0".parse().unwrap()),
            plugins: Some(dir.path().join("plugins")),
            webhooks: Some(dir.path().join("webhooks")),
            data: Some(dir.path().join("data")),
            allow_private_networks: Some(true),
            retry_delays: Some(String::new()),
            device_publish_rate: Some(UNPACED.into()),
            ..Settings::default()
        })
        .expect("valid test configuration");
        let host = Host::start(cfg).await.expect("host restarts");
        Self { host, dir }
    }

    /// Adds a webhook on the event `marker` that posts to `url`, and has
    /// `device` publish `marker`: a marker sent after what must not arrive
    /// (see [`Endpoint::before_marker`]).
    pub async fn send_marker(&self, device: &Device, url: String) {
        self.create_webhook(serde_json::json!({ "event": "marker", "url": url }))
            .await;
        device.publish("marker", "").await;
    }

    /// The plugins directory.
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// The embedded broker's address.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.host.mqtt_addr.expect("embedded broker")
    }

    /// `GET path` on the API with the token; (status, JSON body).
    pub async fn api_get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        http_get(self.host.api_addr, path, token).await
    }

    /// `method path` on the API with the host's token and a raw body;
    /// (status, JSON body).
    pub async fn api(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        http_request(
            self.host.api_addr,
            method,
            path,
            Some(&self.host.api_token),
            body,
        )
        .await
    }

    /// Registers `groups`, then `devices` (id, group) through the API.
    pub async fn register(&self, groups: &[&str], devices: &[(&str, Option<&str>)]) {
        for id in groups {
            let (status, body) = self
                .api(
                    "POST",
                    "/v1/groups",
                    &serde_json::json!({ "id": id }).to_string(),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        for (id, group) in devices {
            let device = serde_json::json!({ "id": id, "group": group });
            let (status, body) = self.api("POST", "/v1/devices", &device.to_string()).await;
            assert_eq!(status, 201, "{body}");
        }
    }

    /// Registers device `id` in no group; its key.
    pub async fn register_device(&self, id: &str) -> String {
        let device = serde_json::json!({ "id": id });
        let (status, device) = self.api("POST", "/v1/devices", &device.to_string()).await;
        assert_eq!(status, 201, "{device}");
        device["key"].as_str().unwrap().to_owned()
    }

    /// Waits until the delivery log of webhook `id` satisfies `pred`
    /// (polled), or panics; the log.
    pub async fn wait_for_log(
        &self,
        id: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, log) = self.api("GET", &format!("/v1/webhooks/{id}/log"), "").await;
            assert_eq!(status, 200, "{log}");
            if pred(&log) {
                return log;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the log of webhook {id} never got there; last: {log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of `GET /metrics`, with the token.
    pub async fn metrics(&self) -> String {
        let (status, body) = self.api("GET", "/metrics", "").await;
        assert_eq!(status, 200, "{body}");
        body.as_str()
            .expect("metrics are text, not JSON")
            .to_owned()
    }

    /// The value of the counter or gauge `name` (labels included) on
    /// `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        metric_in(&self.metrics().await, name)
    }

    /// Creates a Particle-style webhook through the API; its id.
    pub async fn create_webhook(&self, definition: serde_json::Value) -> String {
        let (status, body) = self
            .api("POST", "/v1/webhooks", &definition.to_string())
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"]
            .as_str()
            .expect("the new webhook's id")
            .to_owned()
    }

    /// The API's `/v1/plugins` entry of `name`, if listed.
    pub async fn plugin_status(&self, name: &str) -> Option<serde_json::Value> {
        let (status, body) = self
            .api_get("/v1/plugins", Some(&self.host.api_token.clone()))
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    /// Waits until `name`'s status satisfies `pred`, or panics.
    pub async fn wait_for_plugin(
        &self,
        name: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let status = self.plugin_status(name).await.unwrap_or_default();
            if pred(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "plugin {name} never reached the state; last: {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The manifest of a `behave` plugin on `event` that acts in `mode` and
/// may post to `url` on 127.0.0.1, with `limits` (TOML lines) if any.
pub fn behave_manifest(event: &str, mode: &str, url: &str, limits: &str) -> String {
    format!(
        "event = \"{event}\"\nallowed_hosts = [\"127.0.0.1\"]\n[config]\nmode = \"{mode}\"\nurl = \"{url}\"\n[limits]\n{limits}\n"
    )
}

/// The manifest of a `behave` plugin that forwards `event` to `url`.
pub fn forward_manifest(event: &str, url: &str) -> String {
    behave_manifest(event, "forward", url, "")
}

/// 4 KiB that are not WebAssembly, the same on every run.
pub fn not_wasm() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect()
}

/// Copies `wasm` and writes `manifest` as `NAME.wasm` / `NAME.toml`.
pub fn install(dir: &Path, name: &str, wasm: &str, manifest: &str) {
    std::fs::write(dir.join(format!("{name}.toml")), manifest).unwrap();
    std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("EDGEHOOK_LOG_LEVEL").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

/// A minimal HTTP GET over a real socket, with an optional bearer token.
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    http_request(addr, "GET", path, token, "").await
}

/// A minimal HTTP/1.1 request over a real socket, with an optional bearer
/// token and a JSON body; (status, body as JSON, or as a string).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// What `next` gives before the first item `is_marker` accepts (which is
/// dropped).
async fn before<T>(mut next: impl AsyncFnMut() -> T, is_marker: impl Fn(&T) -> bool) -> Vec<T> {
    let mut before = Vec::new();
    loop {
        let item = next().await;
        if is_marker(&item) {
            return before;
        }
        before.push(item);
    }
}

/// A loopback port that refuses connections, held (bound, not listening)
/// for as long as the returned socket lives, so no other test can take it.
pub fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// The value of the unlabelled counter or gauge `name` in the text of
/// `/metrics`.
pub fn metric_in(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} in /metrics"))
        .parse()
        .unwrap()
}
