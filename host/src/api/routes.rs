//! The API's routes: which handler serves which path, behind the bearer
//! token or open.

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Router, middleware};

use super::{
    ApiState, auth, commands, config, console, deliveries, events, fleet, health, iottly, mainflux,
    metrics, plugin_kv, plugins, stream_ws, try_out, webhooks,
};

/// Largest JSON body taken (a webhook definition, a device), in bytes;
/// beyond it `413`. Plugin uploads have their own, [`super::plugins::MAX_UPLOAD`].
const MAX_BODY: usize = 1 << 20;

/// The API's routes; `/v1/stream` checks its key itself (it also takes
/// `?api_key=`).
pub fn router(state: ApiState, token: Arc<str>, hub: stream_ws::StreamHub) -> Router {
    let protected = Router::new()
        .merge(plugins::routes())
        .merge(plugin_kv::routes())
        .merge(deliveries::routes())
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get)
                .put(webhooks::replace)
                .delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/log", get(webhooks::log))
        .route("/v1/webhooks/preview", post(try_out::preview))
        .route("/v1/webhooks/{id}/test", post(try_out::test))
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
            axum::routing::put(iottly::replace).delete(iottly::delete),
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
        .route("/healthz", get(health::healthz))
        .merge(console)
        .merge(protected)
        .merge(stream)
        .with_state(state)
}
