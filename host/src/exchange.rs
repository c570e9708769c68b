//! The values a plugin and the host exchange, in the host's own types.
//!
//! The runtime converts the WIT bindings into these at the sandbox boundary
//! (checking every guest-controlled size on the way), so delivery and
//! publishing never see generated code.

use bytes::Bytes;

/// The HTTP request a plugin asked for, with its URL already parsed.
#[derive(Debug, Clone)]
pub struct HookRequest {
    /// The HTTP method.
    pub method: http::Method,
    /// Absolute `http`/`https` URL.
    pub url: url::Url,
    /// Headers in the order the plugin gave them.
    pub headers: Vec<(String, String)>,
    /// The request body; empty for none.
    pub body: Bytes,
}

/// The answer of the endpoint, as handed back to the plugin.
#[derive(Debug, Clone)]
pub struct HookResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The body, cut at the response size limit.
    pub body: Bytes,
}

/// What became of a request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The endpoint answered, with any status.
    Response(HookResponse),
    /// No answer; the text says why (refused, timeout, connection error).
    Failed(String),
}

/// Which family of device events a reply belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// `hook-response/{event}` by default.
    Response,
    /// `hook-error/{event}` by default.
    Error,
}

/// One message for the device, before chunking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Response or error.
    pub kind: ReplyKind,
    /// Topic under `devices/{id}/` without the chunk index; `None` for the
    /// default of its kind. Checked by the runtime: never an event topic.
    pub topic: Option<String>,
    /// The bytes to send.
    pub payload: Bytes,
    /// One message instead of 512-byte chunks.
    pub unchunked: bool,
}

impl Reply {
    /// An error for the device on the default `hook-error` topic.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: ReplyKind::Error,
            topic: None,
            payload: Bytes::from(text.into()),
            unchunked: false,
        }
    }
}
