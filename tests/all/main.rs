//! Black-box tests of edgehook: real MQTT over sockets (the embedded broker,
//! and mosquitto as an external one), real HTTP servers on loopback, real
//! wasm plugins built from `plugins/` and `tests/fixtures/`.

mod api;
mod broken;
mod crash;
mod delivery;
mod delivery_edges;
mod device_logins;
mod device_removal;
mod event_ttl;
mod external_broker;
mod hardening;
mod instances;
mod iottly;
mod limits;
mod logging;
mod mainflux;
mod mqtt5;
mod nats_auth;
mod nats_cluster;
mod packaging;
mod particle;
mod plugin_tools;
mod plugins_api;
mod queue;
mod registry;
mod reload;
mod reload_under_load;
mod resend;
mod restart;
mod retries;
mod sandbox;
mod secrets;
mod several_hosts;
mod sighup;
mod signals;
mod storage_faults;
mod support;
mod suspend;
mod tls;
mod trust;
mod version;
mod webhooks;
mod ws;
mod ws_limits;
