//! One interface to a host under test, in this process ([`TestHost`]) or
//! as its own process ([`HostProcess`]): where its API and its embedded
//! broker are, its token, and what the tests ask its API.

use std::net::SocketAddr;
use std::time::Duration;

use super::{
    Device, HostProcess, TOKEN, TestHost, WAIT, http_get, http_request, metric_in, wait_for,
};

/// A host the tests talk to over its sockets, wherever it runs.
#[allow(
    async_fn_in_trait,
    reason = "only the tests' own hosts implement it, and they await it in place"
)]
pub trait HostUnderTest {
    /// The API's address.
    fn api_addr(&self) -> SocketAddr;

    /// The API's bearer token.
    fn api_token(&self) -> &str;

    /// The embedded broker's address, if the host runs one.
    fn embedded_broker(&self) -> Option<SocketAddr>;

    /// Adds a webhook on the event `marker` that posts to `url`, and has
    /// `device` publish `marker`: a marker sent after what must not arrive
    /// (see [`Endpoint::before_marker`]).
    async fn send_marker(&self, device: &Device, url: String) {
        self.create_webhook(serde_json::json!({ "event": "marker", "url": url }))
            .await;
        device.publish("marker", "").await;
    }

    /// The embedded broker's address.
    fn mqtt_addr(&self) -> SocketAddr {
        self.embedded_broker().expect("an embedded broker")
    }

    /// `GET path` on the API with the token; (status, JSON body).
    async fn api_get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        http_get(self.api_addr(), path, token).await
    }

    /// `method path` on the API with the host's token and a raw body;
    /// (status, JSON body).
    async fn api(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        http_request(self.api_addr(), method, path, Some(self.api_token()), body).await
    }

    /// Registers `groups`, then `devices` (id, group) through the API.
    async fn register(&self, groups: &[&str], devices: &[(&str, Option<&str>)]) {
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
    async fn register_device(&self, id: &str) -> String {
        let device = serde_json::json!({ "id": id });
        let (status, device) = self.api("POST", "/v1/devices", &device.to_string()).await;
        assert_eq!(status, 201, "{device}");
        device["key"].as_str().unwrap().to_owned()
    }

    /// Waits until the delivery log of webhook `id` satisfies `pred`
    /// (polled), or panics; the log.
    async fn wait_for_log(
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
    async fn metrics(&self) -> String {
        let (status, body) = self.api("GET", "/metrics", "").await;
        assert_eq!(status, 200, "{body}");
        body.as_str()
            .expect("metrics are text, not JSON")
            .to_owned()
    }

    /// The value of the counter or gauge `name` (labels included) on
    /// `/metrics`.
    async fn metric(&self, name: &str) -> u64 {
        metric_in(&self.metrics().await, name)
    }

    /// Creates a Particle-style webhook through the API; its id.
    async fn create_webhook(&self, definition: serde_json::Value) -> String {
        self.create_at("/v1/webhooks", definition).await
    }

    /// POSTs `definition` to the collection at `path`, which must answer
    /// `201` with the new webhook; its id.
    async fn create_at(&self, path: &str, definition: serde_json::Value) -> String {
        let (status, body) = self.api("POST", path, &definition.to_string()).await;
        assert_eq!(status, 201, "{body}");
        body["id"]
            .as_str()
            .expect("the new webhook's id")
            .to_owned()
    }

    /// The API's `/v1/plugins` entry of `name`, if listed.
    async fn plugin_status(&self, name: &str) -> Option<serde_json::Value> {
        let (status, body) = self.api_get("/v1/plugins", Some(self.api_token())).await;
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    /// Waits until `name`'s status satisfies `pred`, or panics.
    async fn wait_for_plugin(
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

    /// The value of the gauge `edgehook_queue_depth` on `/metrics`.
    async fn queue_depth(&self) -> u64 {
        self.metric("edgehook_queue_depth").await
    }

    /// Polls `GET path` until its body satisfies `ok` (see [`wait_for`]).
    async fn wait_for(
        &self,
        path: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        wait_for(self.api_addr(), self.api_token(), path, ok).await
    }
}

impl HostUnderTest for TestHost {
    fn api_addr(&self) -> SocketAddr {
        self.host.api_addr
    }

    fn api_token(&self) -> &str {
        &self.host.api_token
    }

    fn embedded_broker(&self) -> Option<SocketAddr> {
        self.host.mqtt_addr
    }
}

impl HostUnderTest for HostProcess {
    fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    fn api_token(&self) -> &str {
        TOKEN
    }

    fn embedded_broker(&self) -> Option<SocketAddr> {
        self.mqtt_addr
    }
}
