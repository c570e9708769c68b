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
    /// Who answers the device once the request is done.
    pub answer: Answer,
}

/// Who turns the outcome of a request into messages for the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The plugin's `on-response`.
    Plugin,
    /// The host, as the guest SDK's default does: [`Outcome::default_replies`].
    Default,
    /// Nobody: the device gets its `hook-sent` only.
    None,
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

impl Outcome {
    /// The answer of a plugin that leaves it to the host: a 2xx body on
    /// `hook-response`, `error status {status}` for any other status and the
    /// reason of a failure on `hook-error`.
    pub fn default_replies(&self) -> Vec<Reply> {
        vec![match self {
            Self::Response(r) if (200..300).contains(&r.status) => Reply {
                kind: ReplyKind::Response,
                topic: None,
                payload: r.body.clone(),
                unchunked: false,
            },
            Self::Response(r) => Reply::error(format!("error status {}", r.status)),
            Self::Failed(why) => Reply::error(why.clone()),
        }]
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &'static str) -> Outcome {
        Outcome::Response(HookResponse {
            status,
            headers: Vec::new(),
            body: Bytes::from_static(body.as_bytes()),
        })
    }

    #[test]
    fn the_default_answer_is_the_sdks() {
        let ok = response(201, "made").default_replies();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].kind, ReplyKind::Response);
        assert_eq!(ok[0].payload, "made");
        assert_eq!(
            response(404, "nope").default_replies(),
            [Reply::error("error status 404")]
        );
        assert_eq!(
            Outcome::Failed("timed out after 20 s".into()).default_replies(),
            [Reply::error("timed out after 20 s")]
        );
    }
}
