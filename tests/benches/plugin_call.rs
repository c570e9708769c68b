//! Per-event cost of the sandbox: a fresh store and instance of a plugin
//! plus one call — the ThingSpeak example's `on-event` and `on-response`,
//! and the built-in `particle` plugin rendering a typical JSON template
//! with four variables (and a whole event of it: both calls, in two
//! instances or in one), and the built-in `iottly` and `mainflux` plugins
//! (their only call per event: they leave the answer to nobody), and the
//! `stateful` fixture's key-value operations on a real `data/kv.redb`
//! (every write on disk before it returns) and, when `nats-server` is on
//! the PATH, on JetStream KV as a cluster keeps them (a server on
//! loopback, every write acknowledged by it). Run with
//! `cargo bench -p edgehook-tests`.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use edgehook::event::Event;
use edgehook::exchange::{HookResponse, Outcome};
use edgehook::nats::Nats;
use edgehook::nats::auth::NatsAuth;
use edgehook::nats::plugin_state::SharedState;
use edgehook::runtime::{EngineOptions, Limits, Plugin, WasmEngine};
use edgehook::stores::{KeyValue, KvFile};
use edgehook::topic::{DeviceId, EventName};

/// A single-threaded runtime to drive calls, and `wasm` loaded with
/// `config` on an engine without a compiled-code cache.
fn load(wasm: &str, name: &str, config: &serde_json::Value) -> (tokio::runtime::Runtime, Plugin) {
    (runtime(), load_in(wasm, name, config, None))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `wasm` loaded with `config` and plugin state kept in `kv`.
fn load_in(
    wasm: &str,
    name: &str,
    config: &serde_json::Value,
    kv: Option<Arc<dyn KeyValue>>,
) -> Plugin {
    let engine = WasmEngine::new(&EngineOptions {
        instances: 16,
        max_memory: 64 << 20,
        cache_dir: None,
        kv,
    })
    .unwrap();
    let wasm = std::fs::read(wasm).unwrap();
    Plugin::load(&engine, name, &wasm, config, Limits::default()).unwrap()
}

fn plugin_call(c: &mut Criterion) {
    let config = serde_json::json!({
        "url": "https://api.thingspeak.com/update",
        "api_key": "XXXXXXXXXXXXXXXX",
        "fields": { "temp": "field1", "hum": "field2" },
    });
    let (runtime, plugin) = load(edgehook_tests::THINGSPEAK, "thingspeak", &config);
    let event = Event::received(
        DeviceId::try_from("dev-0001").unwrap(),
        EventName::try_from("temp").unwrap(),
        Bytes::from_static(br#"{"temp": 21.5, "hum": 40}"#),
    );
    let outcome = Outcome::Response(HookResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: Bytes::from_static(b"4711"),
    });

    c.bench_function("thingspeak on-event (fresh instance)", |b| {
        b.iter(|| {
            runtime
                .block_on(plugin.on_event(black_box(&event), None))
                .unwrap()
        });
    });
    c.bench_function("thingspeak on-response (fresh instance)", |b| {
        b.iter(|| {
            runtime
                .block_on(plugin.on_response(black_box(&event), None, black_box(&outcome), None))
                .unwrap()
        });
    });
}

fn particle_call(c: &mut Criterion) {
    let webhook = serde_json::json!({
        "event": "temp",
        "url": "https://example.com/readings",
        "json": {
            "device": "{{PARTICLE_DEVICE_ID}}",
            "at": "{{PARTICLE_PUBLISHED_AT}}",
            "temp": "{{{temp}}}",
            "hum": "{{{hum}}}",
        },
        "noDefaults": true,
    });
    let (runtime, plugin) = load(edgehook_tests::PARTICLE, "particle", &webhook);
    let event = Event::received(
        DeviceId::try_from("3f002b000000000000000000").unwrap(),
        EventName::try_from("temp").unwrap(),
        Bytes::from_static(br#"{"temp": 21.5, "hum": 40}"#),
    );
    let request = runtime
        .block_on(plugin.on_event(&event, None))
        .unwrap()
        .unwrap();
    assert!(request.body.starts_with(br#"{"at":"#), "{request:?}");

    c.bench_function("particle on-event, JSON template (fresh instance)", |b| {
        b.iter(|| {
            runtime
                .block_on(plugin.on_event(black_box(&event), None))
                .unwrap()
        });
    });

    // A whole event: what the host paid per event before it kept the
    // instance of on-event for on-response, and what it pays now.
    let outcome = Outcome::Response(HookResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from_static(br#"{"ok":true}"#),
    });
    c.bench_function("particle event, a fresh instance per call", |b| {
        b.iter(|| {
            runtime.block_on(async {
                plugin.on_event(black_box(&event), None).await.unwrap();
                plugin
                    .on_response(black_box(&event), None, &outcome, None)
                    .await
                    .unwrap()
            })
        });
    });
    c.bench_function("particle event, one instance for both calls", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let (request, kept) = plugin.on_event_keeping(black_box(&event), None).await;
                request.unwrap();
                assert!(kept.is_some(), "the pool has room");
                plugin
                    .on_response(black_box(&event), None, &outcome, kept)
                    .await
                    .unwrap()
            })
        });
    });
}

