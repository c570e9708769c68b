//! `GET /v1/stream`: the WebSocket API of Iottly (README "Live telemetry and
//! commands: the WebSocket API") — device telemetry from the [`EventStream`],
//! and commands to devices through the [`Commands`] router.
//!
//! The key (`?api_key=` or a bearer header) is checked before the upgrade;
//! so is the connection limit. Every connection is one task ([`connection`])
//! plus its writer, tracked so that shutdown closes each with `1001` and
//! waits, bounded, for the close frames to go out. The message parsing and
//! the frames are in [`frame`].

pub mod connection;
pub mod frame;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::commands::Commands;
use crate::stream::EventStream;

/// Largest message a client may send, in bytes (a command and its JSON
/// envelope fit many times over).
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// The heartbeat and the connection limit, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// How often the server pings.
    pub ping_interval: Duration,
    /// How long a ping may wait for its pong.
    pub pong_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// What every connection shares; cheap to clone.
#[derive(Debug, Clone)]
pub struct StreamHub {
    limits: StreamLimits,
    token: Arc<str>,
    events: EventStream,
    commands: Arc<Commands>,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl StreamHub {
    /// A hub whose connections close with `1001` when `shutdown` fires.
    pub fn new(
        limits: StreamLimits,
        token: Arc<str>,
        events: EventStream,
        commands: Arc<Commands>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            token,
            events,
            commands,
            tracker: TaskTracker::new(),
            shutdown,
        }
    }

    /// Waits (at most `within`) for every connection to have sent its
    /// close frame and ended; false when some had not.
    pub async fn closed(&self, within: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_ok()
    }
}

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
    if !given.is_some_and(|g| super::auth::token_matches(g, &hub.token)) {
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
