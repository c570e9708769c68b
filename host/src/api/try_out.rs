//! Trying a webhook from the console (CONTRACT section 15): `POST
//! /v1/webhooks/preview` renders the request a Particle-style definition
//! would send for a sample event, with the plugin that runs it live, and
//! sends nothing; `POST /v1/webhooks/{id}/test` sends a sample event
//! through the real pipeline and answers with its first attempt.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::deliveries::{attempt_json, request_json};
use super::refusal::webhook_refusal;
use crate::event::Event;
use crate::fleet::GroupId;
use crate::stores::history::SentRequest;
use crate::topic::{DeviceId, EventName};
use crate::webhooks::WebhookError;
use crate::webhooks::ids::hook_name;

/// The device a sample event comes from unless it names one.
const SAMPLE_DEVICE: &str = "edgehook-console";

/// The data of a sample event unless it gives some (Particle's own).
const SAMPLE_DATA: &str = "test-event";

/// How often a test looks for its attempt in the history.
const POLL: Duration = Duration::from_millis(100);

/// A sample event: every field has a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sample {
    name: Option<String>,
    data: Option<String>,
    device_id: Option<String>,
}

impl Sample {
    /// The event, named `name` unless it names itself.
    fn event(self, name: &str) -> Result<Event, WebhookError> {
        let invalid = |field: &'static str, e: &dyn std::fmt::Display| WebhookError::Field {
            field,
            reason: e.to_string(),
        };
        let name = self.name.unwrap_or_else(|| name.to_owned());
        let device = self.device_id.as_deref().unwrap_or(SAMPLE_DEVICE);
        Ok(Event::received(
            DeviceId::try_from(device).map_err(|e| invalid("event.device_id", &e))?,
            EventName::try_from(name.as_str()).map_err(|e| invalid("event.name", &e))?,
            Bytes::from(self.data.unwrap_or_else(|| SAMPLE_DATA.to_owned())),
        ))
    }
}

/// The body of a preview.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    webhook: Value,
    #[serde(default)]
    event: Sample,
}

/// The event name a definition fires on, for a sample event.
fn fired_by(definition: &Value) -> &str {
    ["event", "eventName"]
        .iter()
        .find_map(|k| definition[k].as_str())
        .filter(|name| !name.is_empty())
        .unwrap_or("test")
}

fn parsed<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, WebhookError> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|e| WebhookError::Invalid(e.to_string()));
    }
    serde_json::from_slice(body).map_err(|e| WebhookError::Invalid(format!("the body: {e}")))
}

/// `POST /v1/webhooks/preview` `{"webhook": {…Particle JSON}, "event"?:
/// {"name"?, "data"?, "device_id"?}}` → `{"request": {…} | null}`, masked
/// like the history.
pub async fn preview(State(state): State<ApiState>, body: Bytes) -> Response {
    let rendered = async {
        let PreviewBody { webhook, event } = parsed(&body)?;
        let event = event.event(fired_by(&webhook))?;
        let group = state
            .fleet
            .snapshot()
            .group_of(event.device.as_str())
            .cloned();
        state
            .webhooks
            .particle
            .preview(webhook, &event, group.as_ref().map(GroupId::as_str))
            .await
    };
    match rendered.await {
        Ok(request) => Json(json!({
            "request": request.as_ref().map(|r| request_json(&SentRequest::masked(r))),
        }))
        .into_response(),
        Err(err) => webhook_refusal(&err),
    }
}

/// `POST /v1/webhooks/{id}/test` `{"name"?, "data"?, "device_id"?}`:
/// sends a sample event through webhook `id` as a live event goes
/// (throttle, auth, the answer to the device) and answers with its first
/// attempt, `{"event_id", "attempt"}`; `504` when none was made in time
/// (the plugin sent no request, or the host waits for a destination).
pub async fn test(State(state): State<ApiState>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some(view) = state.webhooks.view(&id) else {
        return webhook_refusal(&WebhookError::NotFound(id));
    };
    let event = match parsed::<Sample>(&body).and_then(|s| s.event(fired_by(&view))) {
        Ok(event) => event,
        Err(err) => return webhook_refusal(&err),
    };
    let event_id = event.id.clone();
    if !state.replays.test(&hook_name(&id), event).await {
        return webhook_refusal(&WebhookError::Invalid(format!(
            "webhook {id} is not running (disabled?)"
        )));
    }
    let within = state.config.load().http_timeout + Duration::from_secs(5);
    let deadline = tokio::time::Instant::now() + within;
    let history = state.replays.history();
    loop {
        match history.of_event(event_id.clone()).await {
            Ok(attempts) if !attempts.is_empty() => {
                return Json(json!({
                    "event_id": event_id,
                    "attempt": attempt_json(&attempts[0]),
                }))
                .into_response();
            }
            Ok(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(POLL).await,
            Ok(_) => {
                let error = format!(
                    "no attempt within {}: the plugin sent no request for the event, or it waits for its destination; see GET /v1/deliveries/{event_id}",
                    humantime::format_duration(within)
                );
                return (
                    StatusCode::GATEWAY_TIMEOUT,
                    Json(json!({ "error": error, "event_id": event_id })),
                )
                    .into_response();
            }
            Err(err) => {
                tracing::error!("{err}");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({ "error": err.to_string() })),
                )
                    .into_response();
            }
        }
    }
}
