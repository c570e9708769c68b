//! The delivery history's seam: every attempt of every delivery, with the
//! events they were made for, kept for a retention by age and size and
//! through restarts — what `GET /v1/deliveries`, the dead letters and the
//! replays read. Secrets are masked before an attempt gets here (see
//! [`SentRequest::masked`]): the history is on disk.
//!
//! Each host keeps its own (the file adapter, [`super::HistoryFile`]), on
//! a cluster too: an attempt is where the host that made it is, like the
//! delivery log and the live stream, and the cluster's replicated streams
//! carry nothing more per event.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::exchange::{HookRequest, HookResponse};
use crate::secrets;

/// Bytes of a request's or a response's body kept; the rest is cut.
pub const BODY_KEPT: usize = 8 * 1024;

/// Most (event, webhook) pairs one replay call takes.
pub const MAX_REPLAY: usize = 100_000;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The endpoint answered with success.
    Delivered,
    /// It failed and will be tried again.
    Retrying,
    /// It failed for good: the event is a dead letter for this webhook.
    GaveUp,
    /// Never sent: a destination or a policy refused it.
    Refused,
}

impl Outcome {
    /// The outcome named `text` (`delivered`, `retrying`, `gave_up`,
    /// `refused`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "delivered" => Self::Delivered,
            "retrying" => Self::Retrying,
            "gave_up" => Self::GaveUp,
            "refused" => Self::Refused,
            _ => return None,
        })
    }

    /// Its byte in the store.
    pub(super) fn code(self) -> u8 {
        self as u8
    }

    /// The outcome of byte `code`.
    pub(super) fn of_code(code: u8) -> Option<Self> {
        [Self::Delivered, Self::Retrying, Self::GaveUp, Self::Refused]
            .into_iter()
            .find(|o| o.code() == code)
    }
}

/// The request as sent, masked, its body cut at [`BODY_KEPT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The URL, secrets masked.
    pub url: String,
    /// The headers, secrets masked.
    pub headers: Vec<(String, String)>,
    /// The body's first bytes as text, credential-like members masked.
    pub body: String,
    /// The body's whole length.
    pub body_len: usize,
}

impl SentRequest {
    /// `request` masked by the rule of [`crate::secrets`]: the URL's
    /// credentials, credential-like headers, form pairs and JSON members.
    pub fn masked(request: &HookRequest) -> Self {
        let is_form = request.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("content-type")
                && v.starts_with("application/x-www-form-urlencoded")
        });
        let body = match std::str::from_utf8(&request.body) {
            Ok(text) if is_form => kept(&secrets::pairs(text)),
            Ok(text) => kept(&secrets::json_text(text)),
            Err(_) => kept(&String::from_utf8_lossy(&request.body)),
        };
        Self {
            method: request.method.as_str().to_owned(),
            url: secrets::url(request.url.as_str()).into_owned(),
            headers: masked_headers(&request.headers),
            body,
            body_len: request.body.len(),
        }
    }
}

/// The response as received, its body cut at [`BODY_KEPT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// The HTTP status.
    pub status: u16,
    /// The headers, secrets masked.
    pub headers: Vec<(String, String)>,
    /// The body's first bytes as text, credential-like members masked.
    pub body: String,
    /// The body's whole length.
    pub body_len: usize,
}

impl Received {
    /// `response` masked like a request.
    pub fn masked(response: &HookResponse) -> Self {
        let body = match std::str::from_utf8(&response.body) {
            Ok(text) => kept(&secrets::json_text(text)),
            Err(_) => kept(&String::from_utf8_lossy(&response.body)),
        };
        Self {
            status: response.status,
            headers: masked_headers(&response.headers),
            body,
            body_len: response.body.len(),
        }
    }
}

fn masked_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.clone(), secrets::header(k, v).into_owned()))
        .collect()
}