fn dialect_calls(c: &mut Criterion) {
    let event = Event::received(
        DeviceId::try_from("dev-0001").unwrap(),
        EventName::try_from("temp").unwrap(),
        Bytes::from_static(br#"{"temp": 21.5, "hum": 40}"#),
    );
    let iottly = serde_json::json!({
        "url": "https://example.com/iottly",
        "headers": {"x-project": "p1"},
    });
    let mainflux = serde_json::json!({
        "url": "https://example.com/mainflux",
        "headers": {"authorization": "Thing 1234"},
    });
    for (name, wasm, config) in [
        ("iottly", edgehook_tests::IOTTLY, iottly),
        ("mainflux", edgehook_tests::MAINFLUX, mainflux),
    ] {
        let (runtime, plugin) = load(wasm, name, &config);
        let request = runtime.block_on(plugin.on_event(&event, Some("g1")));
        assert!(request.unwrap().is_some());
        c.bench_function(&format!("{name} on-event (fresh instance)"), |b| {
            b.iter(|| {
                runtime
                    .block_on(plugin.on_event(black_box(&event), Some("g1")))
                    .unwrap()
            });
        });
    }
}

fn kv_calls(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn KeyValue> = Arc::new(KvFile::open(dir.path()).unwrap());
    kv_calls_on(c, &runtime(), kv, "");
    let Some((server, url)) = nats_server(dir.path()) else {
        eprintln!("nats-server is not on the PATH: no figures for JetStream KV");
        return;
    };
    let runtime = runtime();
    let shared = runtime.block_on(async {
        let nats = Nats::connect(&[url], &NatsAuth::default()).await.unwrap();
        SharedState::open(&nats).await.unwrap()
    });
    kv_calls_on(c, &runtime, Arc::new(shared), ", JetStream KV");
    drop(server);
}

/// A JetStream server on a free loopback port, storing under `dir`, and
/// its URL; `None` when `nats-server` is not on the PATH.
fn nats_server(dir: &std::path::Path) -> Option<(KillOnDrop, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.join("jetstream"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let server = KillOnDrop(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nats-server did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some((server, format!("nats://127.0.0.1:{port}")))
}

/// A child process killed when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `stateful` fixture's key-value calls on `kv`, named with `on`.
fn kv_calls_on(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    kv: Arc<dyn KeyValue>,
    on: &str,
) {
    let config = serde_json::json!({ "url": "https://example.com/in" });
    let plugin = load_in(edgehook_tests::STATEFUL, "stateful", &config, Some(kv));
    let device = DeviceId::try_from("dev-0001").unwrap();
    for (op, data, what) in [
        ("kv/get", "k", "one get"),
        ("kv/get-set", "k", "one get and one set"),
        ("kv/count", "", "two atomic increments"),
    ] {
        let event = Event::received(
            device.clone(),
            EventName::try_from(op).unwrap(),
            Bytes::from(data),
        );
        let request = runtime.block_on(plugin.on_event(&event, None));
        assert!(request.unwrap().is_some(), "{op}");
        c.bench_function(
            &format!("stateful on-event, {what} (fresh instance{on})"),
            |b| {
                b.iter(|| {
                    runtime
                        .block_on(plugin.on_event(black_box(&event), None))
                        .unwrap()
                });
            },
        );
    }
}

criterion_group!(benches, plugin_call, particle_call, dialect_calls, kv_calls);
criterion_main!(benches);
