//! Commands for backends that cannot hold a socket: `POST
//! /v1/devices/{id}/commands` sends one (`202 {"request_id"}`), and `GET
//! /v1/commands/{request_id}` shows its output so far, for a bounded time
//! and size (see [`crate::commands::kept`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::ApiState;
use crate::commands::{CommandError, CommandRequest, Sink};
use crate::topic::{DeviceId, RequestId};

/// The body of `POST /v1/devices/{id}/commands`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCommand {
    command: String,
    #[serde(default)]
    stream_output: bool,
    request_id: Option<String>,
}

fn refusal(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Sends a command; its answers are kept for `GET /v1/commands/{id}`.
pub async fn send(
    State(state): State<ApiState>,
    Path(device): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let bad = |message: String| refusal(StatusCode::BAD_REQUEST, message);
    let device = match DeviceId::try_from(device.as_str()) {
        Ok(device) => device,
        Err(err) => return bad(err.to_string()),
    };
    let new: NewCommand = match serde_json::from_slice(&body) {
        Ok(new) => new,
        Err(err) => return bad(err.to_string()),
    };
    let request_id = match new
        .request_id
        .as_deref()
        .map(RequestId::try_from)
        .transpose()
    {
        Ok(id) => id,
        Err(err) => return bad(err.to_string()),
    };
    let request = CommandRequest {
        device,
        request_id,
        command: new.command,
        stream_output: new.stream_output,
    };
    match state.commands.send(request, Sink::Kept).await {
        Ok(id) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "request_id": id })),
        )
            .into_response(),
        Err(err @ (CommandError::InUse(_) | CommandError::TooLong(_))) => bad(err.to_string()),
        Err(err @ (CommandError::Full | CommandError::Publish(_))) => {
            refusal(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
        }
    }
}

/// A kept command: its state, output so far and end.
pub async fn get(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let record = RequestId::try_from(id.as_str())
        .ok()
        .and_then(|id| state.commands.kept_record(&id));
    match record {
        Some(record) => Json(record).into_response(),
        None => refusal(
            StatusCode::NOT_FOUND,
            format!("no command {id:?} (commands are kept 10 minutes after they end)"),
        ),
    }
}
