//! The live events, devices, plugins and health views.

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::driver::Browser;
use crate::support::{Device, HostUnderTest, TestHost};

/// An event a device publishes appears in the live view; filtered out,
/// it is hidden; while paused, a new one waits until resumed.
pub async fn live_events(browser: &Browser, host: &TestHost) -> Result<()> {
    browser
        .click(Locator::Css("#nav [data-view=events]"))
        .await?;
    browser
        .appears(Locator::Css("#events[data-streaming]"))
        .await?;
    let device = Device::connect(host.mqtt_addr(), "d2").await;
    device.publish("browser/live", "42").await;
    let first = "//ol[@id='events']/li[strong='browser/live']";
    browser.appears(Locator::XPath(first)).await?;
    let row = browser.text("#events li").await?;
    ensure!(
        row.contains("d2") && row.contains("42"),
        "the event's row: {row}"
    );

    let filter = browser.client.find(Locator::Css("#events-device")).await?;
    filter.send_keys("another-device").await?;
    browser
        .wait_for(
            "the filter to hide the event",
            "return document.querySelectorAll('#events li').length === 0",
        )
        .await?;
    filter.clear().await?;
    browser
        .type_into(Locator::Css("#events-name"), "browser/")
        .await?;

    browser.click(Locator::Css("#events-pause")).await?;
    device.publish("browser/paused", "43").await;
    browser
        .wait_for(
            "the paused event to be counted",
            "return document.getElementById('events-note').textContent.startsWith('Paused: 1 new')",
        )
        .await?;
    let shown: Value = browser
        .client
        .execute(
            "return [...document.querySelectorAll('#events li strong')].map(s => s.textContent)",
            vec![],
        )
        .await?;
    ensure!(shown == json!(["browser/live"]), "while paused: {shown}");
    browser.click(Locator::Css("#events-pause")).await?;
    let shown = browser
        .wait_for(
            "the resumed list",
            "const names = [...document.querySelectorAll('#events li strong')].map(s => s.textContent);
             return names.length === 2 && names",
        )
        .await?;
    ensure!(
        shown == json!(["browser/paused", "browser/live"]),
        "resumed: {shown}"
    );
    Ok(())
}

/// A device created in the page shows its key once; a rotation shows a new
/// one; leaving the view takes it off the page.
pub async fn devices(browser: &Browser, host: &TestHost) -> Result<()> {
    browser
        .click(Locator::Css("#nav [data-view=devices]"))
        .await?;
    browser
        .appears(Locator::XPath("//table[@id='devices']//td[text()='d3']"))
        .await?;
    browser.type_into(Locator::Css("#device-id"), "d9").await?;
    browser
        .click(Locator::Css("#device-group option[value=p1]"))
        .await?;
    browser
        .click(Locator::Css("#device-form button[type=submit]"))
        .await?;
    let key = "(() => {
                 const out = document.getElementById('new-key');
                 const code = out.querySelector('code');
                 return !out.hidden && code ? code.textContent : '';
               })()";
    let first = browser
        .wait_for("the new device's key", &format!("return {key}"))
        .await?;
    let (status, device) = host.api("GET", "/v1/devices/d9", "").await;
    ensure!(status == 200 && device["group"] == "p1", "{device}");
    browser
        .click(Locator::XPath(
            "//table[@id='devices']//tr[td[1]='d9']//button[text()='Rotate key']",
        ))
        .await?;
    let second = browser
        .wait_for(
            "the rotated key",
            &format!("const k = {key}; return k !== {first} && k"),
        )
        .await?;
    ensure!(
        second.as_str().is_some_and(|k| !k.is_empty()) && second != first,
        "keys {first} then {second}"
    );
    browser
        .click(Locator::Css("#nav [data-view=plugins]"))
        .await?;
    let page = browser.client.source().await?;
    for key in [&first, &second] {
        let key = key.as_str().unwrap_or_default();
        ensure!(!page.contains(key), "the key {key} stays on the page");
    }
    Ok(())
}

/// The plugins view lists what the API lists; the health view shows the
/// host's state and its figures.
pub async fn plugins_and_health(browser: &Browser, host: &TestHost) -> Result<()> {
    let (_, plugins) = host.api("GET", "/v1/plugins", "").await;
    let names: Vec<&Value> = plugins
        .as_array()
        .context("a list of plugins")?
        .iter()
        .map(|p| &p["name"])
        .collect();
    let shown = browser
        .wait_for(
            "the plugins",
            &format!(
                "const names = [...document.querySelectorAll('#plugins tbody tr')].map(r => r.cells[0].textContent);
                 return names.length === {} && names",
                names.len()
            ),
        )
        .await?;
    ensure!(
        shown == json!(names) && names.contains(&&json!("forward")),
        "plugins shown: {shown}"
    );
    let row = browser.text("#plugins tbody tr").await?;
    ensure!(
        row.starts_with("forward running"),
        "the plugin's row: {row}"
    );
    // A plugin's own key-value bucket, read-only.
    let device = Device::connect(host.mqtt_addr(), "d4").await;
    device.publish("kv/set", "colour=blue").await;
    host.wait_for("/v1/plugins/stateful/kv", |k| {
        k["keys"] == json!(["colour"])
    })
    .await;
    browser
        .click(Locator::Css(
            "button[aria-label='Key-value state of stateful']",
        ))
        .await?;
    let state = browser
        .wait_for(
            "the plugin's key-value state",
            "const dl = document.querySelector('#plugin-kv dl');
             return dl && dl.textContent",
        )
        .await?;
    ensure!(state == json!("colourblue"), "the state shown: {state}");
    browser
        .click(Locator::Css("#nav [data-view=health]"))
        .await?;
    let state = browser
        .wait_for(
            "the health figures",
            "return document.querySelector('#health-figures dd') && document.getElementById('health-state').textContent",
        )
        .await?;
    ensure!(state == "Host: ok", "health: {state}");
    let figures = browser.text("#health-figures").await?;
    ensure!(figures.contains("Events taken"), "figures: {figures}");
    Ok(())
}
