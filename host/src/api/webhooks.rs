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

use super::{ApiState, dialect_refusal};
use crate::dialects::{Book, Dialect};
use crate::webhooks::WebhookError;
use crate::webhooks::builtin::Kind;

/// `POST /v1/webhooks`: `201` with the stored webhook and its id.
pub async fn create(State(state): State<ApiState>, body: Bytes) -> Response {
    let result = match parse(&body) {
        Ok(definition) => state.catalog.create(definition).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(view) => (
            StatusCode::CREATED,
            Json(with_dialect(view, Kind::Particle)),
        )
            .into_response(),
        Err(err) => refusal(&err),
    }
}

/// `GET /v1/webhooks`: the webhooks of every dialect, oldest first.
pub async fn list(State(state): State<ApiState>) -> Json<Vec<Value>> {
    let particle = state.catalog.list().into_iter().map(|view| {
        let at = view["created_at"].as_str().unwrap_or_default().to_owned();
        (at, with_dialect(view, Kind::Particle))
    });
    let mut all: Vec<(String, Value)> = particle
        .chain(dated(&state.iottly))
        .chain(dated(&state.mainflux))
        .collect();
    // Stable: each dialect's own order stays among equal times.
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Json(all.into_iter().map(|(_, view)| view).collect())
}

/// The views of `book`'s webhooks with their dialect, and when each was made.
fn dated<D: Dialect>(book: &Book<D>) -> impl Iterator<Item = (String, Value)> {
    book.dated_views()
        .into_iter()
        .map(|(at, view)| (at, with_dialect(view, D::KIND)))
}

/// `view` with `"dialect"` added.
fn with_dialect(mut view: Value, kind: Kind) -> Value {
    if let Value::Object(fields) = &mut view {
        fields.insert("dialect".to_owned(), kind.name().into());
    }
    view
}

/// `GET /v1/webhooks/{id}`, whatever the webhook's dialect.
pub async fn get(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let view = dialect_of(&state, &id).and_then(|kind| {
        let view = match kind {
            Kind::Particle => state.catalog.get(&id),
            Kind::Iottly => state.iottly.view(&id),
            Kind::Mainflux => state.mainflux.view(&id),
        };
        view.map(|view| with_dialect(view, kind))
    });
    match view {
        Some(view) => Json(view).into_response(),
        None => refusal(&WebhookError::NotFound(id)),
    }
}

/// The dialect of webhook `id`, if there is one.
fn dialect_of(state: &ApiState, id: &str) -> Option<Kind> {
    if state.catalog.get(id).is_some() {
        Some(Kind::Particle)
    } else if state.iottly.get(id).is_some() {
        Some(Kind::Iottly)
    } else if state.mainflux.get(id).is_some() {
        Some(Kind::Mainflux)
    } else {
        None
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
    let other = match dialect_of(&state, &id) {
        Some(Kind::Iottly) => Some("Iottly"),
        Some(Kind::Mainflux) => Some("Mainflux"),
        Some(Kind::Particle) | None => None,
    };
    if let Some(dialect) = other {
        return refusal(&WebhookError::OtherDialect { id, dialect });
    }
    let result = match parse(&body) {
        Ok(definition) => state.catalog.replace(&id, definition).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(view) => Json(with_dialect(view, Kind::Particle)).into_response(),
        Err(err) => refusal(&err),
    }
}

/// `DELETE /v1/webhooks/{id}`, whatever the webhook's dialect.
pub async fn delete(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let deleted = match dialect_of(&state, &id) {
        Some(Kind::Iottly) => state.iottly.delete(&id).await,
        Some(Kind::Mainflux) => state.mainflux.delete(&id).await,
        Some(Kind::Particle) | None => {
            if let Err(err) = state.catalog.delete(&id).await {
                return refusal(&err);
            }
            Ok(())
        }
    };
    match deleted {
        Ok(()) => Json(json!({ "ok": true, "id": id })).into_response(),
        Err(err) => dialect_refusal(&err),
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
        WebhookError::FromFile { .. } | WebhookError::OtherDialect { .. } => StatusCode::CONFLICT,
        WebhookError::Store { .. } | WebhookError::Plugin(_) => {
            tracing::error!("{err}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (status, Json(json!({ "error": err.to_string() }))).into_response()
}
