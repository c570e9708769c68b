//! `/v1/plugins`: the loaded plugins with their counters, and plugins
//! installed (`PUT /v1/plugins/{name}`, multipart fields `wasm` and
//! `manifest`) and removed (`DELETE`) over the API, checked first (see
//! [`crate::plugins::install`]).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use super::ApiState;
use crate::hooks::{PluginStatus, Registry};
use crate::plugins::install::Installed;
use crate::plugins::{InstallError, PluginName};

/// The largest `PUT /v1/plugins/{name}` body (both files and the multipart
/// framing), in bytes; beyond it `413`. Plugin components are a few MiB.
pub const MAX_UPLOAD: usize = 32 << 20;

/// How long `PUT` waits for the plugins directory (or, on a cluster, the
/// copy from the object store) to load what it installed before it answers
/// with the name and digest only.
const LOAD_WAIT: Duration = Duration::from_secs(10);

/// How often `PUT` looks whether the new version is loaded.
const LOAD_POLL: Duration = Duration::from_millis(50);

/// The routes.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/plugins", get(list)).route(
        "/v1/plugins/{name}",
        axum::routing::put(install)
            .layer(DefaultBodyLimit::max(MAX_UPLOAD))
            .delete(remove),
    )
}

/// One entry of `GET /v1/plugins`.
#[derive(Debug, Serialize)]
struct PluginView {
    #[serde(flatten)]
    status: PluginStatus,
    calls: u64,
    errors: BTreeMap<&'static str, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_call_error: Option<String>,
    memory_high_water: u64,
    log_bytes_dropped: u64,
}

impl PluginView {
    fn of(registry: &Registry, status: PluginStatus) -> Self {
        let stats = registry.stats(&status.name);
        let counter = |f: fn(&crate::runtime::PluginStats) -> u64| stats.as_deref().map_or(0, f);
        Self {
            calls: counter(|s| s.calls.load(Ordering::Relaxed)),
            errors: stats.as_ref().map(|s| s.errors()).unwrap_or_default(),
            last_call_error: stats.as_ref().and_then(|s| s.last_error()),
            memory_high_water: counter(|s| s.memory_high_water.load(Ordering::Relaxed)),
            log_bytes_dropped: counter(|s| s.log_bytes_dropped.load(Ordering::Relaxed)),
            status,
        }
    }
}

async fn list(State(state): State<ApiState>) -> Json<Vec<PluginView>> {
    let views = state
        .registry
        .statuses()
        .into_iter()
        .map(|status| PluginView::of(&state.registry, status))
        .collect();
    Json(views)
}

async fn install(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let name = match PluginName::try_from(name.as_str()) {
        Ok(name) => name,
        Err(err) => return refusal(&err),
    };
    let (wasm, manifest) = match form {
        Ok(form) => match fields(form).await {
            Ok(files) => files,
            Err(refused) => return refused,
        },
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let installed = match state.installer.install(&name, wasm, manifest).await {
        Ok(installed) => installed,
        Err(err) => return refusal(&err),
    };
    tracing::info!(plugin = %name, digest = %installed.digest, "plugin installed over the API");
    let status = if installed.replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    match loaded(&state.registry, name.as_str(), &installed).await {
        Some(view) => (status, Json(json!(view))).into_response(),
        None => {
            let body =
                json!({ "name": name.as_str(), "digest": installed.digest, "state": "installed" });
            (status, Json(body)).into_response()
        }
    }
}

/// The `wasm` and `manifest` fields of the form.
async fn fields(mut form: Multipart) -> Result<(Vec<u8>, Vec<u8>), Response> {
    let (mut wasm, mut manifest) = (None, None);
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return Err(error(err.status(), err.body_text())),
        };
        let slot = match field.name() {
            Some("wasm") => &mut wasm,
            Some("manifest") => &mut manifest,
            other => {
                let message = format!(
                    "unknown form field {:?}: send `wasm` and `manifest`",
                    other.unwrap_or_default()
                );
                return Err(error(StatusCode::BAD_REQUEST, message));
            }
        };
        match field.bytes().await {
            Ok(bytes) => *slot = Some(bytes.to_vec()),
            Err(err) => return Err(error(err.status(), err.body_text())),
        }
    }
    match (wasm, manifest) {
        (Some(wasm), Some(manifest)) => Ok((wasm, manifest)),
        (None, _) => Err(error(
            StatusCode::BAD_REQUEST,
            "the form field `wasm` is missing".into(),
        )),
        (_, None) => Err(error(
            StatusCode::BAD_REQUEST,
            "the form field `manifest` is missing".into(),
        )),
    }
}

/// The view of plugin `name` once the version `installed` is loaded (its
/// digest, loaded since it was put in place), or `None` after
/// [`LOAD_WAIT`].
async fn loaded(registry: &Registry, name: &str, installed: &Installed) -> Option<PluginView> {
    // `loaded_at` has milliseconds: a load in the same one counts.
    let since = installed.at - Duration::from_millis(1);
    let deadline = tokio::time::Instant::now() + LOAD_WAIT;
    loop {
        let status = registry.statuses().into_iter().find(|s| {
            s.name == name
                && s.digest.as_deref() == Some(installed.digest.as_str())
                && s.loaded_at
                    .as_deref()
                    .and_then(|t| humantime::parse_rfc3339(t).ok())
                    .is_some_and(|t| t >= since)
        });
        if let Some(status) = status {
            return Some(PluginView::of(registry, status));
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(LOAD_POLL).await;
    }
}

async fn remove(State(state): State<ApiState>, Path(name): Path<String>) -> Response {
    let removed = match PluginName::try_from(name.as_str()) {
        Ok(name) => state.installer.remove(&name).await,
        Err(err) => Err(err),
    };
    match removed {
        Ok(()) => {
            tracing::info!(plugin = %name, "plugin removed over the API");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => refusal(&err),
    }
}

fn refusal(err: &InstallError) -> Response {
    let status = match err {
        InstallError::Name(_)
        | InstallError::Manifest(_)
        | InstallError::ManifestText
        | InstallError::Wasm(_) => StatusCode::BAD_REQUEST,
        InstallError::Builtin(_) => StatusCode::CONFLICT,
        InstallError::NotFound(_) => StatusCode::NOT_FOUND,
        InstallError::Store(_) | InstallError::Thread(_) => {
            tracing::error!("plugin not installed: {err}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, err.to_string())
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
