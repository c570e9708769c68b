//! The host's HTTP API, as far as the run needs it: creating the webhooks
//! (and, for device logins, the devices) before and deleting them after.

use std::path::Path;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::args::Auth;
use crate::devices::EVENT;

/// The name of the plugin `--plugin` installs.
pub const PLUGIN: &str = "edgehook-bench";
use crate::sink::Sink;

/// API calls in flight at once while webhooks are created or deleted.
const CONCURRENT_CALLS: usize = 8;

/// A client of one host's API.
#[derive(Debug)]
pub struct Api {
    base: String,
    token: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Api {
    /// A client of the API at `base` with `token`.
    pub fn new(base: &str, token: String) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The WebSocket API's URL, with the token as `api_key`.
    pub fn stream_url(&self) -> String {
        let base = self
            .base
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        format!("{base}/v1/stream?api_key={}", self.token)
    }

    /// The token a local host keeps in its data directory.
    pub fn read_token(data: &Path) -> anyhow::Result<String> {
        let path = data.join("api-token");
        let token = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no API token: give --token, set EDGEHOOK_API_TOKEN, or --data DIR of a host ({} not readable)",
                path.display()
            )
        })?;
        Ok(token.trim().to_owned())
    }

    /// Creates the webhook the devices' events run, with `auth` (none when
    /// a plugin runs them), and `others` that match none of them; their
    /// ids, the answering one first.
    pub async fn create_webhooks(
        &self,
        sink: &Sink,
        load: Option<Auth>,
        others: usize,
    ) -> anyhow::Result<Vec<String>> {
        let sink_url = &sink.url();
        let definitions = load
            .map(|auth| load_webhook(sink_url, &sink.token_url(), auth))
            .into_iter()
            .chain((0..others).map(|n| idle_webhook(n, sink_url)));
        let created: Vec<anyhow::Result<String>> = stream::iter(definitions)
            .map(|definition| self.create(definition))
            .buffered(CONCURRENT_CALLS)
            .collect()
            .await;
        let mut ids = Vec::with_capacity(created.len());
        let mut failure = None;
        for outcome in created {
            match outcome {
                Ok(id) => ids.push(id),
                Err(err) => {
                    failure.get_or_insert(err);
                }
            }
        }
        match failure {
            None => Ok(ids),
            Some(failure) => {
                if let Err(err) = self.delete_webhooks(&ids).await {
                    eprintln!("warning: could not delete the webhooks created so far: {err:#}");
                }
                Err(failure.context("creating the webhooks"))
            }
        }
    }

    /// Deletes these webhooks.
    pub async fn delete_webhooks(&self, ids: &[String]) -> anyhow::Result<()> {
        stream::iter(ids)
            .map(|id| async move {
                self.call(Method::DELETE, &format!("/v1/webhooks/{id}"), None)
                    .await
            })
            .buffer_unordered(CONCURRENT_CALLS)
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    /// Registers the devices `ids`; their keys, in the same order.
    pub async fn register_devices(&self, ids: &[String]) -> anyhow::Result<Vec<String>> {
        stream::iter(ids)
            .map(|id| async move {
                let body = json!({ "id": id, "name": "edgehook-bench" }).to_string();
                let created = self.call(Method::POST, "/v1/devices", Some(body)).await?;
                match created["key"].as_str() {
                    Some(key) => Ok(key.to_owned()),
                    None => bail!("the API registered device {id} without a key"),
                }
            })
            .buffered(CONCURRENT_CALLS)
            .try_collect()
            .await
            .context("registering the devices (an id left from an aborted run? remove it)")
    }

    /// Removes the devices `ids` from the registry.
    pub async fn remove_devices(&self, ids: &[String]) -> anyhow::Result<()> {
        stream::iter(ids)
            .map(|id| async move {
                self.call(Method::DELETE, &format!("/v1/devices/{id}"), None)
                    .await
            })
            .buffer_unordered(CONCURRENT_CALLS)
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    /// Installs `wasm` as plugin [`PLUGIN`] for the `load` events, posting
    /// to `url`, with `config` (TOML lines) besides.
    pub async fn install_plugin(&self, wasm: &Path, url: &str, config: &str) -> anyhow::Result<()> {
        let wasm = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
        let manifest = format!(
            "event = \"{EVENT}\"\nallowed_hosts = [\"127.0.0.1\"]\n[config]\nurl = \"{url}\"\n{config}\n"
        );
        const BOUNDARY: &str = "edgehook-bench-boundary-7d1f";
        let mut body = Vec::with_capacity(wasm.len() + manifest.len() + 256);
        for (field, content) in [("wasm", &wasm[..]), ("manifest", manifest.as_bytes())] {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{field}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        self.send(
            Method::PUT,
            &format!("/v1/plugins/{PLUGIN}"),
            &content_type,
            body.into(),
        )
        .await
        .map(drop)
        .context("installing the plugin")
    }

    /// Removes plugin [`PLUGIN`].
    pub async fn remove_plugin(&self) -> anyhow::Result<()> {
        self.call(Method::DELETE, &format!("/v1/plugins/{PLUGIN}"), None)
            .await
            .map(drop)
    }

    async fn create(&self, definition: Value) -> anyhow::Result<String> {
        let created = self
            .call(Method::POST, "/v1/webhooks", Some(definition.to_string()))
            .await?;
        match created["id"].as_str() {
            Some(id) => Ok(id.to_owned()),
            None => bail!("the API created a webhook without an id: {created}"),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<Value> {
        let body = body.map(Bytes::from).unwrap_or_default();
        self.send(method, path, "application/json", body).await
    }

    /// One API request; its JSON answer (`null` when it has no body).
    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = Request::builder()
            .method(&method)
            .uri(&url)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .with_context(|| format!("--api {:?} is not a usable URL", self.base))?;
        let response = self
            .client
            .request(request)
            .await
            .with_context(|| format!("{method} {url}: is the host running? (see --api)"))?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            bail!("{method} {url}: the API answered {status}: {text}");
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("{method} {url}: the API answered with no JSON: {text}"))
    }
}

/// The webhook under test: a JSON body template, the sink's answer rendered
/// through `responseTemplate`, and errors on a topic that names the event.
fn load_webhook(sink_url: &str, token_url: &str, auth: Auth) -> Value {
    let mut webhook = json!({
        "name": "edgehook-bench",
        "event": EVENT,
        "url": sink_url,
        "requestType": "POST",
        "json": {
            "seq": "{{seq}}",
            "device": "{{PARTICLE_DEVICE_ID}}",
            "value": "{{value}}"
        },
        "noDefaults": true,
        "responseTemplate": "{{echo}}",
        "errorResponseTopic": format!("hook-error/{EVENT}/{{{{seq}}}}")
    });
    let auth = match auth {
        Auth::None => return webhook,
        Auth::Bearer => json!({"type": "bearer", "token": "bench-token"}),
        Auth::Oauth2 => json!({"type": "oauth2-client-credentials",
            "token_url": token_url, "client_id": "bench", "client_secret": "bench"}),
        Auth::AwsSigv4 => json!({"type": "aws-sigv4", "region": "eu-west-1",
            "service": "lambda", "access_key_id": "AKIDBENCH", "secret_access_key": "bench"}),
    };
    webhook["auth"] = auth;
    webhook
}

/// A webhook whose event prefix matches none of the devices' events.
fn idle_webhook(n: usize, sink_url: &str) -> Value {
    json!({
        "name": format!("edgehook-bench-idle-{n}"),
        "event": format!("idle-{n}"),
        "url": sink_url,
        "json": { "seq": "{{seq}}" },
        "noDefaults": true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_topic_names_the_event() {
        let hook = load_webhook("http://127.0.0.1:1/hook", "", Auth::None);
        assert_eq!(hook["errorResponseTopic"], "hook-error/load/{{seq}}");
        assert!(hook.get("auth").is_none());
        let oauth2 = load_webhook("http://s/hook", "http://s/token", Auth::Oauth2);
        assert_eq!(oauth2["auth"]["token_url"], "http://s/token");
    }
}
