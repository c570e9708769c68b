//! The answer to a refused webhook request, the same for every dialect.

use axum::Json;
use axum::http::StatusCode;

use crate::webhooks::WebhookError;

/// A refusal of the webhook routes of any dialect, as `{"error": "..."}`.
pub(super) fn webhook_refusal(err: &WebhookError) -> axum::response::Response {
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
