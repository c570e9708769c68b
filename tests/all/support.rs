//! What the black-box tests share: a host on loopback ports in a temporary
//! directory, a recording HTTP endpoint, and an MQTT device.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use edgehook::config::{Config, Settings};
use edgehook::server::Host;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

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
            ..Settings::default()
        })
        .expect("valid test configuration");
        let host = Host::start(cfg).await.expect("host restarts");
        Self { host, dir }
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
}

/// Copies `wasm` and writes `manifest` as `NAME.wasm` / `NAME.toml`.
pub fn install(dir: &Path, name: &str, wasm: &str, manifest: &str) {
    std::fs::write(dir.join(format!("{name}.toml")), manifest).unwrap();
    std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("EDGEHOOK_LOG").unwrap_or_else(|_| "warn".into()))
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

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How the endpoint answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub delay: Duration,
}

/// A real HTTP server on 127.0.0.1 that records requests and answers as
/// told.
pub struct Endpoint {
    pub addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

type EndpointState = (Arc<Mutex<Answer>>, mpsc::UnboundedSender<Seen>);

impl Endpoint {
    /// Starts answering `status` with `body`.
    pub async fn start(status: u16, body: impl Into<Vec<u8>>) -> Self {
        let answer = Arc::new(Mutex::new(Answer {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }));
        let (tx, seen) = mpsc::unbounded_channel();
        let app = axum::Router::new()
            .fallback(record)
            .with_state((answer.clone(), tx));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, answer, seen }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes the answer.
    pub fn answer(&self, status: u16, body: impl Into<Vec<u8>>, delay: Duration) {
        *self.answer.lock().unwrap() = Answer {
            status,
            body: body.into(),
            delay,
        };
    }

    /// The next request, or panics after [`WAIT`].
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("no request reached the endpoint in time")
            .unwrap()
    }

    /// Whether a request arrives within `d`.
    pub async fn nothing_within(&mut self, d: Duration) -> bool {
        tokio::time::timeout(d, self.seen.recv()).await.is_err()
    }
}

async fn record(
    State((answer, tx)): State<EndpointState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let _ = tx.send(Seen {
        method,
        uri,
        headers,
        body,
    });
    let answer = answer.lock().unwrap().clone();
    tokio::time::sleep(answer.delay).await;
    (StatusCode::from_u16(answer.status).unwrap(), answer.body)
}

/// An MQTT device: publishes events and collects what the host sends it.
pub struct Device {
    pub id: String,
    client: AsyncClient,
    inbox: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
}

impl Device {
    /// Connects to `addr` as `id` and subscribes to `devices/{id}/#`.
    pub async fn connect(addr: SocketAddr, id: &str) -> Self {
        let mut opts = MqttOptions::new(
            format!("{id}-{}", std::process::id()),
            addr.ip().to_string(),
            addr.port(),
        );
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, inbox) = mpsc::unbounded_channel();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        let own_events = format!("devices/{id}/events/");
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    // Its own events come back through `devices/{id}/#`; a
                    // device cares only about what the host sends it.
                    Ok(Event::Incoming(Packet::Publish(p))) if p.topic.starts_with(&own_events) => {
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        client
            .subscribe(format!("devices/{id}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        tokio::time::timeout(WAIT, ready)
            .await
            .expect("subscribed in time")
            .unwrap();
        Self {
            id: id.to_owned(),
            client,
            inbox,
        }
    }

    /// Publishes `data` on `devices/{id}/events/{name}` with QoS 1.
    pub async fn publish(&self, name: &str, data: impl Into<Vec<u8>>) {
        self.publish_raw(&format!("devices/{}/events/{name}", self.id), data)
            .await;
    }

    /// Publishes on any topic with QoS 1.
    pub async fn publish_raw(&self, topic: &str, data: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, data.into())
            .await
            .unwrap();
    }

    /// The next message for this device, or panics after [`WAIT`].
    pub async fn next(&mut self) -> (String, Vec<u8>) {
        tokio::time::timeout(WAIT, self.inbox.recv())
            .await
            .expect("no message reached the device in time")
            .unwrap()
    }

    /// The next message, as (topic, UTF-8 text).
    pub async fn next_text(&mut self) -> (String, String) {
        let (topic, payload) = self.next().await;
        (topic, String::from_utf8(payload).expect("UTF-8 payload"))
    }

    /// Whether any message arrives within `d`.
    pub async fn nothing_within(&mut self, d: Duration) -> bool {
        tokio::time::timeout(d, self.inbox.recv()).await.is_err()
    }
}

/// One answer of a [`Scripted`] endpoint.
#[derive(Debug, Clone)]
pub enum Step {
    /// Answers with this status, headers and body after `delay`.
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        delay: Duration,
    },
    /// Reads the request, then closes the connection without an answer.
    Close,
}

