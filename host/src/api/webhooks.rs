//! `/v1/webhooks`: create, list, view, replace and delete Particle-style
//! webhooks, and read their delivery logs.
//!
//! Bodies are read as bytes and parsed here, so that every refusal is a
//! JSON `{"error": "..."}` that names the problem.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ApiState;
use crate::webhooks::WebhookError;

/// `POST /v1/webhooks`: `201` with the stored webhook and its id.
pub async fn create(State(state): State<ApiState>, body: Bytes) -> Response {
    let result = match parse(&body) {
        Ok(definition) => state.catalog.create(definition).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(view) => (StatusCode::CREATED, Json(view)).into_response(),
        Err(err) => refusal(&err),
    }
}

/// `GET /v1/webhooks`.
pub async fn list(State(state): State<ApiState>) -> Json<Vec<Value>> {
    Json(state.catalog.list())
}

/// `GET /v1/webhooks/{id}`.
pub async fn get(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.catalog.get(&id) {
        Some(view) => Json(view).into_response(),
        None => refusal(&WebhookError::NotFound(id)),
    }
}

/// `PUT /v1/webhooks/{id}`: replaces the definition; the id stays.
pub async fn replace(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result = match parse(&body) {
        Ok(definition) => state.catalog.replace(&id, definition).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(view) => Json(view).into_response(),
        Err(err) => refusal(&err),
    }
}

/// `DELETE /v1/webhooks/{id}`.
pub async fn delete(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.catalog.delete(&id).await {
        Ok(()) => Json(json!({ "ok": true, "id": id })).into_response(),
        Err(err) => refusal(&err),
    }
}

/// `GET /v1/webhooks/{id}/log`: the last requests and errors, whatever
/// the webhook's dialect.
pub async fn log(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let log = state
        .catalog
        .log(&id)
        .or_else(|| state.iottly.log(&id))
        .or_else(|| state.mainflux.log(&id));
    match log {
        Some(log) => Json(log).into_response(),
        None => refusal(&WebhookError::NotFound(id)),
    }
}

fn parse(body: &[u8]) -> Result<Value, WebhookError> {
    serde_json::from_slice(body)
        .map_err(|e| WebhookError::Invalid(format!("the request body is not valid JSON: {e}")))
}

fn refusal(err: &WebhookError) -> Response {
    let status = match err {
        WebhookError::Invalid(_) => StatusCode::BAD_REQUEST,
        WebhookError::NotFound(_) => StatusCode::NOT_FOUND,
        WebhookError::FromFile { .. } => StatusCode::CONFLICT,
        WebhookError::Store { .. } | WebhookError::Plugin(_) => {
            tracing::error!("{err}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (status, Json(json!({ "error": err.to_string() }))).into_response()
}
