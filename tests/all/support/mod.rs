//! What the black-box tests share: a host in the test process
//! ([`test_host`]) or as its own process ([`process`]), behind one
//! interface ([`under_test`]), plugin manifests
//! ([`manifests`]), the API over a raw socket ([`api`]), recording HTTP
//! endpoints ([`endpoint`]) and markers ([`marker`]), the MQTT client
//! ([`mqtt_client`]: a device subscribed to its topics, one that logs in,
//! one that writes its packets by hand), devices publishing under load
//! ([`load`]), the vendors' APIs checking signatures ([`standin`]), a real
//! mosquitto ([`mosquitto`]), a real NATS JetStream
//! cluster with TLS and the hosts' login ([`nats`]) and one server with TLS
//! and each kind of login ([`nats_secure`]), a stand-in OpenTelemetry
//! collector ([`otlp`]), a WebSocket API client ([`ws`]), and the waits
//! ([`pace`]).

mod api;
mod endpoint;
mod load;
mod manifests;
mod marker;
mod mosquitto;
mod mqtt_client;
mod nats;
mod nats_secure;
mod otlp;
mod pace;
mod process;
mod standin;
mod test_host;
mod under_test;
mod ws;

pub use api::{closed_port, http_get, http_request, ids, metric_in, wait_for};
pub use endpoint::{Arrival, Endpoint, Scripted, Seen, Step, seq_of, verify_signature};
pub use load::{Acked, publish_under_load};
pub use manifests::{behave_manifest, forward_manifest, install, not_wasm};
pub use marker::{before, is_marker};
pub use mosquitto::Mosquitto;
pub use mqtt_client::{Device, Heard, login_settled};
pub use nats::NatsCluster;
pub use nats_secure::{HOSTS_PASSWORD, HOSTS_USER, Logins, OTHER_PASSWORD, OTHER_USER, SecureNats};
pub use otlp::{Collector, Outcome, Received};
pub use pace::{UNPACED, WAIT};
pub use process::{HostProcess, TOKEN, cli, edgehook_binary, host_dir, ready_object, serve_in};
pub use standin::Standin;
pub use test_host::TestHost;
pub use under_test::HostUnderTest;
pub use ws::Ws;
