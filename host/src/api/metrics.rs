//! `GET /metrics`, in the Prometheus text exposition format: the host's
//! totals (events in, requests by outcome, retries, throttling, drops,
//! queue depth, end-to-end latency) and the counters of every webhook in
//! force (plugin files and Particle-style webhooks).
//!
//! Written by hand: the counters already live in `DeliveryStats` and
//! `PluginStats`, and a handful of families is less code than mirroring
//! them into a metrics crate's registry. [`render`] and [`render_totals`]
//! are pure, so their exact output is tested.

mod per_webhook;
mod read;
mod text;
mod totals;

#[cfg(test)]
mod tests;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiState;
use crate::stores::kv::Bucket;
pub use per_webhook::render;
pub use read::{Sample, Totals};
pub use totals::{render_backlog, render_history, render_totals, render_traces};

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub async fn get(State(state): State<ApiState>) -> impl IntoResponse {
    let hooks = state.registry.hooks();
    let mut samples: Vec<Sample> = hooks.iter().map(|hook| Sample::read(hook)).collect();
    for (sample, hook) in samples.iter_mut().zip(hooks.iter()) {
        if hook.plugin.keeps_state() {
            let own = Bucket {
                plugin: hook.name.clone(),
                device: None,
            };
            sample.kv_keys = state.kv.size(&own).await.ok();
        }
    }
    let totals = Totals::read(
        &state.stats,
        &state.refusals,
        state.queue.depth(),
        state.throttle.sleeping_hosts(),
        &samples,
    );
    let mut text = render_totals(&totals);
    text.push_str(&render_history(
        state.replays.history().held(),
        &state.recorded,
    ));
    text.push_str(&render_traces(state.traces.dropped()));
    if let Some(cluster) = &state.cluster {
        text.push_str(&render_backlog(cluster.backlog().await));
    }
    text.push_str(&render(&samples));
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}
