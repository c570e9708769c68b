//! `GET /v1/config`: the settings in force by their config-file keys
//! (after the last reload), every secret masked.

use axum::Json;
use axum::extract::State;

use super::ApiState;
use crate::config::in_force::InForce;

/// The settings in force.
pub async fn get(State(state): State<ApiState>) -> Json<InForce> {
    Json(state.config.load().in_force())
}
