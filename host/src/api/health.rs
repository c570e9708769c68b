//! `GET /healthz`: whether the host can take events (its broker, its queue
//! and, when it shares its work, the cluster), open without a token; and
//! whether its clock is set (CONTRACT section 14: until then, signed
//! deliveries wait, while events are still taken).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::ApiState;
use crate::auth::clock;

/// `200 {"status": "ok"}`, or `503` with what is down.
pub(super) async fn healthz(
    State(state): State<ApiState>,
) -> (StatusCode, Json<serde_json::Value>) {
    let down = if state.cluster.as_ref().is_some_and(|c| !c.is_connected()) {
        Some("JetStream cannot be reached: the NATS connection is down")
    } else if !state.publisher.is_connected() {
        Some("the MQTT broker connection is down")
    } else {
        None
    };
    match (down, state.queue.write_fault()) {
        (None, None) if !clock::is_set() => {
            let body = serde_json::json!({
                "status": "ok",
                "clock": format!(
                    "{}: it reads before this build's date, {}; signed deliveries wait for it",
                    clock::NOT_SET,
                    env!("EDGEHOOK_BUILD_DATE")
                ),
            });
            (StatusCode::OK, Json(body))
        }
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
