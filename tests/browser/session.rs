//! Opening the console and the session: the page's headers, weight and
//! first paint, a wrong token, logging in and out, and the browser's
//! console log.

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::driver::Browser;
use crate::support::TestHost;

/// The bound on what the first paint transfers.
const MAX_PAGE_BYTES: u64 = 100_000;

/// The page is served without the token, with the CSP and the other
/// headers of the console.
pub async fn security_headers(host: &TestHost) -> Result<()> {
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
pub async fn first_paint(browser: &Browser, base: &str) -> Result<()> {
    browser.client.goto(&format!("{base}/")).await?;
    browser
        .appears(Locator::Css("#login:not([hidden]) #token"))
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
        .click(Locator::Css("#login button[type=submit]"))
        .await?;
    Ok(())
}

/// A wrong token shows an error in the form, and nothing else.
pub async fn wrong_token(browser: &Browser) -> Result<()> {
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
            "const shown = (e) => e.getClientRects().length > 0;
             return {
               stored: sessionStorage.length,
               nav: !shown(document.getElementById('nav')),
               views: [...document.querySelectorAll('main > section')].filter(shown).length,
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
pub async fn log_in(browser: &Browser, host: &TestHost) -> Result<()> {
    let token = host.host.api_token.to_string();
    submit_token(browser, &token).await?;
    browser
        .appears(Locator::XPath(
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
        .appears(Locator::XPath(
            "//table[@id='webhooks']//tr[td[2]='Temperature']",
        ))
        .await
        .context("a reload keeps the session")?;
    Ok(())
}

/// Logging out forgets the token and shows the login form alone.
pub async fn log_out(browser: &Browser) -> Result<()> {
    browser.click(Locator::Css("#logout")).await?;
    let state = browser
        .client
        .execute(
            "const shown = (e) => e.getClientRects().length > 0;
             return {
               stored: sessionStorage.length,
               login: shown(document.getElementById('login')),
               nav: shown(document.getElementById('nav')),
               views: [...document.querySelectorAll('main > section')].filter(shown).length,
             }",
            vec![],
        )
        .await?;
    ensure!(
        state == json!({ "stored": 0, "login": true, "nav": false, "views": 0 }),
        "after logging out: {state}"
    );
    Ok(())
}

/// The page logged no error: the only ones allowed are the network's
/// record of the refusals the scenarios provoke (the wrong token's 401,
/// the refused definition's 400, the builder's previews of an unfinished
/// definition, the full project's 409).
pub async fn no_console_errors(browser: &Browser) -> Result<()> {
    let provoked = [
        ("/v1/plugins - ", "status of 401"),
        ("/v1/webhooks - ", "status of 400"),
        ("/v1/webhooks/preview - ", "status of 400"),
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
