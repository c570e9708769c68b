//! The web console (`GET /`, CONTRACT section 10) in a real headless
//! Chromium, driven over WebDriver against a host on loopback: log in with
//! a wrong token and the right one, the webhook list, a creation refused
//! with the API's message, a creation, a deletion, the delivery log with
//! its secrets masked, a live event, and no console errors. One browser
//! for the whole binary: the scenarios run in order in one test.
//!
//! Needs `chromium` and `chromedriver` on `PATH` (Debian: `apt-get install
//! chromium chromium-driver`); without them the test fails saying so.

mod driver;
#[path = "../all/support/mod.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "the shared helpers of tests/all, of which this binary uses a few"
)]
mod support;

use anyhow::{Context, Result, ensure};
use edgehook::config::Settings;
use fantoccini::Locator;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use driver::Browser;
use support::{Device, Endpoint, TestHost, WAIT};

/// The issue's bound on what the first paint transfers.
const MAX_PAGE_BYTES: u64 = 100_000;

/// Secrets of the webhook whose log the console shows: none may reach the
/// page.
const SECRETS: [&str; 3] = ["hdr-secret-1", "pw-secret-1", "resp-secret-1"];

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_a_real_browser() -> Result<()> {
    let browser = Browser::start().await?;
    let mut endpoint = Endpoint::start(200, r#"{"ok":true,"access_token":"resp-secret-1"}"#).await;
    let settings = Settings {
        iottly_max_webhooks: Some(3),
        ..Settings::default()
    };
    let forward = support::forward_manifest("forward", &endpoint.url("/forward"));
    let host = TestHost::start(&[("forward", edgehook_tests::BEHAVE, &forward)], settings).await;
    host.wait_for_plugin("forward", |p| p["state"] == "running")
        .await;
    host.register(&["p1"], &[("d3", Some("p1"))]).await;
    let iottly = json!({ "description": "Agent messages", "url": "https://example.com/iottly", "type": "iottly" });
    let (status, body) = host
        .api("POST", "/v1/projects/p1/webhooks", &iottly.to_string())
        .await;
    ensure!(status == 201, "{body}");
    let mainflux = json!([{ "name": "Pipeline", "url": "https://example.com/mainflux" }]);
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
    let base = format!("http://{}", host.host.api_addr);

    security_headers(&host).await?;
    first_paint(&browser, &base).await?;
    wrong_token(&browser).await?;
    log_in(&browser, &host).await?;
    refused_creation(&browser, &host).await?;
    creation_and_deletion(&browser, &host).await?;
    delivery_log(&browser, &host, &logged, &mut endpoint).await?;
    edit_and_toggle(&browser, &host, &logged, &mut endpoint).await?;
    other_dialects(&browser, &host).await?;
    live_events(&browser, &host).await?;
    devices(&browser, &host).await?;
    plugins_and_health(&browser, &host).await?;
    log_out(&browser).await?;
    no_console_errors(&browser).await?;
    browser.client.close().await?;
    Ok(())
}

/// The page is served without the token, with the CSP and the other
/// headers of the console.
async fn security_headers(host: &TestHost) -> Result<()> {
    let mut stream = tokio::net::TcpStream::connect(host.host.api_addr).await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let head = raw
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    ensure!(head.starts_with("http/1.1 200"), "GET /: {head}");
    for header in [
        "content-security-policy: default-src 'self'; script-src 'self';",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "content-type: text/html",
    ] {
        ensure!(head.contains(header), "{header} missing from {head}");
    }
    Ok(())
}

/// Opens the console; prints the page's weight and its first contentful
/// paint, and holds the weight to [`MAX_PAGE_BYTES`].
async fn first_paint(browser: &Browser, base: &str) -> Result<()> {
    browser.client.goto(&format!("{base}/")).await?;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login:not([hidden]) #token"))
        .await?;
    let figures = browser
        .wait_for(
            "the first contentful paint",
            "const paint = performance.getEntriesByName('first-contentful-paint')[0];
             if (!paint) return null;
             const all = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
             return {
               fcp_ms: paint.startTime,
               transferred: all.reduce((n, e) => n + e.transferSize, 0),
               bodies: all.reduce((n, e) => n + e.encodedBodySize, 0),
               files: all.map(e => e.name),
             };",
        )
        .await?;
    let transferred = figures["transferred"].as_u64().context("transferSize")?;
    eprintln!(
        "console: first contentful paint {:.0} ms, {transferred} bytes transferred ({} bytes of bodies) in {}",
        figures["fcp_ms"].as_f64().unwrap_or_default(),
        figures["bodies"],
        figures["files"],
    );
    ensure!(
        transferred > 0 && transferred < MAX_PAGE_BYTES,
        "the first paint transferred {transferred} bytes"
    );
    Ok(())
}

async fn submit_token(browser: &Browser, token: &str) -> Result<()> {
    let field = browser.client.find(Locator::Css("#token")).await?;
    field.clear().await?;
    field.send_keys(token).await?;
    browser
        .client
        .find(Locator::Css("#login button[type=submit]"))
        .await?
        .click()
        .await?;
    Ok(())
}

/// A wrong token shows an error in the form, and nothing else.
async fn wrong_token(browser: &Browser) -> Result<()> {
    submit_token(browser, "not-the-token").await?;
    let error = browser
        .wait_for(
            "the login error",
            "return document.getElementById('login-error').textContent",
        )
        .await?;
    ensure!(error == "Wrong token.", "login error: {error}");
    let state = browser
        .client
        .execute(
            "return {
               stored: sessionStorage.length,
               nav: document.getElementById('nav').hidden,
               views: [...document.querySelectorAll('main > section')].filter(s => !s.hidden).length,
             }",
            vec![],
        )
        .await?;
    ensure!(
        state == json!({ "stored": 0, "nav": true, "views": 0 }),
        "after a wrong token: {state}"
    );
    Ok(())
}

