//! edgehook: a webhook engine for IoT fleets.
//!
//! Devices publish events over MQTT; each webhook is a sandboxed WebAssembly
//! component that turns an event into an HTTP request and the response into
//! messages for the device. The host does the real work: HTTP and TLS,
//! limits, chunking and publishing.
//!
//! # Layout
//!
//! - [`topic`], [`event`], [`origin`], [`exchange`]: the leaf types — topics
//!   parsed once, the device event, where an MQTT message came from (to
//!   recognise a resend), the values exchanged with plugins.
//! - [`config`]: settings from flags, environment and file, checked once.
//! - [`fleet`]: the device registry — groups, devices, their keys.
//! - [`ingress`]: MQTT in and out — the embedded broker (its logins, topic
//!   rules and per-device limits) or an external one.
//! - [`runtime`]: the wasm sandbox (engine, plugins, limits, the one `bindgen!`).
//! - [`hooks`]: the webhooks in force — each a plugin with its
//!   configuration, filter, allowed hosts and delivery log — in the
//!   registry the pipeline reads.
//! - [`plugins`]: plugin files — manifests, the plugins directory,
//!   installing over the API.
//! - [`webhooks`]: what every dialect's webhooks share — the collection
//!   that keeps them and puts them in force, their store, ids and checks,
//!   the webhooks directory, the built-in plugins.
//! - [`dialects`]: Particle-, Iottly- and Mainflux-style webhooks, each a
//!   collection of its dialect on its own built-in plugin.
//! - [`watch`]: noticing stable changes in a watched directory.
//! - [`delivery`]: the HTTP client and its destination policy.
//! - [`throttle`]: delivery policies — retries, per-host sleep, rates, concurrency.
//! - [`respond`]: chunking and publishing device events.
//! - [`stream`]: the live event stream behind `GET /v1/events` and the
//!   WebSocket API's telemetry.
//! - [`commands`]: commands to devices and the routing of their answers.
//! - [`tls`]: the rustls client configurations (verifying, and the opt-out
//!   for `rejectUnauthorized: false`).
//! - [`files`]: the data directory and its files, the host user's alone.
//! - [`stores`]: the storage seam — the traits of what is kept either in
//!   this host's files or in a cluster's shared stores, and the file
//!   adapters; the NATS adapters are in [`nats`].
//! - [`queue`]: the durable queue of acknowledged events (an append-only log,
//!   group commit), and the origins of stored events that make a resend
//!   recognised.
//! - [`streak`]: failures in a row that suspend a plugin or disable a webhook.
//! - [`pipeline`]: the path of one event through all of the above.
//! - [`api`]: the HTTP API, and the web console at `GET /` that calls it.
//! - [`nats`]: several hosts on a NATS JetStream cluster — the devices'
//!   events stored there before their PUBACK, shared by every host, what
//!   hosts send devices relayed to every host's broker, the shared stores.
//! - [`server`]: wiring and lifecycle (`run(cfg, shutdown)`).
//! - [`service`]: `READY`, `STOPPING` and watchdog pings for systemd.
//! - [`traces`]: each event as an OpenTelemetry trace, exported over
//!   OTLP/HTTP (`--otlp-endpoint`), and the `traceparent` of its requests.
//! - [`logging`]: log lines as text (control characters escaped) or JSON,
//!   colours only on a terminal.
//! - [`offline`], [`scaffold`]: `edgehook plugin test` and `plugin new`.
//! - [`remote`]: the API client behind `edgehook webhook …`, `plugin push`
//!   and `subscribe`.
//! - [`secrets`]: what a secret is, and how each shape of it is masked on
//!   read (views, the delivery log, error messages).
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod dialects;
pub mod event;
pub mod exchange;
pub mod files;
pub mod fleet;
pub mod hooks;
pub mod ingress;
pub mod logging;
pub mod nats;
pub mod offline;
pub mod origin;
pub mod pipeline;
pub mod plugins;
pub mod queue;
pub mod remote;
pub mod respond;
pub mod runtime;
pub mod scaffold;
pub mod secrets;
pub mod server;
pub mod service;
pub mod stores;
pub mod streak;
pub mod stream;
pub mod throttle;
pub mod tls;
pub mod topic;
pub mod traces;
pub mod watch;
pub mod webhooks;

/// What `edgehook --version` says after the name: the version, then the
/// commit, its date and the target it was built for (`0.1.0 (abc1234
/// 2026-12-03 x86_64-unknown-linux-musl)`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("EDGEHOOK_COMMIT"),
    " ",
    env!("EDGEHOOK_BUILD_DATE"),
    " ",
    env!("EDGEHOOK_TARGET"),
    ")"
);
