//! The webhooks view and the log view: the list of every dialect,
//! creating (refused and accepted), editing, disabling, deleting, and a
//! delivery's log with its secrets masked.

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::driver::Browser;
use crate::support::{Device, Endpoint, HostUnderTest, TestHost};

/// Secrets of the webhook whose log the console shows: none may reach the
/// page.
const SECRETS: [&str; 3] = ["hdr-secret-1", "pw-secret-1", "resp-secret-1"];

/// Opens the webhooks view and waits until its list is loaded.
pub async fn webhooks_view(browser: &Browser) -> Result<()> {
    browser
        .click(Locator::Css("#nav [data-view=webhooks]"))
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
    browser.click(Locator::Css("#webhook-submit")).await?;
    Ok(())
}

/// A definition the API refuses shows the API's 400 message beside the
/// field, and creates nothing.
pub async fn refused_creation(browser: &Browser, host: &TestHost) -> Result<()> {
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
    ensure!(particle_webhooks(&list) == 1, "{list}");
    Ok(())
}

/// A webhook created in the page is in the API and the list; deleted in
/// the page (once confirmed), it is gone from both.
pub async fn creation_and_deletion(browser: &Browser, host: &TestHost) -> Result<()> {
    submit_definition(
        browser,
        r#"{"name": "Made in the browser", "event": "made", "url": "https://example.com/made"}"#,
    )
    .await?;
    let row = "//table[@id='webhooks']//tr[td[2]='Made in the browser']";
    browser.appears(Locator::XPath(row)).await?;
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
        .click(Locator::XPath(&format!("{row}//button[text()='Delete']")))
        .await?;
    let question = browser.client.get_alert_text().await?;
    ensure!(
        question == "Delete the Particle webhook Made in the browser?",
        "the confirmation asked {question}"
    );
    browser.client.accept_alert().await?;
    browser
        .wait_for(
            "the deleted webhook's row to go",
            "return [...document.querySelectorAll('#webhooks tbody tr')]
               .every(r => !r.textContent.includes('Made in the browser'))",
        )
        .await?;
    let (_, list) = host.api("GET", "/v1/webhooks", "").await;
    ensure!(particle_webhooks(&list) == 1, "{list}");
    Ok(())
}

