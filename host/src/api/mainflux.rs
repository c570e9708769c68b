//! Mainflux-style webhooks (README "Mainflux-style webhooks (per thing)"):
//! `/things/{thing_id}/webhooks`, `/groups/{group_id}/webhooks`,
//! `/webhooks/{id}` and `DELETE /webhooks`, the same under `/svcwebhooks`. A
//! thing is a device of the registry.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::ApiState;
use super::refusal::webhook_refusal;
use crate::dialects::mainflux::{self, MAX_BATCH};
use crate::webhooks::WebhookError;

/// The routes, to be mounted at `/` and at `/svcwebhooks`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/things/{thing_id}/webhooks", post(create).get(of_thing))
        .route("/groups/{group_id}/webhooks", get(of_group))
        .route("/webhooks/{id}", get(view).put(replace))
        .route("/webhooks", axum::routing::delete(delete))
}

/// `POST /things/{thing_id}/webhooks`: `201` with the created webhooks.
async fn create(State(state): State<ApiState>, Path(thing): Path<String>, body: Bytes) -> Response {
    let result = async {
        let device = state
            .fleet
            .snapshot()
            .devices
            .get(&thing)
            .cloned()
            .ok_or_else(|| WebhookError::ThingNotFound(thing.clone()))?;
        let inputs = mainflux::parse_batch(&body)?;
        let mut views = Vec::with_capacity(inputs.len());
        for input in inputs {
            let definition = input.definition(device.id.clone(), device.group.clone());
            views.push(
                state
                    .webhooks
                    .mainflux
                    .create(definition, |_| Ok(()))
                    .await?,
            );
        }
        Ok(views)
    };
    match result.await {
        Ok(views) => (StatusCode::CREATED, Json(views)).into_response(),
        Err(err) => webhook_refusal(&err),
    }
}

/// `GET /things/{thing_id}/webhooks`.
async fn of_thing(State(state): State<ApiState>, Path(thing): Path<String>) -> Response {
    if !state.fleet.snapshot().devices.contains_key(&thing) {
        return webhook_refusal(&WebhookError::ThingNotFound(thing));
    }
    listed(&state, |d| d.thing_id.as_str() == thing)
}

/// `GET /groups/{group_id}/webhooks`.
async fn of_group(State(state): State<ApiState>, Path(group): Path<String>) -> Response {
    if !state.fleet.snapshot().groups.contains_key(&group) {
        return webhook_refusal(&WebhookError::GroupNotFound(group));
    }
    listed(&state, |d| {
        d.group_id.as_ref().is_some_and(|g| g.as_str() == group)
    })
}

fn listed(state: &ApiState, keep: impl Fn(&mainflux::Definition) -> bool) -> Response {
    Json(state.webhooks.mainflux.views(keep)).into_response()
}

/// `GET /webhooks/{id}`.
async fn view(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.webhooks.mainflux.view(&id) {
        Some(view) => Json(view).into_response(),
        None => webhook_refusal(&WebhookError::NotFound(id)),
    }
}

/// `PUT /webhooks/{id}`: name, URL, headers and metadata; the thing stays.
async fn replace(State(state): State<ApiState>, Path(id): Path<String>, body: Bytes) -> Response {
    let result = async {
        let input = mainflux::parse_one(&body)?;
        state
            .webhooks
            .mainflux
            .replace(&id, |old| {
                Ok(input
                    .keeping_secrets_of(old)?
                    .definition(old.thing_id.clone(), old.group_id.clone()))
            })
            .await
    };
    match result.await {
        Ok(view) => Json(view).into_response(),
        Err(err) => webhook_refusal(&err),
    }
}

/// The body of `DELETE /webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Removal {
    webhook_ids: Vec<String>,
}

/// `DELETE /webhooks`: `204` once every listed webhook is gone; `404`,
/// deleting none, when one is unknown.
async fn delete(State(state): State<ApiState>, body: Bytes) -> Response {
    let result = async {
        let removal: Removal = serde_json::from_slice(&body).map_err(|e| {
            WebhookError::Invalid(format!(
                "the request body is not {{\"webhook_ids\": [...]}}: {e}"
            ))
        })?;
        if removal.webhook_ids.len() > MAX_BATCH {
            return Err(WebhookError::Field {
                field: "webhook_ids",
                reason: format!("more than {MAX_BATCH} at once"),
            });
        }
        if let Some(unknown) = removal
            .webhook_ids
            .iter()
            .find(|id| state.webhooks.mainflux.get(id).is_none())
        {
            return Err(WebhookError::NotFound(unknown.clone()));
        }
        for id in &removal.webhook_ids {
            state.webhooks.mainflux.delete(id).await?;
        }
        Ok(())
    };
    match result.await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => webhook_refusal(&err),
    }
}