/// The right token opens the webhooks view listing the webhooks of every
/// dialect and the Iottly projects with their limit; the token is kept in
/// sessionStorage and never in the URL.
async fn log_in(browser: &Browser, host: &TestHost) -> Result<()> {
    let token = host.host.api_token.to_string();
    submit_token(browser, &token).await?;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(
            "//table[@id='webhooks']//tr[td[2]='Temperature']",
        ))
        .await?;
    let row = browser.text("#webhooks tbody tr:first-child").await?;
    ensure!(
        row.contains("Particle") && row.contains("event temp") && row.contains("/in"),
        "the webhook's row: {row}"
    );
    let dialects = browser
        .wait_for(
            "the rows of every dialect",
            "const rows = [...document.querySelectorAll('#webhooks tbody tr')];
             return rows.length === 3 && rows.map(r => [r.cells[0].textContent, r.cells[1].textContent, r.cells[2].textContent])",
        )
        .await?;
    ensure!(
        dialects
            == json!([
                ["Particle", "Temperature", "event temp"],
                ["Iottly", "Agent messages", "project p1, iottly messages"],
                ["Mainflux", "Pipeline", "thing d3 (group p1)"],
            ]),
        "the list: {dialects}"
    );
    let projects = browser.text("#projects").await?;
    ensure!(projects == "p1: 1 of 3 webhooks", "projects: {projects}");
    let stored = browser
        .client
        .execute("return sessionStorage.getItem('edgehook.token')", vec![])
        .await?;
    ensure!(stored == token.as_str(), "sessionStorage: {stored}");
    let url = browser.client.current_url().await?;
    ensure!(
        !url.as_str().contains(&token),
        "the token is in the URL {url}"
    );
    ensure!(
        browser.text("#token").await?.is_empty(),
        "the password field still holds the token"
    );
    browser.client.refresh().await?;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(
            "//table[@id='webhooks']//tr[td[2]='Temperature']",
        ))
        .await
        .context("a reload keeps the session")?;
    Ok(())
}

/// Opens the webhooks view and waits until its list is loaded.
async fn webhooks_view(browser: &Browser) -> Result<()> {
    browser
        .client
        .find(Locator::Css("#nav [data-view=webhooks]"))
        .await?
        .click()
        .await?;
    browser
        .wait_for(
            "the webhooks to load",
            "return !document.getElementById('webhooks').hasAttribute('aria-busy')",
        )
        .await?;
    Ok(())
}

async fn submit_definition(browser: &Browser, definition: &str) -> Result<()> {
    let field = browser.client.find(Locator::Css("#webhook-json")).await?;
    field.clear().await?;
    field.send_keys(definition).await?;
    browser
        .client
        .find(Locator::Css("#webhook-submit"))
        .await?
        .click()
        .await?;
    Ok(())
}

