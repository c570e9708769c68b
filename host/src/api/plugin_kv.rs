//! `/v1/plugins/{name}/kv[/{key}]`: an operator reads and clears a
//! plugin's own key-value bucket (README "Keeping state"). The buckets it
//! keeps per device are the plugin's business and not listed here.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use crate::plugins::PluginName;
use crate::stores::kv::{Bucket, KvError, MAX_KEY_BYTES};

/// The routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/plugins/{name}/kv", get(keys).delete(clear))
        .route("/v1/plugins/{name}/kv/{*key}", get(value).delete(remove))
}

/// `?cursor=`: where the page starts.
#[derive(Debug, Deserialize)]
struct Page {
    cursor: Option<String>,
}

/// Why a request about a bucket is refused.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("{0}")]
    Name(String),
    #[error("a key holds at most {MAX_KEY_BYTES} bytes")]
    KeyTooLong,
    #[error("plugin {plugin} has no key {key:?}")]
    NotFound { plugin: String, key: String },
    #[error(transparent)]
    Store(#[from] KvError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Name(_) | Self::KeyTooLong => StatusCode::BAD_REQUEST,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Store(err) => {
                tracing::error!("plugin key-value bucket: {err}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// The plugin `name`'s own bucket.
fn bucket(name: &str) -> Result<Bucket, Refusal> {
    let name = PluginName::try_from(name).map_err(|e| Refusal::Name(e.to_string()))?;
    Ok(Bucket {
        plugin: Arc::from(name.as_str()),
        device: None,
    })
}

fn key(key: &str) -> Result<&str, Refusal> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Refusal::KeyTooLong);
    }
    Ok(key)
}

/// `GET /v1/plugins/{name}/kv`: a page of the bucket's keys.
async fn keys(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(page): Query<Page>,
) -> Result<Response, Refusal> {
    let keys = state
        .kv
        .keys(&bucket(&name)?, page.cursor.as_deref())
        .await?;
    Ok(Json(json!({ "keys": keys.keys, "cursor": keys.cursor })).into_response())
}

/// `GET /v1/plugins/{name}/kv/{key}`: the value as stored.
async fn value(
    State(state): State<ApiState>,
    Path((name, k)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    match state.kv.get(&bucket(&name)?, key(&k)?).await? {
        Some(entry) => Ok((
            [(header::CONTENT_TYPE, "application/octet-stream")],
            entry.value,
        )
            .into_response()),
        None => Err(Refusal::NotFound {
            plugin: name,
            key: k,
        }),
    }
}

/// `DELETE /v1/plugins/{name}/kv`: every key of the bucket.
async fn clear(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<StatusCode, Refusal> {
    state.kv.clear(&bucket(&name)?).await?;
    tracing::info!(plugin = %name, "plugin's key-value bucket cleared over the API");
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/plugins/{name}/kv/{key}`.
async fn remove(
    State(state): State<ApiState>,
    Path((name, k)): Path<(String, String)>,
) -> Result<StatusCode, Refusal> {
    state.kv.delete(&bucket(&name)?, key(&k)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