/// The first [`BODY_KEPT`] bytes of `text`, cut at a character boundary.
fn kept(text: &str) -> String {
    if text.len() <= BODY_KEPT {
        return text.to_owned();
    }
    let mut end = BODY_KEPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// One attempt of one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The event (its `webhook-id`).
    pub event_id: String,
    /// The webhook: a webhook's id, or a plugin's name.
    pub webhook: String,
    /// The event's device.
    pub device: String,
    /// The event's name.
    pub event: String,
    /// 1 for the first attempt; a replay counts on.
    pub number: u32,
    /// When it started.
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
    /// What was sent; `None` when nothing was.
    pub request: Option<SentRequest>,
    /// The response.
    pub response: Option<Received>,
    /// The error, masked, when there was no response or it failed.
    pub error: Option<String>,
    /// How long it took.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// What a list, the dead letters or a replay selects; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// One webhook (its id, or a plugin's name).
    pub webhook: Option<String>,
    /// One device.
    pub device: Option<String>,
    /// One outcome.
    pub outcome: Option<Outcome>,
    /// From this time on.
    pub since: Option<SystemTime>,
    /// Up to this time.
    pub until: Option<SystemTime>,
}

impl Filter {
    /// Whether the attempt with these fields is selected.
    pub(super) fn selects(
        &self,
        webhook: &str,
        device: &str,
        outcome: Outcome,
        at: SystemTime,
    ) -> bool {
        self.webhook.as_deref().is_none_or(|w| w == webhook)
            && self.device.as_deref().is_none_or(|d| d == device)
            && self.outcome.is_none_or(|o| o == outcome)
            && self.since.is_none_or(|s| at >= s)
            && self.until.is_none_or(|u| at <= u)
    }
}

/// Attempts newest first, and where the next page starts.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The attempts.
    pub attempts: Vec<Attempt>,
    /// The cursor of the next page; `None` after the last one.
    pub next: Option<String>,
}

/// An (event, webhook) pair to run again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The event's id.
    pub event_id: String,
    /// The webhook (its id, or a plugin's name).
    pub webhook: String,
    /// Attempts it had so far: the replay's count on from there.
    pub attempts: u32,
}

/// How long and how much is kept (`--history-retention`,
/// `--history-max-bytes`).
pub use crate::config::HistoryLimits as Retention;

/// What the history holds, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Attempts kept.
    pub attempts: u64,
    /// Bytes of attempts and events, as counted against `max_bytes`.
    pub bytes: u64,
}

/// Why the history could not answer.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A cursor this history did not give.
    #[error("not a cursor of the delivery history: {0:?}")]
    Cursor(String),
    /// The store could not be read or written.
    #[error("delivery history: {0}")]
    Store(String),
}

/// Every attempt of every delivery, with the events they were made for.
#[async_trait::async_trait]
pub trait History: std::fmt::Debug + Send + Sync {
    /// Keeps `events` (an event already kept is kept once) and `attempts`
    /// in one write, durable when it returns, then lets go of what is past
    /// the retention.
    async fn append(&self, events: Vec<Event>, attempts: Vec<Attempt>) -> Result<(), HistoryError>;

    /// The attempts `filter` selects, newest first, at most `limit`, after
    /// `cursor`; with `dead`, only the last attempt of each (event,
    /// webhook) that gave up and was not replayed since.
    async fn page(
        &self,
        filter: Filter,
        dead: bool,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<Page, HistoryError>;

    /// Every attempt of every webhook of the event, oldest first.
    async fn of_event(&self, event_id: String) -> Result<Vec<Attempt>, HistoryError>;

    /// The (event, webhook) pairs that have an attempt `filter` selects,
    /// newest first, at most `max`.
    async fn targets(&self, filter: Filter, max: usize) -> Result<Vec<Target>, HistoryError>;

    /// The event `event_id` as it was taken, while it is kept.
    async fn event(&self, event_id: String) -> Result<Option<Event>, HistoryError>;

    /// Lets go of what is past the retention now (also done by every
    /// append); the writer calls it now and then when no attempt comes.
    async fn prune(&self) -> Result<(), HistoryError>;

    /// Sets what is kept (at start and on reload).
    fn retain(&self, retention: Retention);

    /// What it holds now.
    fn held(&self) -> Held;
}
