//! `GET /v1/events` (and `/v1/events/{prefix}`, or `?prefix=`): the live
//! event stream as Server-Sent Events, one JSON object per `data:` line.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;

/// `?prefix=`: only events whose name starts with it.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    prefix: Option<String>,
}

/// Every event from now on.
pub async fn all(
    State(state): State<ApiState>,
    Query(filter): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    stream(state, filter.prefix.unwrap_or_default())
}

/// Events whose name starts with the path's prefix (Particle's
/// `/v1/events/{prefix}`).
pub async fn prefixed(
    State(state): State<ApiState>,
    Path(prefix): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    stream(state, prefix)
}

fn stream(state: ApiState, prefix: String) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.stream.subscribe();
    let events = futures::stream::unfold((rx, prefix), |(mut rx, prefix)| async move {
        loop {
            match rx.recv().await {
                Ok(event) if event.name.starts_with(&prefix) => {
                    let sse = Event::default().data(event.json());
                    return Some((Ok(sse), (rx, prefix)));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    let note = Event::default()
                        .comment(format!("{n} events skipped: this subscriber fell behind"));
                    return Some((Ok(note), (rx, prefix)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