impl Step {
    /// Answers `status` with `body` at once.
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// This answer with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Self::Answer { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// This answer, given only after `d`.
    pub fn after(mut self, d: Duration) -> Self {
        if let Self::Answer { delay, .. } = &mut self {
            *delay = d;
        }
        self
    }
}

/// One request as a [`Scripted`] endpoint saw it, and when.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub seen: Seen,
    pub at: tokio::time::Instant,
}

/// A real HTTP/1.1 server on 127.0.0.1 that gives its script's answers in
/// turn (the last one for ever after), records every request with the
/// time it arrived, and keeps the most requests it ever had in progress.
pub struct Scripted {
    pub addr: SocketAddr,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    peak: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts a request in progress until dropped (also when the client
/// gives up on it).
struct InProgress(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Scripted {
    /// Starts answering with `script`, which must not be empty.
    pub async fn start(script: Vec<Step>) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use http_body_util::{BodyExt, Full};
        use hyper::service::service_fn;
        use hyper_util::rt::TokioIo;

        assert!(!script.is_empty(), "a script needs at least one step");
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        let in_progress = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (tx, arrivals) = mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peak_in_server = peak.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (script, in_progress, peak, tx) = (
                    script.clone(),
                    in_progress.clone(),
                    peak_in_server.clone(),
                    tx.clone(),
                );
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let (script, in_progress, peak, tx) = (
                        script.clone(),
                        in_progress.clone(),
                        peak.clone(),
                        tx.clone(),
                    );
                    async move {
                        let now = in_progress.fetch_add(1, Ordering::SeqCst) + 1;
                        let _counted = InProgress(in_progress);
                        peak.fetch_max(now, Ordering::SeqCst);
                        let at = tokio::time::Instant::now();
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let _ = tx.send(Arrival {
                            seen: Seen {
                                method: parts.method,
                                uri: parts.uri,
                                headers: parts.headers,
                                body,
                            },
                            at,
                        });
                        let step = {
                            let mut script = script.lock().unwrap();
                            if script.len() > 1 {
                                script.pop_front().unwrap()
                            } else {
                                script[0].clone()
                            }
                        };
                        match step {
                            Step::Close => Err(std::io::Error::other("closed without an answer")),
                            Step::Answer {
                                status,
                                headers,
                                body,
                                delay,
                            } => {
                                tokio::time::sleep(delay).await;
                                let mut response =
                                    hyper::Response::new(Full::new(Bytes::from(body)));
                                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                                for (name, value) in headers {
                                    response.headers_mut().append(
                                        axum::http::HeaderName::from_bytes(name.as_bytes())
                                            .unwrap(),
                                        value.parse().unwrap(),
                                    );
                                }
                                Ok(response)
                            }
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            arrivals,
            peak,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://localhost:PORT{path}`: the same server under another host
    /// name, which the host throttles apart from `127.0.0.1`.
    pub fn localhost_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr.port())
    }

    /// The next request, or panics after [`WAIT`].
    pub async fn next(&mut self) -> Arrival {
        tokio::time::timeout(WAIT, self.arrivals.recv())
            .await
            .expect("no request reached the endpoint in time")
            .unwrap()
    }

    /// Whether a request arrives within `d`.
    pub async fn nothing_within(&mut self, d: Duration) -> bool {
        tokio::time::timeout(d, self.arrivals.recv()).await.is_err()
    }

    /// The most requests the server ever had in progress at once.
    pub fn peak_in_progress(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Device {
    /// The next message as (topic, UTF-8 text), if one arrives within `d`.
    pub async fn next_text_within(&mut self, d: Duration) -> Option<(String, String)> {
        let (topic, payload) = tokio::time::timeout(d, self.inbox.recv()).await.ok()??;
        Some((topic, String::from_utf8(payload).expect("UTF-8 payload")))
    }
}
