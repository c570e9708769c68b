//! The HTTP API: health, and behind the bearer token the plugins (listed,
//! installed, removed),
//! the webhooks with their logs, the device registry, the live event
//! stream, the WebSocket API, commands to devices and the metrics; and,
//! open like health, the web console that calls them.

pub mod auth;
pub mod commands;
pub mod config;
pub mod console;
pub mod events;
pub mod fleet;
pub mod iottly;
pub mod mainflux;
pub mod metrics;
pub mod plugins;
pub mod serve;
pub mod stream_ws;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router, middleware};

use crate::commands::Commands;
use crate::dialects::Webhooks;
use crate::fleet::Fleet;
use crate::hooks::Registry;
use crate::ingress::Publisher;
use crate::pipeline::DeliveryStats;
use crate::plugins::Installer;
use crate::queue::Queue;
use crate::stream::EventStream;
use crate::throttle::Throttle;
use crate::webhooks::WebhookError;

/// Largest JSON body taken (a webhook definition, a device), in bytes;
/// beyond it `413`. Plugin uploads have their own, [`plugins::MAX_UPLOAD`].
const MAX_BODY: usize = 1 << 20;

/// What the API reads.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The webhooks in force.
    pub registry: Arc<Registry>,
    /// The webhooks of every dialect.
    pub webhooks: Arc<Webhooks>,
    /// The live event stream.
    pub stream: EventStream,
    /// The broker side, for health.
    pub publisher: Publisher,
    /// The pipeline's counters.
    pub stats: Arc<DeliveryStats>,
    /// The durable queue, for its depth.
    pub queue: Arc<Queue>,
    /// The throttle, for its sleeping hosts.
    pub throttle: Throttle,
    /// The device registry.
    pub fleet: Arc<Fleet>,
    /// Iottly-style webhooks one project may have.
    pub iottly_max_webhooks: usize,
    /// Commands to devices.
    pub commands: Arc<Commands>,
    /// The stores a cluster shares, when the host shares its work.
    pub cluster: Option<Arc<dyn crate::stores::Cluster>>,
    /// Checks and installs plugins sent over the API.
    pub installer: Installer,
    /// What the embedded broker refused.
    pub refusals: Arc<crate::ingress::refusals::Refusals>,
    /// The settings in force, as the last reload left them.
    pub config: Arc<arc_swap::ArcSwap<crate::config::Config>>,
}

/// The API's routes; `/v1/stream` checks its key itself (it also takes
/// `?api_key=`).
pub fn router(state: ApiState, token: Arc<str>, hub: stream_ws::StreamHub) -> Router {
    let protected = Router::new()
        .merge(plugins::routes())
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get)
                .put(webhooks::replace)
                .delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/log", get(webhooks::log))
        .route(
            "/v1/groups",
            get(fleet::list_groups).post(fleet::create_group),
        )
        .route(
            "/v1/groups/{id}",
            get(fleet::get_group)
                .put(fleet::replace_group)
                .delete(fleet::delete_group),
        )
        .route(
            "/v1/devices",
            get(fleet::list_devices).post(fleet::create_device),
        )
        .route(
            "/v1/devices/{id}",
            get(fleet::get_device)
                .put(fleet::replace_device)
                .delete(fleet::delete_device),
        )
        .route("/v1/devices/{id}/key", post(fleet::rotate_key))
        .route("/v1/devices/{id}/commands", post(commands::send))
        .route("/v1/commands/{request_id}", get(commands::get))
        .route(
            "/v1/projects/{project_id}/webhooks",
            get(iottly::list).post(iottly::create),
        )
        .route(
            "/v1/projects/{project_id}/webhooks/{id}",
            axum::routing::delete(iottly::delete),
        )
        .merge(mainflux::routes())
        .nest("/svcwebhooks", mainflux::routes())
        .route("/v1/events", get(events::all))
        .route("/v1/events/{*prefix}", get(events::prefixed))
        .route("/metrics", get(metrics::get))
        .route("/v1/config", get(config::get))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(token, auth::require_token));
    let stream: Router<ApiState> = Router::new()
        .route("/v1/stream", get(stream_ws::handshake))
        .with_state(hub);
    let console = console::routes(state.iottly_max_webhooks);
    Router::new()
        .route("/healthz", get(healthz))
        .merge(console)
        .merge(protected)
        .merge(stream)
        .with_state(state)
}

/// A refusal of the webhook routes of any dialect, as `{"error": "..."}`.
fn webhook_refusal(err: &WebhookError) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let status = match err {
        WebhookError::Invalid(_) | WebhookError::Field { .. } | WebhookError::Moved(_) => {
            StatusCode::BAD_REQUEST
        }
        WebhookError::ProjectNotFound(_)
        | WebhookError::ThingNotFound(_)
        | WebhookError::GroupNotFound(_)
        | WebhookError::NotFound(_) => StatusCode::NOT_FOUND,
        WebhookError::Full { .. }
        | WebhookError::FromFile { .. }
        | WebhookError::OtherDialect { .. } => StatusCode::CONFLICT,
        WebhookError::Store { .. } | WebhookError::Internal(_) => {
            tracing::error!("{err}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (
        status,
        Json(serde_json::json!({ "error": err.to_string() })),
    )
        .into_response()
}

async fn healthz(State(state): State<ApiState>) -> (StatusCode, Json<serde_json::Value>) {
    let down = if state.cluster.as_ref().is_some_and(|c| !c.is_connected()) {
        Some("JetStream cannot be reached: the NATS connection is down")
    } else if !state.publisher.is_connected() {
        Some("the MQTT broker connection is down")
    } else {
        None
    };
    match (down, state.queue.write_fault()) {
        (None, None) => (StatusCode::OK, Json(serde_json::json!({ "status": "ok" }))),
        (Some(error), _) => {
            let body = serde_json::json!({ "status": "unavailable", "error": error });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
        (None, Some(fault)) => {
            let body = serde_json::json!({
                "status": "unavailable",
                "error": format!("the event queue cannot write: {fault}"),
                "queue": format!("cannot write: {fault}"),
            });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
    }
}
