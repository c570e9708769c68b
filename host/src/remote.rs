//! The API client of the command line: `edgehook webhook create|list|delete`,
//! `device …`, `group …`, `plugin push|remove` and `subscribe` talk to a
//! running host through its HTTP API.

pub mod deliveries;
pub mod fleet;
pub mod plugins;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Why a call to the API failed; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No host answered.
    #[error(
        "cannot reach the edgehook API at {url}: {reason} (is `edgehook serve` running? see --api)"
    )]
    Unreachable {
        /// The URL called.
        url: String,
        /// The connection error.
        reason: String,
    },
    /// The host answered with an error.
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The host's `error` text.
        message: String,
    },
    /// No token given or found.
    #[error("no API token: give --token, set EDGEHOOK_API_TOKEN, or run where {0} exists")]
    NoToken(PathBuf),
    /// The `--api` URL is not usable.
    #[error("--api {0:?} is not an http:// URL")]
    BadUrl(String),
}

/// Where the API is and how to authenticate.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Base URL of the host's API
    #[arg(
        long,
        global = true,
        env = "EDGEHOOK_API",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub api: String,
    /// Bearer token [default: EDGEHOOK_API_TOKEN, or the token file in --data]
    #[arg(long, global = true, env = "EDGEHOOK_API_TOKEN", value_name = "TOKEN")]
    pub token: Option<String>,
    /// Data directory of a local host, to read its generated token from
    #[arg(long, global = true, default_value = "data", value_name = "DIR")]
    pub data: PathBuf,
}

/// A client of one host's API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl ApiClient {
    /// A client for `args`: the token given, or the one a local host keeps.
    pub fn new(args: &ApiArgs) -> Result<Self, RemoteError> {
        if !args.api.starts_with("http://") {
            return Err(RemoteError::BadUrl(args.api.clone()));
        }
        let token = match &args.token {
            Some(token) => token.clone(),
            None => read_token(&args.data)?,
        };
        Ok(Self {
            base: args.api.trim_end_matches('/').to_owned(),
            token,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Calls `method path` with an optional JSON body; the JSON answer.
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Value, RemoteError> {
        let body = body.map(|b| (b, "application/json"));
        self.call_with(method, path, body).await
    }

    /// Calls `method path` with an optional body and its content type; the
    /// JSON answer.
    pub async fn call_with(
        &self,
        method: http::Method,
        path: &str,
        body: Option<(Bytes, &str)>,
    ) -> Result<Value, RemoteError> {
        let response = self.send(method, path, body).await?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.unreachable(path, &e))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            let message = value["error"].as_str().map_or_else(
                || format!("the API answered {status}: {value}"),
                str::to_owned,
            );
            Err(RemoteError::Refused { status, message })
        }
    }

    /// Follows `GET /v1/events` and hands each event's JSON to `each`, until
    /// the host ends the stream.
    pub async fn subscribe(
        &self,
        prefix: Option<&str>,
        mut each: impl FnMut(&str),
    ) -> Result<(), RemoteError> {
        let path = match prefix {
            Some(p) => format!(
                "/v1/events?prefix={}",
                url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>()
            ),
            None => "/v1/events".to_owned(),
        };
        let response = self.send(http::Method::GET, &path, None).await?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            return Err(RemoteError::Refused {
                status,
                message: format!("the API answered {status} to {path}"),
            });
        }
        let mut body = response.into_body();
        let mut pending = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.unreachable(&path, &e))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if let Some(json) = line.strip_prefix(b"data:") {
                    each(String::from_utf8_lossy(json).trim());
                }
            }
        }
        Ok(())
    }

    async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<(Bytes, &str)>,
    ) -> Result<http::Response<hyper::body::Incoming>, RemoteError> {
        let url = format!("{}{path}", self.base);
        let mut request = http::Request::builder().method(method).uri(&url).header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", self.token),
        );
        let body = match body {
            Some((bytes, content_type)) => {
                request = request.header(http::header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|_| RemoteError::BadUrl(self.base.clone()))?;
        self.client
            .request(request)
            .await
            .map_err(|e| self.unreachable(path, &e))
    }

    fn unreachable(&self, path: &str, err: &dyn std::error::Error) -> RemoteError {
        let mut reason = err.to_string();
        let mut source = err.source();
        while let Some(e) = source {
            reason = e.to_string();
            source = e.source();
        }
        RemoteError::Unreachable {
            url: format!("{}{path}", self.base),
            reason,
        }
    }
}

fn read_token(data: &Path) -> Result<String, RemoteError> {
    let path = data.join(crate::api::auth::TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        _ => Err(RemoteError::NoToken(path)),
    }
}

/// `edgehook webhook list` output, in the manner of `particle webhook list`.
pub fn describe_list(hooks: &[Value]) -> String {
    use std::fmt::Write as _;
    let mut out = match hooks.len() {
        0 => "No webhooks registered\n".to_owned(),
        1 => "Found 1 hook registered\n".to_owned(),
        n => format!("Found {n} hooks registered\n"),
    };
    for (i, hook) in hooks.iter().enumerate() {
        let text = |key: &str| hook[key].as_str().unwrap_or_default();
        let _ = write!(out, "\n    {}.) Hook #{} ", i + 1, text("id"));
        let url = crate::secrets::url(text("url"));
        let _ = match text("dialect") {
            "iottly" => writeln!(
                out,
                "(Iottly) is watching for {} messages of project {}\n        and posting to: {url}",
                text("type"),
                text("project_id"),
            ),
            "mainflux" => writeln!(
                out,
                "(Mainflux) is watching for the events of thing {}\n        and posting to: {url}",
                text("thing_id"),
            ),
            _ => {
                let event = hook["event"].as_str().unwrap_or(text("eventName"));
                let disabled = if hook["disabled"] == Value::Bool(true) {
                    " (disabled)"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "is watching for {event:?}{disabled}\n        and posting to: {url}\n        created at {}",
                    text("created_at"),
                )
            }
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_reads_like_particles() {
        let hooks = [serde_json::json!({
            "id": "0123456789abcdef01234567",
            "eventName": "Librato_",
            "url": "https://metrics-api.librato.com/v1/metrics",
            "created_at": "2015-02-28T03:32:41.412Z",
        })];
        assert_eq!(
            describe_list(&hooks),
            "Found 1 hook registered\n\n    1.) Hook #0123456789abcdef01234567 is watching for \"Librato_\"\n        and posting to: https://metrics-api.librato.com/v1/metrics\n        created at 2015-02-28T03:32:41.412Z\n"
        );
        assert_eq!(describe_list(&[]), "No webhooks registered\n");
    }

    #[test]
    fn the_other_dialects_say_what_they_watch() {
        let hooks = [
            serde_json::json!({"dialect": "iottly", "id": "i1", "project_id": "p1",
                "type": "user", "url": "https://u:pw@h.test/i"}),
            serde_json::json!({"dialect": "mainflux", "id": "m1", "thing_id": "t1",
                "url": "https://h.test/m"}),
        ];
        assert_eq!(
            describe_list(&hooks),
            "Found 2 hooks registered\n\n    1.) Hook #i1 (Iottly) is watching for user messages of project p1\n        and posting to: https://u:***@h.test/i\n\n    2.) Hook #m1 (Mainflux) is watching for the events of thing t1\n        and posting to: https://h.test/m\n"
        );
    }
}
