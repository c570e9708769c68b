//! The web console (`GET /`, CONTRACT sections 10 and 15) in a real
//! headless Chromium, driven over WebDriver against a host on loopback:
//! log in with a wrong token and the right one, the webhook list, a
//! creation refused with the API's message, a creation, a deletion, the
//! delivery log with its secrets masked, an Iottly webhook edited, the
//! builder's preview against its Test, the history with a replay of a dead
//! letter, a live event, and no console errors. One browser for the whole
//! binary: the scenarios run in order in one test.
//!
//! Needs `chromium` and `chromedriver` on `PATH` (Debian: `apt-get install
//! chromium chromium-driver`); without them the test fails saying so.

mod driver;
mod history;
mod session;
#[path = "../all/support/mod.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "the shared helpers of tests/all, of which this binary uses a few"
)]
mod support;
mod views;
mod webhooks;

use anyhow::{Result, ensure};
use edgehook::config::Settings;
use serde_json::json;

use driver::Browser;
use history::{builder_preview_then_test, history_and_replay};
use session::{first_paint, log_in, log_out, no_console_errors, security_headers, wrong_token};
use support::{Endpoint, HostUnderTest, TestHost};
use views::{devices, live_events, plugins_and_health};
use webhooks::{
    creation_and_deletion, delivery_log, edit_and_toggle, iottly_edit, other_dialects,
    refused_creation,
};

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_a_real_browser() -> Result<()> {
    let browser = Browser::start().await?;
    let mut endpoint = Endpoint::start(200, r#"{"ok":true,"access_token":"resp-secret-1"}"#).await;
    let settings = Settings {
        iottly_max_webhooks: Some(3),
        ..Settings::default()
    };
    let forward = support::forward_manifest("forward", &endpoint.url("/forward"));
    let stateful = format!(
        "event = \"kv/\"\nallowed_hosts = [\"*\"]\n[config]\nurl = \"{}\"\n",
        endpoint.url("/stateful")
    );
    let host = TestHost::start(
        &[
            ("forward", edgehook_tests::BEHAVE, &forward),
            ("stateful", edgehook_tests::STATEFUL, &stateful),
        ],
        settings,
    )
    .await;
    host.wait_for_plugin("forward", |p| p["state"] == "running")
        .await;
    host.register(&["p1"], &[("d3", Some("p1"))]).await;
    let iottly = json!({ "description": "Agent messages", "url": "https://example.com/iottly", "type": "iottly" });
    let (status, body) = host
        .api("POST", "/v1/projects/p1/webhooks", &iottly.to_string())
        .await;
    ensure!(status == 201, "{body}");
    let mainflux = json!([{ "name": "Pipeline", "url": "https://example.com/mainflux",
        "auth": { "type": "bearer", "token": "mf-secret-1" } }]);
    let (status, body) = host
        .api("POST", "/things/d3/webhooks", &mainflux.to_string())
        .await;
    ensure!(status == 201, "{body}");
    let logged = host
        .create_webhook(json!({
            "name": "Temperature",
            "event": "temp",
            "url": endpoint.url("/in"),
            "headers": { "X-Api-Key": "hdr-secret-1" },
            "auth": { "username": "u", "password": "pw-secret-1" },
        }))
        .await;

    let result = scenarios(&browser, &host, &logged, &mut endpoint).await;
    browser.client.clone().close().await?;
    result
}

async fn scenarios(
    browser: &Browser,
    host: &TestHost,
    logged: &str,
    endpoint: &mut Endpoint,
) -> Result<()> {
    let base = format!("http://{}", host.host.api_addr);
    security_headers(host).await?;
    first_paint(browser, &base).await?;
    wrong_token(browser).await?;
    log_in(browser, host).await?;
    refused_creation(browser, host).await?;
    creation_and_deletion(browser, host).await?;
    delivery_log(browser, host, logged, endpoint).await?;
    edit_and_toggle(browser, host, logged, endpoint).await?;
    other_dialects(browser, host).await?;
    iottly_edit(browser, host).await?;
    builder_preview_then_test(browser, host).await?;
    history_and_replay(browser, host).await?;
    live_events(browser, host).await?;
    devices(browser, host).await?;
    plugins_and_health(browser, host).await?;
    log_out(browser).await?;
    no_console_errors(browser).await
}
