//! `/v1/deliveries…` and `/v1/dead-letters` (CONTRACT section 15): the
//! delivery history, newest first in cursor pages, one event's attempts,
//! and replays by event or by filter.

use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use crate::event::Event;
use crate::pipeline::ReplayError;
use crate::stores::history::{Attempt, Filter, HistoryError, Outcome, Received, SentRequest};

/// Attempts in a page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;

/// Most attempts in a page.
const MAX_LIMIT: usize = 1000;

/// The routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/deliveries", get(list))
        .route("/v1/deliveries/replay", post(replay))
        .route("/v1/deliveries/{event_id}", get(of_event))
        .route("/v1/deliveries/{event_id}/replay", post(replay_event))
        .route("/v1/dead-letters", get(dead_letters))
}

/// The query of a list: the filter, `limit` and `cursor`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Selection {
    webhook: Option<String>,
    device: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Why a request about the history is refused.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("`{field}`: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("{0}")]
    Body(String),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Field { .. } | Self::Body(_) | Self::History(HistoryError::Cursor(_)) => {
                StatusCode::BAD_REQUEST
            }
            Self::Replay(ReplayError::Unknown(_)) => StatusCode::NOT_FOUND,
            Self::Replay(ReplayError::History(err)) | Self::History(err) => {
                tracing::error!("{err}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

impl Selection {
    fn filter(&self) -> Result<Filter, Refusal> {
        let outcome = self
            .outcome
            .as_deref()
            .map(|o| {
                Outcome::parse(o).ok_or_else(|| Refusal::Field {
                    field: "outcome",
                    reason: format!("{o:?} is none of delivered, retrying, gave_up, refused"),
                })
            })
            .transpose()?;
        Ok(Filter {
            webhook: self.webhook.clone(),
            device: self.device.clone(),
            outcome,
            since: time("since", self.since.as_deref())?,
            until: time("until", self.until.as_deref())?,
        })
    }

    fn limit(&self) -> Result<usize, Refusal> {
        match self.limit.unwrap_or(DEFAULT_LIMIT) {
            n @ 1..=MAX_LIMIT => Ok(n),
            n => Err(Refusal::Field {
                field: "limit",
                reason: format!("{n} is not within 1..={MAX_LIMIT}"),
            }),
        }
    }
}

/// A time given as RFC 3339 (`2026-12-04T10:00:00Z`) or as a duration
/// before now (`90m`, `2d`).
fn time(field: &'static str, text: Option<&str>) -> Result<Option<SystemTime>, Refusal> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return Ok(Some(at));
    }
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(Some(
            SystemTime::now()
                .checked_sub(ago)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        )),
        Err(_) => Err(Refusal::Field {
            field,
            reason: format!(
                "{text:?} is neither an RFC 3339 time (2026-12-04T10:00:00Z) nor a time ago (90m)"
            ),
        }),
    }
}

/// `GET /v1/deliveries`.
async fn list(
    State(state): State<ApiState>,
    Query(q): Query<Selection>,
) -> Result<Json<Value>, Refusal> {
    page(&state, q, false, "deliveries").await
}

/// `GET /v1/dead-letters`.
async fn dead_letters(
    State(state): State<ApiState>,
    Query(q): Query<Selection>,
) -> Result<Json<Value>, Refusal> {
    page(&state, q, true, "dead_letters").await
}

async fn page(
    state: &ApiState,
    q: Selection,
    dead: bool,
    name: &str,
) -> Result<Json<Value>, Refusal> {
    let (filter, limit) = (q.filter()?, q.limit()?);
    let page = state
        .replays
        .history()
        .page(filter, dead, limit, q.cursor)
        .await?;
    let attempts: Vec<Value> = page.attempts.iter().map(attempt_json).collect();
    Ok(Json(json!({ name: attempts, "next_cursor": page.next })))
}

/// `GET /v1/deliveries/{event_id}`: the event and every attempt of it,
/// oldest first; `404` when the history has none.
async fn of_event(
    State(state): State<ApiState>,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, Refusal> {
    let history = state.replays.history();
    let attempts = history.of_event(event_id.clone()).await?;
    if attempts.is_empty() {
        return Err(ReplayError::Unknown(event_id).into());
    }
    let event = history.event(event_id.clone()).await?;
    Ok(Json(json!({
        "event_id": event_id,
        "event": event.as_ref().map(event_json),
        "attempts": attempts.iter().map(attempt_json).collect::<Vec<_>>(),
    })))
}

/// The body of `POST /v1/deliveries/replay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    webhook: Option<String>,
    device: Option<String>,
    outcome: Option<String>,
    since: String,
    until: Option<String>,
}

/// `POST /v1/deliveries/replay`: `202 {"replayed": n}`.
async fn replay(State(state): State<ApiState>, body: axum::body::Bytes) -> Response {
    let body: ReplayBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return Refusal::Body(format!(
                "the body is not a replay {{\"since\", \"webhook\"?, \"device\"?, \"outcome\"?, \"until\"?}}: {e}"
            ))
            .into_response();
        }
    };
    let selection = Selection {
        webhook: body.webhook,
        device: body.device,
        outcome: body.outcome,
        since: Some(body.since),
        until: body.until,
        ..Selection::default()
    };
    let started = async {
        let filter = selection.filter()?;
        Ok::<_, Refusal>(state.replays.matching(filter).await?)
    };
    match started.await {
        Ok(n) => (StatusCode::ACCEPTED, Json(json!({ "replayed": n }))).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `POST /v1/deliveries/{event_id}/replay`: `202 {"replayed": n}`, `404`
/// when the history does not have the event.
async fn replay_event(State(state): State<ApiState>, Path(event_id): Path<String>) -> Response {
    match state.replays.event(&event_id).await {
        Ok(n) => (StatusCode::ACCEPTED, Json(json!({ "replayed": n }))).into_response(),
        Err(err) => Refusal::from(err).into_response(),
    }
}

/// An attempt as the API shows it (masked when it was recorded).
pub fn attempt_json(a: &Attempt) -> Value {
    json!({
        "event_id": a.event_id,
        "webhook": a.webhook,
        "device_id": a.device,
        "event": a.event,
        "attempt": a.number,
        "at": humantime::format_rfc3339_millis(a.at).to_string(),
        "duration_ms": millis(a.duration),
        "outcome": a.outcome,
        "request": a.request.as_ref().map(request_json),
        "response": a.response.as_ref().map(response_json),
        "error": a.error,
    })
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

/// A request as the API shows it (masked when it was recorded).
pub fn request_json(r: &SentRequest) -> Value {
    json!({
        "method": r.method,
        "url": r.url,
        "headers": r.headers,
        "body": r.body,
        "body_bytes": r.body_len,
    })
}

fn response_json(r: &Received) -> Value {
    json!({
        "status": r.status,
        "headers": r.headers,
        "body": r.body,
        "body_bytes": r.body_len,
    })
}

fn event_json(e: &Event) -> Value {
    json!({
        "id": e.id,
        "device_id": e.device.as_str(),
        "name": e.name.as_str(),
        "data": crate::secrets::json_text(&String::from_utf8_lossy(&e.data)),
        "published_at": e.published_at,
    })
}
