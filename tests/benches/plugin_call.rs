//! Per-event cost of the sandbox: a fresh store and instance of the
//! ThingSpeak example plugin plus its `on-event` call, and the same for
//! `on-response`. Run with `cargo bench -p edgehook-tests`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use edgehook::event::Event;
use edgehook::exchange::{HookResponse, Outcome};
use edgehook::runtime::{EngineOptions, Limits, Plugin, WasmEngine};
use edgehook::topic::{DeviceId, EventName};

fn plugin_call(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = WasmEngine::new(&EngineOptions {
        instances: 16,
        max_memory: 64 << 20,
        cache_dir: None,
    })
    .unwrap();
    let wasm = std::fs::read(edgehook_tests::THINGSPEAK).unwrap();
    let config = serde_json::json!({
        "url": "https://api.thingspeak.com/update",
        "api_key": "XXXXXXXXXXXXXXXX",
        "fields": { "temp": "field1", "hum": "field2" },
    });
    let plugin = Plugin::load(&engine, "thingspeak", &wasm, &config, Limits::default()).unwrap();
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
                .block_on(plugin.on_event(black_box(&event)))
                .unwrap()
        });
    });
    c.bench_function("thingspeak on-response (fresh instance)", |b| {
        b.iter(|| {
            runtime
                .block_on(plugin.on_response(black_box(&event), black_box(&outcome)))
                .unwrap()
        });
    });
}

criterion_group!(benches, plugin_call);
criterion_main!(benches);