/// A definition the API refuses shows the API's 400 message beside the
/// field, and creates nothing.
async fn refused_creation(browser: &Browser, host: &TestHost) -> Result<()> {
    let bad = r#"{"event": "temp", "url": "https://example.com/in", "requestType": "FETCH"}"#;
    let (status, refusal) = host.api("POST", "/v1/webhooks", bad).await;
    ensure!(status == 400, "the API took {bad}: {refusal}");
    submit_definition(browser, bad).await?;
    let shown = browser
        .wait_for(
            "the refusal beside the field",
            "return document.getElementById('webhook-error').textContent",
        )
        .await?;
    ensure!(
        shown == refusal["error"],
        "shown {shown}, the API said {refusal}"
    );
    let invalid = browser
        .client
        .execute(
            "return document.getElementById('webhook-json').getAttribute('aria-invalid')",
            vec![],
        )
        .await?;
    ensure!(
        invalid == "true",
        "the field is not marked invalid: {invalid}"
    );
    let (_, list) = host.api("GET", "/v1/webhooks", "").await;
    ensure!(list.as_array().map(Vec::len) == Some(1), "{list}");
    Ok(())
}

/// A webhook created in the page is in the API and the list; deleted in
/// the page, it is gone from both.
async fn creation_and_deletion(browser: &Browser, host: &TestHost) -> Result<()> {
    submit_definition(
        browser,
        r#"{"name": "Made in the browser", "event": "made", "url": "https://example.com/made"}"#,
    )
    .await?;
    let row = "//table[@id='webhooks']//tr[td[2]='Made in the browser']";
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(row))
        .await?;
    ensure!(
        browser.text("#webhook-error").await?.is_empty(),
        "the refusal is still shown"
    );
    let (_, list) = host.api("GET", "/v1/webhooks", "").await;
    let made = list
        .as_array()
        .and_then(|all| all.iter().find(|w| w["name"] == "Made in the browser"))
        .with_context(|| format!("not created: {list}"))?;
    ensure!(made["event"] == "made", "{made}");

    browser
        .client
        .find(Locator::XPath(&format!("{row}//button[text()='Delete']")))
        .await?
        .click()
        .await?;
    browser
        .wait_for(
            "the deleted webhook's row to go",
            "return [...document.querySelectorAll('#webhooks tbody tr')]
               .every(r => !r.textContent.includes('Made in the browser'))",
        )
        .await?;
    let (_, list) = host.api("GET", "/v1/webhooks", "").await;
    ensure!(list.as_array().map(Vec::len) == Some(1), "{list}");
    Ok(())
}

/// After a delivery, the webhook's last status is in the list and its log
/// shows the request and the response body, every secret masked; a
/// screenshot of the list is saved.
async fn delivery_log(
    browser: &Browser,
    host: &TestHost,
    id: &str,
    endpoint: &mut Endpoint,
) -> Result<()> {
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("temp", "21.5").await;
    endpoint.next().await;
    host.wait_for_log(id, |log| {
        !log["requests"].as_array().is_none_or(Vec::is_empty)
    })
    .await;

    webhooks_view(browser).await?;
    browser
        .wait_for(
            "the last status",
            &format!(
                "const row = document.querySelector('#webhooks tr[data-id=\"{id}\"]');
                 return row && row.cells[5].textContent === '200'"
            ),
        )
        .await?;
    let png = browser.client.screenshot().await?;
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console.png");
    std::fs::write(&shot, png).with_context(|| format!("writing {}", shot.display()))?;
    eprintln!(
        "console: screenshot of the webhooks view in {}",
        shot.display()
    );

    browser.client.set_window_size(390, 844).await?;
    let fits = browser
        .wait_for(
            "the page at a phone's width",
            "return window.innerWidth <= 400 && {
               page: document.documentElement.scrollWidth <= window.innerWidth,
               table: document.querySelector('.scroll').clientWidth <= window.innerWidth,
             }",
        )
        .await?;
    ensure!(
        fits == json!({ "page": true, "table": true }),
        "at a phone's width the page scrolls sideways: {fits}"
    );
    let png = browser.client.screenshot().await?;
    std::fs::write(shot.with_file_name("console-phone.png"), png)?;
    browser.client.set_window_size(1280, 1000).await?;

    browser
        .client
        .find(Locator::XPath(&format!(
            "//tr[@data-id='{id}']//button[text()='Log']"
        )))
        .await?
        .click()
        .await?;
    let entry = browser
        .wait_for(
            "the log's request",
            "const li = document.querySelector('#log-requests li pre');
             return li && document.getElementById('log-requests').textContent",
        )
        .await?;
    let entry = entry.as_str().unwrap_or_default();
    for shown in [
        "event temp from d1",
        "X-Api-Key: ***",
        "Basic ***",
        "Response 200",
        r#""ok":true"#,
        r#""access_token":"***""#,
    ] {
        ensure!(
            entry.contains(shown),
            "{shown} missing from the log: {entry}"
        );
    }
    let page = browser.client.source().await?;
    for secret in SECRETS {
        ensure!(!page.contains(secret), "{secret} is in the page");
    }
    Ok(())
}

