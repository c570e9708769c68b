//! `/v1/groups` and `/v1/devices`: the device registry. A device's key is
//! in the answer of its creation and of `POST /v1/devices/{id}/key`, and
//! nowhere else.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use crate::fleet::{DeviceInput, FleetError, GroupInput};

/// `POST /v1/groups`.
pub async fn create_group(State(state): State<ApiState>, body: Bytes) -> Response {
    match parse::<GroupInput>(&body) {
        Ok(input) => answer(StatusCode::CREATED, state.fleet.create_group(input).await),
        Err(err) => refusal(&err),
    }
}

/// `GET /v1/groups`.
pub async fn list_groups(State(state): State<ApiState>) -> Json<Vec<Value>> {
    let snapshot = state.fleet.snapshot();
    Json(snapshot.groups.values().map(|g| json!(g)).collect())
}

/// `GET /v1/groups/{id}`.
pub async fn get_group(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.fleet.snapshot().groups.get(&id) {
        Some(group) => Json(group).into_response(),
        None => refusal(&FleetError::GroupNotFound(id)),
    }
}

/// `PUT /v1/groups/{id}`.
pub async fn replace_group(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match parse::<GroupInput>(&body) {
        Ok(input) => answer(StatusCode::OK, state.fleet.replace_group(&id, input).await),
        Err(err) => refusal(&err),
    }
}

/// `DELETE /v1/groups/{id}`: `409` while devices or Iottly-style
/// webhooks belong to it.
pub async fn delete_group(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let webhooks = state
        .webhooks
        .iottly
        .list(|d| d.project_id.as_str() == id)
        .len();
    if webhooks > 0 {
        return refusal(&FleetError::GroupHasWebhooks { id, webhooks });
    }
    match state.fleet.delete_group(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => refusal(&err),
    }
}

/// `POST /v1/devices`: the device and its key, shown this once.
pub async fn create_device(State(state): State<ApiState>, body: Bytes) -> Response {
    let created = match parse::<DeviceInput>(&body) {
        Ok(input) => state.fleet.create_device(input).await,
        Err(err) => Err(err),
    };
    match created {
        Ok((device, key)) => {
            let mut view = device.view();
            view["key"] = key.reveal().into();
            (StatusCode::CREATED, Json(view)).into_response()
        }
        Err(err) => refusal(&err),
    }
}

/// The query of `GET /v1/devices`.
#[derive(Debug, Deserialize)]
pub struct DeviceFilter {
    /// Only the devices of this group.
    group: Option<String>,
}

/// `GET /v1/devices[?group=ID]`.
pub async fn list_devices(
    State(state): State<ApiState>,
    Query(filter): Query<DeviceFilter>,
) -> Response {
    let snapshot = state.fleet.snapshot();
    let views: Vec<Value> = match &filter.group {
        Some(group) if !snapshot.groups.contains_key(group) => {
            return refusal(&FleetError::GroupNotFound(group.clone()));
        }
        Some(group) => snapshot.members(group).map(|d| d.view()).collect(),
        None => snapshot.devices.values().map(|d| d.view()).collect(),
    };
    Json(views).into_response()
}

/// `GET /v1/devices/{id}`.
pub async fn get_device(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.fleet.snapshot().devices.get(&id) {
        Some(device) => Json(device.view()).into_response(),
        None => refusal(&FleetError::DeviceNotFound(id)),
    }
}

/// `PUT /v1/devices/{id}`: name, group and metadata; the key stays.
pub async fn replace_device(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match parse::<DeviceInput>(&body) {
        Ok(input) => match state.fleet.replace_device(&id, input).await {
            Ok(device) => Json(device.view()).into_response(),
            Err(err) => refusal(&err),
        },
        Err(err) => refusal(&err),
    }
}

/// `DELETE /v1/devices/{id}`.
pub async fn delete_device(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.fleet.delete_device(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => refusal(&err),
    }
}

/// `POST /v1/devices/{id}/key`: a new key, shown this once.
pub async fn rotate_key(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.fleet.rotate_key(&id).await {
        Ok(key) => Json(json!({ "id": id, "key": key.reveal() })).into_response(),
        Err(err) => refusal(&err),
    }
}

/// An empty body reads as `{}`.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, FleetError> {
    crate::fleet::parse(if body.is_empty() { b"{}" } else { body })
}

fn answer<T: serde::Serialize>(status: StatusCode, result: Result<T, FleetError>) -> Response {
    match result {
        Ok(value) => (status, Json(value)).into_response(),
        Err(err) => refusal(&err),
    }
}

fn refusal(err: &FleetError) -> Response {
    let status = match err {
        FleetError::Body(_) | FleetError::Invalid { .. } | FleetError::UnknownGroup(_) => {
            StatusCode::BAD_REQUEST
        }
        FleetError::GroupNotFound(_) | FleetError::DeviceNotFound(_) => StatusCode::NOT_FOUND,
        FleetError::GroupExists(_)
        | FleetError::DeviceExists(_)
        | FleetError::GroupInUse { .. }
        | FleetError::GroupHasWebhooks { .. } => StatusCode::CONFLICT,
        FleetError::Store { .. } => {
            tracing::error!("{err}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (status, Json(json!({ "error": err.to_string() }))).into_response()
}