/// After a delivery, the webhook's last status is in the list and its log
/// shows the request and the response body, every secret masked; a
/// screenshot of the list is saved.
pub async fn delivery_log(
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
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");
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
        .click(Locator::XPath(&format!(
            "//tr[@data-id='{id}']//button[text()='Log']"
        )))
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
pub async fn edit_and_toggle(
    browser: &Browser,
    host: &TestHost,
    id: &str,
    endpoint: &mut Endpoint,
) -> Result<()> {
    webhooks_view(browser).await?;
    let row = format!("//tr[@data-id='{id}']");
    browser
        .appears(Locator::XPath(&format!("{row}//button[text()='Edit']")))
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
    browser.click(Locator::Css("#webhook-submit")).await?;
    browser
        .appears(Locator::XPath(&format!(
            "{row}[td[2]='Temperature (edited)']"
        )))
        .await?;
    // Not `d1`, whose connection from the delivery log may still be
    // closing: a second client with its id would take its session over.
    let device = Device::connect(host.mqtt_addr(), "d4").await;
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
            .click(Locator::XPath(&format!("{row}//button[text()='{button}']")))
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

/// Fills the Iottly form with `description` and a fixed URL, and submits it.
async fn add_iottly(browser: &Browser, description: &str) -> Result<()> {
    browser
        .type_into(Locator::Css("#iottly-description"), description)
        .await?;
    browser
        .type_into(Locator::Css("#iottly-url"), "https://example.com/agent")
        .await?;
    browser
        .click(Locator::Css("#iottly-form button[type=submit]"))
        .await
}

/// Iottly webhooks added in the page fill their project up to the
/// configured limit, beyond which the API's refusal shows beside the form;
/// a Mainflux webhook added to a thing joins the list.
pub async fn other_dialects(browser: &Browser, host: &TestHost) -> Result<()> {
    for (n, expected) in [
        (2, "p1: 2 of 3 webhooks"),
        (3, "p1: 3 of 3 webhooks (full)"),
    ] {
        add_iottly(browser, &format!("Agent {n}")).await?;
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
    add_iottly(browser, "Agent 4").await?;
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
        .type_into(Locator::Css("#mainflux-name"), "Second pipeline")
        .await?;
    browser
        .type_into(Locator::Css("#mainflux-url"), "https://example.com/second")
        .await?;
    browser
        .click(Locator::Css("#mainflux-form button[type=submit]"))
        .await?;
    browser.appears(Locator::XPath(
            "//table[@id='webhooks']//tr[td[1]='Mainflux'][td[2]='Second pipeline'][td[3]='thing d3 (group p1)']",
        ))
        .await?;
    let (_, things) = host.api("GET", "/things/d3/webhooks", "").await;
    ensure!(things.as_array().map(Vec::len) == Some(2), "{things}");
    // Which auth a webhook uses is shown, its secret never.
    let pipeline = browser
        .wait_for(
            "the auth of the first Mainflux webhook",
            "const row = [...document.querySelectorAll('#webhooks tbody tr')].find(r => r.cells[1].textContent === 'Pipeline');
             return row && row.cells[3].textContent",
        )
        .await?;
    ensure!(
        pipeline == json!("https://example.com/mainflux (auth: bearer)"),
        "the row shows {pipeline}"
    );
    let page = browser.text("body").await?;
    ensure!(
        !page.contains("mf-secret-1"),
        "the bearer token is on the page"
    );
    Ok(())
}

/// How many of the webhooks `list` (of every dialect) are Particle-style.
fn particle_webhooks(list: &Value) -> usize {
    list.as_array().map_or(0, |all| {
        all.iter().filter(|w| w["dialect"] == "particle").count()
    })
}

/// An Iottly webhook edited in the page (its JSON as the API shows it) is
/// replaced in its project under the same id.
pub async fn iottly_edit(browser: &Browser, host: &TestHost) -> Result<()> {
    webhooks_view(browser).await?;
    let row = "//table[@id='webhooks']//tr[td[1]='Iottly'][td[2]='Agent 2']";
    let id = browser
        .appears(Locator::XPath(row))
        .await?
        .attr("data-id")
        .await?
        .context("the row's id")?;
    browser
        .click(Locator::XPath(&format!("{row}//button[text()='Edit']")))
        .await?;
    let shown = browser
        .wait_for(
            "the Iottly definition in the form",
            "const text = document.getElementById('webhook-json').value;
             return text.includes('Agent 2') && text",
        )
        .await?;
    let shown: Value = serde_json::from_str(shown.as_str().unwrap_or_default())?;
    ensure!(
        shown["type"] == "user" && shown.get("id").is_none(),
        "the form shows {shown}"
    );
    browser
        .client
        .execute(
            "const field = document.getElementById('webhook-json');
             field.value = field.value.replace('\"Agent 2\"', '\"Agent 2 (edited)\"').replace('\"user\"', '\"iottly\"');",
            vec![],
        )
        .await?;
    browser.click(Locator::Css("#webhook-submit")).await?;
    browser
        .appears(Locator::XPath(&format!(
            "//tr[@data-id='{id}'][td[2]='Agent 2 (edited)'][td[3]='project p1, iottly messages']"
        )))
        .await?;
    let (_, list) = host.api("GET", "/v1/projects/p1/webhooks", "").await;
    let edited = list
        .as_array()
        .and_then(|all| all.iter().find(|w| w["id"] == id.as_str()))
        .with_context(|| format!("{id} gone: {list}"))?;
    ensure!(
        edited["description"] == "Agent 2 (edited)" && edited["type"] == "iottly",
        "{edited}"
    );
    ensure!(list.as_array().map(Vec::len) == Some(3), "{list}");
    Ok(())
}
