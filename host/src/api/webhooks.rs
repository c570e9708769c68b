//! `/v1/webhooks`: every webhook, whatever its dialect, listed oldest
//! first, viewed, deleted and its delivery log read by id; Particle-style
//! ones created and replaced. Each shows as its own dialect's routes show
//! it, with `"dialect"` (`particle`, `iottly`, `mainflux`) added.
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
use super::refusal::webhook_refusal;
use crate::dialects::all::with_dialect;
use crate::dialects::particle::Definition;
use crate::webhooks::WebhookError;
use crate::webhooks::builtin::BuiltinPlugin;

/// `POST /v1/webhooks`: `201` with the stored webhook and its id.
pub async fn create(State(state): State<ApiState>, body: Bytes) -> Response {
    let result = match Definition::parse(&body) {
        Ok(definition) => state.webhooks.particle.create(definition, |_| Ok(())).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(view) => (
            StatusCode::CREATED,
            Json(with_dialect(view, BuiltinPlugin::Particle)),
        )
            .into_response(),
        Err(err) => webhook_refusal(&err),
    }
}

/// `GET /v1/webhooks`: the webhooks of every dialect, oldest first.
pub async fn list(State(state): State<ApiState>) -> Json<Vec<Value>> {
    Json(state.webhooks.views())
}

/// `GET /v1/webhooks/{id}`, whatever the webhook's dialect.
pub async fn get(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.webhooks.view(&id) {
        Some(view) => Json(view).into_response(),
        None => webhook_refusal(&WebhookError::NotFound(id)),
    }
}

/// `PUT /v1/webhooks/{id}`: replaces the definition of a Particle-style
/// webhook; the id stays. Another dialect's webhook is replaced through
/// its own routes (`409`).
pub async fn replace(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let other = match state.webhooks.dialect_of(&id) {
        Some(BuiltinPlugin::Iottly) => Some("Iottly"),
        Some(BuiltinPlugin::Mainflux) => Some("Mainflux"),
        Some(BuiltinPlugin::Particle) | None => None,
    };
    if let Some(dialect) = other {
        return webhook_refusal(&WebhookError::OtherDialect { id, dialect });
    }
    let result = match Definition::parse(&body) {
        Ok(definition) => {
            let particle = &state.webhooks.particle;
            particle
                .replace(&id, |old| definition.keeping_secrets_of(old))
                .await
        }
        Err(err) => Err(err),
    };
    match result {
        Ok(view) => Json(with_dialect(view, BuiltinPlugin::Particle)).into_response(),
        Err(err) => webhook_refusal(&err),
    }
}

/// `DELETE /v1/webhooks/{id}`, whatever the webhook's dialect.
pub async fn delete(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.webhooks.delete(&id).await {
        Ok(()) => Json(json!({ "ok": true, "id": id })).into_response(),
        Err(err) => webhook_refusal(&err),
    }
}

/// `GET /v1/webhooks/{id}/log`: the last requests and errors, whatever
/// the webhook's dialect.
pub async fn log(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.webhooks.log(&id) {
        Some(log) => Json(log).into_response(),
        None => webhook_refusal(&WebhookError::NotFound(id)),
    }
}
