//! `/v1/projects/{project_id}/webhooks`: Iottly-style webhooks (README
//! "Iottly-style webhooks (per project)"). A project is a group of the
//! registry.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::refusal::webhook_refusal;
use crate::dialects::iottly;
use crate::fleet::GroupId;
use crate::webhooks::WebhookError;

/// `POST /v1/projects/{project_id}/webhooks`: `201` with the webhook and its id.
pub async fn create(
    State(state): State<ApiState>,
    Path(project): Path<String>,
    body: Bytes,
) -> Response {
    let result = async {
        let project = known_project(&state, &project)?;
        let definition = iottly::parse(project.clone(), &body)?;
        let max = state.iottly_max_webhooks;
        state
            .webhooks
            .iottly
            .create(definition, |all| {
                if all.filter(|d| d.project_id == project).count() >= max {
                    return Err(WebhookError::Full {
                        project: project.to_string(),
                        max,
                    });
                }
                Ok(())
            })
            .await
    };
    match result.await {
        Ok(view) => (StatusCode::CREATED, Json(view)).into_response(),
        Err(err) => webhook_refusal(&err),
    }
}

/// `GET /v1/projects/{project_id}/webhooks`.
pub async fn list(State(state): State<ApiState>, Path(project): Path<String>) -> Response {
    match known_project(&state, &project) {
        Ok(project) => {
            let views = state.webhooks.iottly.views(|d| d.project_id == project);
            Json(views).into_response()
        }
        Err(err) => webhook_refusal(&err),
    }
}

/// `PUT /v1/projects/{project_id}/webhooks/{id}`: the body of a `POST`;
/// the id and project stay, and a secret sent back masked keeps the stored
/// one ([`iottly::parse_replacement`]).
pub async fn replace(
    State(state): State<ApiState>,
    Path((project, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let result = async {
        let project = known_project(&state, &project)?;
        state
            .webhooks
            .iottly
            .replace(&id, |old| {
                if old.project_id != project {
                    return Err(WebhookError::NotFound(id.clone()));
                }
                iottly::parse_replacement(&body, old)
            })
            .await
    };
    match result.await {
        Ok(view) => Json(view).into_response(),
        Err(err) => webhook_refusal(&err),
    }
}

/// `DELETE /v1/projects/{project_id}/webhooks/{id}`.
pub async fn delete(
    State(state): State<ApiState>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let result = async {
        let project = known_project(&state, &project)?;
        let iottly = &state.webhooks.iottly;
        match iottly.get(&id) {
            Some(d) if d.project_id == project => iottly.delete(&id).await,
            _ => Err(WebhookError::NotFound(id)),
        }
    };
    match result.await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => webhook_refusal(&err),
    }
}

/// The project `id`, when the registry has it.
fn known_project(state: &ApiState, id: &str) -> Result<GroupId, WebhookError> {
    state
        .fleet
        .snapshot()
        .groups
        .get(id)
        .map(|g| g.id.clone())
        .ok_or_else(|| WebhookError::ProjectNotFound(id.to_owned()))
}