/// A webhook edited in the page keeps the secrets it was shown masked; it
/// is disabled and enabled again from its row.
async fn edit_and_toggle(
    browser: &Browser,
    host: &TestHost,
    id: &str,
    endpoint: &mut Endpoint,
) -> Result<()> {
    webhooks_view(browser).await?;
    let row = format!("//tr[@data-id='{id}']");
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&format!("{row}//button[text()='Edit']")))
        .await?
        .click()
        .await?;
    let shown = browser
        .wait_for(
            "the definition in the form",
            "const text = document.getElementById('webhook-json').value;
             return text.includes('Temperature') && text",
        )
        .await?;
    let shown = shown.as_str().unwrap_or_default();
    ensure!(
        shown.contains(r#""X-Api-Key": "***""#) && shown.contains(r#""password": "***""#),
        "the form shows {shown}"
    );
    browser
        .client
        .execute(
            "const field = document.getElementById('webhook-json');
             field.value = field.value.replace('\"Temperature\"', '\"Temperature (edited)\"');",
            vec![],
        )
        .await?;
    browser
        .client
        .find(Locator::Css("#webhook-submit"))
        .await?
        .click()
        .await?;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&format!(
            "{row}[td[2]='Temperature (edited)']"
        )))
        .await?;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("temp", "22").await;
    let seen = endpoint.next().await;
    ensure!(
        seen.headers["x-api-key"] == "hdr-secret-1",
        "the edit lost the secret header: {:?}",
        seen.headers
    );

    for (button, enabled, disabled) in [
        ("Disable", "no", json!(true)),
        ("Enable", "yes", Value::Null),
    ] {
        browser
            .client
            .find(Locator::XPath(&format!("{row}//button[text()='{button}']")))
            .await?
            .click()
            .await?;
        browser
            .wait_for(
                &format!("the row after {button}"),
                &format!(
                    "const row = document.querySelector('#webhooks tr[data-id=\"{id}\"]');
                     return row && row.cells[4].textContent === '{enabled}'"
                ),
            )
            .await?;
        let (_, view) = host.api("GET", &format!("/v1/webhooks/{id}"), "").await;
        ensure!(view["disabled"] == disabled, "after {button}: {view}");
    }
    Ok(())
}

/// Iottly webhooks added in the page fill their project up to the
/// configured limit, beyond which the API's refusal shows beside the form;
/// a Mainflux webhook added to a thing joins the list.
async fn other_dialects(browser: &Browser, host: &TestHost) -> Result<()> {
    let form = |field: &str| {
        Locator::Css(match field {
            "description" => "#iottly-description",
            "url" => "#iottly-url",
            _ => "#iottly-form button[type=submit]",
        })
    };
    for (n, expected) in [
        (2, "p1: 2 of 3 webhooks"),
        (3, "p1: 3 of 3 webhooks (full)"),
    ] {
        let client = &browser.client;
        client
            .find(form("description"))
            .await?
            .send_keys(&format!("Agent {n}"))
            .await?;
        client
            .find(form("url"))
            .await?
            .send_keys("https://example.com/agent")
            .await?;
        client.find(form("submit")).await?.click().await?;
        browser
            .wait_for(
                "the project's count",
                &format!("return document.getElementById('projects').textContent === '{expected}'"),
            )
            .await?;
    }
    let one_more =
        json!({ "description": "Agent 4", "url": "https://example.com/agent", "type": "user" });
    let (status, refusal) = host
        .api("POST", "/v1/projects/p1/webhooks", &one_more.to_string())
        .await;
    ensure!(status == 409, "{refusal}");
    browser
        .client
        .find(form("description"))
        .await?
        .send_keys("Agent 4")
        .await?;
    browser
        .client
        .find(form("url"))
        .await?
        .send_keys("https://example.com/agent")
        .await?;
    browser.client.find(form("submit")).await?.click().await?;
    let shown = browser
        .wait_for(
            "the refusal beside the Iottly form",
            "return document.getElementById('iottly-error').textContent",
        )
        .await?;
    ensure!(
        shown == refusal["error"],
        "shown {shown}, the API said {refusal}"
    );

    browser
        .client
        .find(Locator::Css("#mainflux-name"))
        .await?
        .send_keys("Second pipeline")
        .await?;
    browser
        .client
        .find(Locator::Css("#mainflux-url"))
        .await?
        .send_keys("https://example.com/second")
        .await?;
    browser
        .client
        .find(Locator::Css("#mainflux-form button[type=submit]"))
        .await?
        .click()
        .await?;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(
            "//table[@id='webhooks']//tr[td[1]='Mainflux'][td[2]='Second pipeline'][td[3]='thing d3 (group p1)']",
        ))
        .await?;
    let (_, things) = host.api("GET", "/things/d3/webhooks", "").await;
    ensure!(things.as_array().map(Vec::len) == Some(2), "{things}");
    Ok(())
}

