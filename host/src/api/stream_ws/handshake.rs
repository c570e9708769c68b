//! The handshake of `GET /v1/stream`: the key, then a free connection
//! slot, then the upgrade to a WebSocket.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{StreamHub, connection};
use crate::api::auth::token_matches;

/// Largest message a client may send, in bytes (a command and its JSON
/// envelope fit many times over).
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// `?api_key=`: the API token, for clients that cannot set a header.
#[derive(Debug, Deserialize)]
pub struct Key {
    api_key: Option<String>,
}

/// The handshake: the key, then a free slot, then the upgrade.
pub async fn handshake(
    State(hub): State<StreamHub>,
    Query(key): Query<Key>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let given = key.api_key.as_deref().or(bearer);
    if !given.is_some_and(|g| token_matches(g, &hub.token)) {
        let body = axum::Json(serde_json::json!({
            "error": "missing or wrong key: pass ?api_key=TOKEN or Authorization: Bearer TOKEN"
        }));
        return (StatusCode::UNAUTHORIZED, body).into_response();
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let Ok(slot) = hub.slots.clone().try_acquire_owned() else {
        let body = axum::Json(serde_json::json!({
            "error": format!("{} WebSocket connections are open, the most at once (ws_max_connections)", hub.limits.max_connections)
        }));
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    };
    let tracker = hub.tracker.clone();
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| tracker.track_future(connection::run(socket, hub, slot)))
}
