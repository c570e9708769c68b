//! Trying a webhook and reading what it did: the Particle builder's
//! preview against the request its Test button then sends, the history
//! view (filters, an attempt's request and response, its event), the dead
//! letters, and replays from the page: of one event and by filter.
//! Screenshots of the builder and of the history go to `target/tmp/`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::driver::Browser;
use crate::support::{Device, Endpoint, HostUnderTest, TestHost};
use crate::webhooks::webhooks_view;

/// Saves a screenshot of the page as `target/tmp/{name}` (the copies in
/// `docs/` are refreshed by hand: CONTRIBUTING.md).
async fn screenshot(browser: &Browser, name: &str) -> Result<()> {
    let png = browser.client.screenshot().await?;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("console: screenshot in {}", path.display());
    Ok(())
}

/// Chooses the option `text` of the select `id`.
async fn choose(browser: &Browser, id: &str, text: &str) -> Result<()> {
    browser
        .click(Locator::XPath(&format!(
            "//select[@id='{id}']/option[text()='{text}']"
        )))
        .await
}

/// Replaces the text of the field `css` with `text`.
async fn fill(browser: &Browser, css: &str, text: &str) -> Result<()> {
    let field = browser.client.find(Locator::Css(css)).await?;
    field.clear().await?;
    field.send_keys(text).await?;
    Ok(())
}

/// Adds a row to the builder's fieldset `id` and fills it.
async fn add_pair(browser: &Browser, id: &str, what: &str, name: &str, value: &str) -> Result<()> {
    browser
        .click(Locator::Css(&format!("#{id} button.add")))
        .await?;
    let n = browser
        .client
        .execute(
            &format!("return document.querySelectorAll('#{id} .pair').length"),
            vec![],
        )
        .await?;
    fill(browser, &format!("[aria-label='{what} {n} name']"), name).await?;
    fill(browser, &format!("[aria-label='{what} {n} value']"), value).await
}