/// An event a device publishes appears in the live view; filtered out,
/// it is hidden; while paused, a new one waits until resumed.
async fn live_events(browser: &Browser, host: &TestHost) -> Result<()> {
    browser
        .client
        .find(Locator::Css("#nav [data-view=events]"))
        .await?
        .click()
        .await?;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#events[data-streaming]"))
        .await?;
    let device = Device::connect(host.mqtt_addr(), "d2").await;
    device.publish("browser/live", "42").await;
    let first = "//ol[@id='events']/li[strong='browser/live']";
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(first))
        .await?;
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
        .client
        .find(Locator::Css("#events-name"))
        .await?
        .send_keys("browser/")
        .await?;

    browser
        .client
        .find(Locator::Css("#events-pause"))
        .await?
        .click()
        .await?;
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
    browser
        .client
        .find(Locator::Css("#events-pause"))
        .await?
        .click()
        .await?;
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
async fn devices(browser: &Browser, host: &TestHost) -> Result<()> {
    browser
        .client
        .find(Locator::Css("#nav [data-view=devices]"))
        .await?
        .click()
        .await?;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath("//table[@id='devices']//td[text()='d3']"))
        .await?;
    browser
        .client
        .find(Locator::Css("#device-id"))
        .await?
        .send_keys("d9")
        .await?;
    browser
        .client
        .find(Locator::Css("#device-group option[value=p1]"))
        .await?
        .click()
        .await?;
    browser
        .client
        .find(Locator::Css("#device-form button[type=submit]"))
        .await?
        .click()
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
        .client
        .find(Locator::XPath(
            "//table[@id='devices']//tr[td[1]='d9']//button[text()='Rotate key']",
        ))
        .await?
        .click()
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
        .client
        .find(Locator::Css("#nav [data-view=plugins]"))
        .await?
        .click()
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
async fn plugins_and_health(browser: &Browser, host: &TestHost) -> Result<()> {
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
    browser
        .client
        .find(Locator::Css("#nav [data-view=health]"))
        .await?
        .click()
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

/// Logging out forgets the token and shows the login form alone.
async fn log_out(browser: &Browser) -> Result<()> {
    browser
        .client
        .find(Locator::Css("#logout"))
        .await?
        .click()
        .await?;
    let state = browser
        .client
        .execute(
            "return {
               stored: sessionStorage.length,
               login: !document.getElementById('login').hidden,
               views: [...document.querySelectorAll('main > section')].filter(s => !s.hidden).length,
             }",
            vec![],
        )
        .await?;
    ensure!(
        state == json!({ "stored": 0, "login": true, "views": 0 }),
        "after logging out: {state}"
    );
    Ok(())
}

/// The page logged no error: the only ones allowed are the network's
/// record of the refusals the scenarios provoke (the wrong token's 401,
/// the refused definition's 400, the full project's 409).
async fn no_console_errors(browser: &Browser) -> Result<()> {
    let provoked = [
        ("/v1/plugins - ", "status of 401"),
        ("/v1/webhooks - ", "status of 400"),
        ("/v1/projects/p1/webhooks - ", "status of 409"),
    ];
    let log = browser.console_log().await?;
    let unexpected: Vec<&Value> = log
        .iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .filter(|entry| {
            let message = entry["message"].as_str().unwrap_or_default();
            let expected = provoked
                .iter()
                .any(|(path, status)| message.contains(path) && message.contains(status));
            !(entry["source"] == "network" && expected)
        })
        .collect();
    ensure!(unexpected.is_empty(), "console errors: {unexpected:?}");
    Ok(())
}
