//! `--mqtt-url` names a broker's nodes (a comma list): the host starts on
//! the first that answers and, when it loses that node, goes on with the
//! next (README, "Configuration reference", `mqtt_url`). The nodes here are
//! two independent mosquittos, so an event reaches the host only through
//! the node it is connected and subscribed to.

use std::time::Duration;

use edgehook::config::Settings;
use serde_json::json;

use crate::support::{
    Device, Endpoint, HostUnderTest, Mosquitto, Seen, TestHost, WAIT, closed_port,
};

#[tokio::test(flavor = "multi_thread")]
async fn the_host_skips_a_dead_node_at_start_and_fails_over_when_its_node_dies() {
    // Bound and not listening: connections to it are refused.
    let (_held, dead) = closed_port();
    let first = Mosquitto::start().await;
    let second = Mosquitto::start().await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let urls = format!(
        "mqtt://127.0.0.1:{dead}, mqtt://{}, mqtt://{}",
        first.addr, second.addr
    );
    let host = TestHost::start(
        &[],
        Settings {
            mqtt_url: Some(urls),
            mqtt_client_id: Some("edgehook-failover".into()),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(json!({ "event": "node", "url": endpoint.url("/node") }))
        .await;
    let (_, config) = host.api_get("/v1/config", Some(&host.host.api_token)).await;
    assert_eq!(
        config["mqtt_url"],
        format!(
            "mqtt://127.0.0.1:{dead},mqtt://{},mqtt://{}",
            first.addr, second.addr
        ),
        "the nodes in force"
    );

    let on_first = Device::connect(first.addr, "n1").await;
    on_first.publish("node", "first").await;
    let seen = endpoint.next().await;
    assert!(body(&seen).contains("first"), "{seen:?}");

    drop(on_first);
    drop(first);
    // Published on the second node until one is delivered: the host is
    // connected and subscribed there.
    let on_second = Device::connect(second.addr, "n2").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        on_second.publish("node", "second").await;
        if let Ok(seen) = tokio::time::timeout(Duration::from_millis(200), endpoint.next()).await {
            assert!(body(&seen).contains("second"), "{seen:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the host did not move to the next node within {WAIT:?}"
        );
    }
    host.host.stop().await;
}

fn body(seen: &Seen) -> String {
    String::from_utf8_lossy(&seen.body).into_owned()
}