/// A webhook built in the form: its preview, asked as the form is edited,
/// names a bad field with the API's refusal and then shows the request;
/// once created, its Test button sends that same request (method, path,
/// query, header and body) to the endpoint, and the page shows the answer.
pub async fn builder_preview_then_test(browser: &Browser, host: &TestHost) -> Result<()> {
    let mut endpoint = Endpoint::start(201, r#"{"stored":true}"#).await;
    webhooks_view(browser).await?;
    fill(browser, "#builder-name", "Built in the browser").await?;
    fill(browser, "#builder-event", "built").await?;
    fill(browser, "#builder-url", "ftp://example.com/").await?;
    let refusal = browser
        .wait_for(
            "the preview's refusal",
            "return document.getElementById('builder-error').textContent",
        )
        .await?;
    ensure!(
        refusal.as_str().is_some_and(|r| r.starts_with("`url`")),
        "the refusal shown: {refusal}"
    );

    fill(
        browser,
        "#builder-url",
        &endpoint.url("/built/{{PARTICLE_DEVICE_ID}}"),
    )
    .await?;
    choose(browser, "builder-method", "PUT").await?;
    choose(browser, "builder-type", "JSON").await?;
    fill(
        browser,
        "#builder-body",
        r#"{"celsius": "{{PARTICLE_EVENT_VALUE}}", "from": "{{PARTICLE_DEVICE_ID}}"}"#,
    )
    .await?;
    browser.click(Locator::Css("#builder-no-defaults")).await?;
    add_pair(browser, "builder-headers", "Header", "X-Source", "console").await?;
    add_pair(browser, "builder-query", "Query parameter", "unit", "C").await?;
    fill(browser, "#sample-data", "21.5").await?;
    fill(browser, "#sample-device", "d-built").await?;
    browser
        .click(Locator::Css("#builder-preview-button"))
        .await?;
    let preview = browser
        .wait_for(
            "the preview of the whole form",
            "const p = document.getElementById('builder-preview');
             const text = (css) => { const e = p.querySelector(css); return e ? e.textContent : ''; };
             return p.dataset.state === 'shown' && text('.body').includes('21.5')
               && text('.headers').includes('X-Source') && text('.url').includes('unit=C')
               && { method: text('.method'), url: text('.url'), headers: text('.headers'), body: text('.body') };",
        )
        .await?;
    ensure!(
        browser.text("#builder-error").await?.is_empty(),
        "the refusal is still shown"
    );
    let built = browser.text("#builder-json").await?;
    let built: Value = serde_json::from_str(&built).context("the JSON shown")?;
    ensure!(
        built["requestType"] == "PUT"
            && built["noDefaults"] == true
            && built["json"]["celsius"] == "{{PARTICLE_EVENT_VALUE}}"
            && built["headers"] == json!({ "X-Source": "console" })
            && built["query"] == json!({ "unit": "C" }),
        "the JSON built: {built}"
    );
    browser
        .client
        .execute(
            "document.getElementById('builder').scrollIntoView()",
            vec![],
        )
        .await?;
    screenshot(browser, "console-builder.png").await?;

    browser.click(Locator::Css("#builder-submit")).await?;
    let row = "//table[@id='webhooks']//tr[td[2]='Built in the browser']";
    browser.appears(Locator::XPath(row)).await?;
    let (_, list) = host.api("GET", "/v1/webhooks", "").await;
    let made = list
        .as_array()
        .and_then(|all| all.iter().find(|w| w["name"] == "Built in the browser"))
        .with_context(|| format!("not created: {list}"))?;
    ensure!(
        made["event"] == "built" && made["json"] == built["json"],
        "{made}"
    );

    browser
        .click(Locator::XPath(&format!("{row}//button[text()='Test']")))
        .await?;
    let seen = endpoint.next().await;
    let status = browser
        .wait_for(
            "the test's answer",
            "const out = document.getElementById('webhook-test');
             const status = out.querySelector('.response .status');
             return out.dataset.state === 'done' && status && status.textContent",
        )
        .await?;
    ensure!(status == "201", "the test's status shown: {status}");
    let shown = browser.text("#webhook-test").await?;
    ensure!(
        shown.contains("delivered") && shown.contains(r#"{"stored":true}"#),
        "the test's answer: {shown}"
    );
    let previewed: url::Url = preview["url"].as_str().unwrap_or_default().parse()?;
    ensure!(
        seen.method.as_str() == preview["method"]
            && seen.uri.path() == previewed.path()
            && seen.uri.query() == previewed.query()
            && seen.header("x-source") == Some("console")
            && std::str::from_utf8(&seen.body)? == preview["body"],
        "previewed {preview}, the endpoint got {} {} {:?} {:?}",
        seen.method,
        seen.uri,
        seen.headers,
        seen.body
    );
    ensure!(
        seen.uri.path() == "/built/d-built",
        "the sample device: {}",
        seen.uri
    );
    Ok(())
}

/// The rows of the history table, each as its cells' texts, once loaded.
async fn history_rows(browser: &Browser, what: &str, until: &str) -> Result<Value> {
    browser
        .wait_for(
            what,
            &format!(
                "const table = document.getElementById('history');
                 if (table.hasAttribute('aria-busy')) return null;
                 const rows = [...table.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent));
                 return ({until}) && rows;"
            ),
        )
        .await
}

/// The history lists the attempts the filter selects; a row shows its
/// request, response and event; the dead letters list a given-up delivery
/// whose Replay button sends its event again; Replay these sends again
/// every event the filter selects.
pub async fn history_and_replay(browser: &Browser, host: &TestHost) -> Result<()> {
    let mut flaky = Endpoint::start(500, "down").await;
    host.create_webhook(json!({ "name": "Flaky", "event": "flaky", "url": flaky.url("/flaky") }))
        .await;
    let device = Device::connect(host.mqtt_addr(), "d7").await;
    device.publish("flaky", "lost-1").await;
    let first = flaky.next().await;
    host.wait_for("/v1/dead-letters?device=d7", |page| {
        page["dead_letters"].as_array().map(Vec::len) == Some(1)
    })
    .await;

    browser
        .click(Locator::Css("#nav [data-view=history]"))
        .await?;
    history_rows(browser, "the history", "rows.length > 1").await?;
    fill(browser, "#history-device", "d-built").await?;
    choose(browser, "history-outcome", "delivered").await?;
    browser
        .click(Locator::Css("#history-filter button[type=submit]"))
        .await?;
    let rows = history_rows(
        browser,
        "the test's delivery alone",
        "rows.length === 1 && rows[0][4] === 'd-built'",
    )
    .await?;
    ensure!(
        rows[0][1] == "delivered"
            && rows[0][2] == "1"
            && rows[0][3] == "Built in the browser"
            && rows[0][5] == "built"
            && rows[0][6] == "201",
        "the row: {rows}"
    );
    browser
        .click(Locator::Css(
            "#history tbody tr:first-child td:nth-child(5)",
        ))
        .await?;
    let detail = browser
        .wait_for(
            "the attempt's detail and its event",
            "const d = document.getElementById('history-detail');
             return d.querySelector('.event dl') && d.textContent",
        )
        .await?;
    let detail = detail.as_str().unwrap_or_default();
    for shown in [
        "/built/d-built?unit=C",
        "X-Source: console",
        r#""celsius":"21.5""#,
        "Response 201",
        r#"{"stored":true}"#,
        "Its attempts, oldest first (1)",
    ] {
        ensure!(detail.contains(shown), "{shown} missing from {detail}");
    }
    ensure!(
        browser.text("#history-detail .request .method").await? == "PUT",
        "the method shown"
    );
    screenshot(browser, "console-history.png").await?;

    browser.click(Locator::Css("#history-dead")).await?;
    fill(browser, "#history-device", "d7").await?;
    browser
        .click(Locator::Css("#history-filter button[type=submit]"))
        .await?;
    let rows = history_rows(
        browser,
        "the dead letter",
        "rows.length === 1 && rows[0][4] === 'd7'",
    )
    .await?;
    ensure!(
        rows[0][1] == "gave_up" && rows[0][3] == "Flaky" && rows[0][6] == "500",
        "the dead letter: {rows}"
    );
    flaky.answer(200, "ok", Duration::ZERO);
    browser
        .click(Locator::Css(
            "#history tbody tr:first-child td:nth-child(6)",
        ))
        .await?;
    browser
        .appears(Locator::XPath(
            "//div[@id='history-detail']//button[text()='Replay']",
        ))
        .await?
        .click()
        .await?;
    let again = flaky.next().await;
    ensure!(
        again.method == first.method && again.body == first.body,
        "the replay sent {:?}, the first attempt {:?}",
        again.body,
        first.body
    );
    let replayed = browser
        .wait_for(
            "the replay's count",
            "const out = document.querySelector('#history-detail .replayed');
             return out && out.textContent",
        )
        .await?;
    ensure!(replayed == "replayed 1", "shown: {replayed}");
    host.wait_for("/v1/dead-letters?device=d7", |page| {
        page["dead_letters"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    browser
        .click(Locator::Css("#history-filter button[type=submit]"))
        .await?;
    history_rows(
        browser,
        "no dead letter left",
        "rows.length === 1 && rows[0][0] === 'No dead letters.'",
    )
    .await?;

    // Replay these: every event of the filter (device d7, the last 24
    // hours by default), once each.
    browser.click(Locator::Css("#history-all")).await?;
    choose(browser, "history-outcome", "any").await?;
    browser
        .click(Locator::Css("#history-filter button[type=submit]"))
        .await?;
    history_rows(
        browser,
        "d7's attempts",
        "rows.length === 2 && rows.every(r => r[4] === 'd7')",
    )
    .await?;
    browser.click(Locator::Css("#history-replay")).await?;
    let question = browser.client.get_alert_text().await?;
    ensure!(
        question == "Replay every event the filter selects since 24h?",
        "the confirmation asked {question}"
    );
    browser.client.accept_alert().await?;
    let third = flaky.next().await;
    ensure!(third.body == first.body, "replayed {:?}", third.body);
    let replayed = browser
        .wait_for(
            "the replay's count",
            "return document.getElementById('history-replayed').textContent",
        )
        .await?;
    ensure!(replayed == "replayed 1", "shown: {replayed}");
    Ok(())
}
