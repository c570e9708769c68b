//! A headless Chromium driven over WebDriver: `chromedriver` started once
//! as a child process on a free loopback port, one browser session, and
//! the few things the console's tests ask of it beyond fantoccini (the
//! browser's console log, waiting for a script's answer), and the
//! clicks, typing and waits they repeat, with errors that name the element.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::support::WAIT;

/// What to install when the browser or its driver is missing.
const INSTALL: &str = "apt-get install chromium chromium-driver";

/// A running chromedriver with one headless Chromium session.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    /// The leader of its own process group, which holds the browser it
    /// started: on drop (a failed or panicking test too) the whole group
    /// is killed, so that no browser outlives the test.
    chromedriver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = self.chromedriver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session that records
    /// the page's console messages; fails naming the packages to install
    /// when either is missing.
    pub async fn start() -> Result<Self> {
        let chromium = ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find_map(on_path)
            .with_context(|| format!("no Chromium on PATH: {INSTALL}"))?;
        let chromedriver = on_path("chromedriver")
            .with_context(|| format!("no chromedriver on PATH: {INSTALL}"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}: {INSTALL}", chromedriver.display()))?;
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if tokio::time::Instant::now() > deadline {
                bail!("chromedriver did not listen on port {port} within {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1000",
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("opening a Chromium session through chromedriver")?;
        Ok(Self {
            client,
            chromedriver: child,
        })
    }

    /// The console messages the page logged since the last call (the log
    /// is drained on read): each entry has `level`, `source` and `message`.
    pub async fn console_log(&self) -> Result<Vec<Value>> {
        let answer = self.client.issue_cmd(BrowserLog).await?;
        Ok(answer.as_array().cloned().unwrap_or_default())
    }

    /// Waits until `script` (a function body) returns something other
    /// than `null`, `false` or `""`, polling; its answer.
    pub async fn wait_for(&self, what: &str, script: &str) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let answer = self.client.execute(script, vec![]).await?;
            if !matches!(&answer, Value::Null | Value::Bool(false)) && answer.as_str() != Some("") {
                return Ok(answer);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("waited {WAIT:?} for {what}; the script last answered {answer}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most [`WAIT`]) for the element `at` to be in the page.
    pub async fn appears(&self, at: Locator<'_>) -> Result<Element> {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(at)
            .await
            .with_context(|| format!("waited {WAIT:?} for {at:?}"))
    }

    /// Clicks the element `at`.
    pub async fn click(&self, at: Locator<'_>) -> Result<()> {
        self.find(at).await?.click().await?;
        Ok(())
    }

    /// Types `text` into the element `at`.
    pub async fn type_into(&self, at: Locator<'_>, text: &str) -> Result<()> {
        self.find(at).await?.send_keys(text).await?;
        Ok(())
    }

    async fn find(&self, at: Locator<'_>) -> Result<Element> {
        self.client
            .find(at)
            .await
            .with_context(|| format!("no element {at:?}"))
    }

    /// The text of the element `css`.
    pub async fn text(&self, css: &str) -> Result<String> {
        Ok(self.find(Locator::Css(css)).await?.text().await?)
    }
}

/// `name` found in a directory of `PATH`.
fn on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// chromedriver's `POST /session/{id}/se/log` for the `browser` log.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}
