//! Running one plugin on one event: a fresh store and instance per call, a
//! deadline, a memory cap, and the conversion of what the guest returns into
//! checked host values.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::Store;

use super::bindings::edgehook::webhook::types as wit;
use super::engine::EPOCH_TICK;
use super::plugin::Plugin;
use super::state::HostState;
use crate::event::Event;
use crate::exchange::{HookRequest, Outcome, Reply, ReplyKind};
use crate::topic::check_reply_suffix;

/// Why a plugin call produced nothing usable. Each names its cause, and
/// becomes a `hook-error` for the device.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The guest trapped (a panic, an out-of-bounds access, ...).
    #[error("plugin {plugin} trapped: {message}")]
    Trap {
        /// The plugin's name.
        plugin: Arc<str>,
        /// The trap, and the last line the guest wrote to stderr if any.
        message: String,
    },
    /// The call ran past its time limit.
    #[error("plugin {plugin} ran past its time limit of {limit_ms} ms")]
    Deadline {
        /// The plugin's name.
        plugin: Arc<str>,
        /// The limit in milliseconds.
        limit_ms: u128,
    },
    /// The guest asked for more memory than its cap.
    #[error("plugin {plugin} exceeded its memory limit of {limit} bytes")]
    Memory {
        /// The plugin's name.
        plugin: Arc<str>,
        /// The cap in bytes.
        limit: usize,
    },
    /// The guest returned something over a size limit or malformed.
    #[error("plugin {plugin} returned an invalid result: {reason}")]
    Invalid {
        /// The plugin's name.
        plugin: Arc<str>,
        /// What is wrong with it, naming the limit.
        reason: String,
    },
    /// The plugin itself returned an error.
    #[error("plugin {plugin}: {message}")]
    Plugin {
        /// The plugin's name.
        plugin: Arc<str>,
        /// The plugin's own message.
        message: String,
    },
    /// The instance could not be created (e.g. its start function failed).
    #[error("plugin {plugin} could not be instantiated: {message}")]
    Instantiate {
        /// The plugin's name.
        plugin: Arc<str>,
        /// Why.
        message: String,
    },
}

impl CallError {
    /// A short name of the cause, for metrics and the API.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::Trap { .. } => "trap",
            Self::Deadline { .. } => "deadline",
            Self::Memory { .. } => "memory",
            Self::Invalid { .. } => "invalid",
            Self::Plugin { .. } => "plugin",
            Self::Instantiate { .. } => "instantiate",
        }
    }
}

impl Plugin {
    /// Runs `on-event`: the request to send for `event`, or `None` to skip it.
    pub async fn on_event(&self, event: &Event) -> Result<Option<HookRequest>, CallError> {
        let wit_event = to_wit_event(event);
        let result = self
            .call(async |store, instance| instance.call_on_event(store, &wit_event).await)
            .await?;
        let checked = result
            .map_err(|message| self.plugin_error(message))
            .and_then(|request| request.map(|r| self.check_request(r)).transpose());
        self.counted(checked)
    }

    /// Runs `on-response`: the messages for the device.
    pub async fn on_response(
        &self,
        event: &Event,
        outcome: &Outcome,
    ) -> Result<Vec<Reply>, CallError> {
        let wit_event = to_wit_event(event);
        let wit_outcome = to_wit_outcome(outcome);
        let result = self
            .call(async |store, instance| {
                instance
                    .call_on_response(store, &wit_event, &wit_outcome)
                    .await
            })
            .await?;
        let checked = result
            .map_err(|message| self.plugin_error(message))
            .and_then(|replies| self.check_replies(replies));
        self.counted(checked)
    }

    /// Counts an error the guest's result turned out to be.
    fn counted<T>(&self, result: Result<T, CallError>) -> Result<T, CallError> {
        if let Err(err) = &result {
            self.stats.record_error(err);
        }
        result
    }

    async fn call<R>(
        &self,
        f: impl AsyncFnOnce(&mut Store<HostState>, &super::bindings::Webhook) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let _slot = self.engine.slot().await;
        let started = std::time::Instant::now();
        let limits = &self.limits;
        let mut store = Store::new(
            self.engine.engine(),
            HostState::new(self.config.clone(), limits.memory, limits.log_bytes),
        );
        store.limiter(|s| &mut s.limits);
        let ticks = limits.cpu_time.as_millis().div_ceil(EPOCH_TICK.as_millis()) + 1;
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();

        let result = match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => f(&mut store, &instance)
                .await
                .map_err(|e| self.classify(&store, e)),
            Err(e) => Err(match self.classify(&store, e) {
                CallError::Trap { plugin, message } => CallError::Instantiate { plugin, message },
                other => other,
            }),
        };
        self.drain_log(&store);
        self.stats
            .record(&result, started.elapsed(), store.data().limits.high_water);
        result
    }

    fn classify(&self, store: &Store<HostState>, err: wasmtime::Error) -> CallError {
        let plugin = self.name.clone();
        if store.data().limits.hit {
            return CallError::Memory {
                plugin,
                limit: self.limits.memory,
            };
        }
        if let Some(wasmtime::Trap::Interrupt) = err.downcast_ref::<wasmtime::Trap>() {
            return CallError::Deadline {
                plugin,
                limit_ms: self.limits.cpu_time.as_millis(),
            };
        }
        let mut message = match err.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => format!("{err:#}"),
        };
        let log = store
            .data()
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(last) = log.last_line("stderr") {
            message.push_str(": ");
            message.push_str(last);
        }
        CallError::Trap { plugin, message }
    }

    fn drain_log(&self, store: &Store<HostState>) {
        let mut log = store
            .data()
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (stream, text) in log.take() {
            for line in text.lines().filter(|l| !l.is_empty()) {
                tracing::info!(target: "plugin", plugin = %self.name, stream, "{line}");
            }
        }
        if log.dropped > 0 {
            tracing::warn!(target: "plugin", plugin = %self.name,
                "dropped {} bytes of log over the limit of {} bytes per call", log.dropped, self.limits.log_bytes);
        }
    }

    fn plugin_error(&self, message: String) -> CallError {
        CallError::Plugin {
            plugin: self.name.clone(),
            message,
        }
    }

    fn invalid(&self, reason: String) -> CallError {
        CallError::Invalid {
            plugin: self.name.clone(),
            reason,
        }
    }

    fn check_request(&self, r: wit::Request) -> Result<HookRequest, CallError> {
        if r.body.len() > self.limits.request_body {
            return Err(self.invalid(format!(
                "request body of {} bytes exceeds the limit of {} bytes",
                r.body.len(),
                self.limits.request_body
            )));
        }
        let url = url::Url::parse(&r.url)
            .map_err(|e| self.invalid(format!("request URL {:?}: {e}", r.url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(self.invalid(format!(
                "request URL {:?} is not an http(s) URL with a host",
                r.url
            )));
        }
        for (name, value) in &r.headers {
            if http::HeaderName::try_from(name.as_str()).is_err()
                || http::HeaderValue::try_from(value.as_str()).is_err()
            {
                return Err(self.invalid(format!("header {name:?} is not a valid HTTP header")));
            }
        }
        let method = match r.method {
            wit::Method::Get => http::Method::GET,
            wit::Method::Post => http::Method::POST,
            wit::Method::Put => http::Method::PUT,
            wit::Method::Patch => http::Method::PATCH,
            wit::Method::Delete => http::Method::DELETE,
            wit::Method::Head => http::Method::HEAD,
        };
        Ok(HookRequest {
            method,
            url,
            headers: r.headers,
            body: Bytes::from(r.body),
        })
    }

    fn check_replies(&self, replies: Vec<wit::Reply>) -> Result<Vec<Reply>, CallError> {
        if replies.len() > self.limits.replies {
            return Err(self.invalid(format!(
                "{} device messages exceed the limit of {}",
                replies.len(),
                self.limits.replies
            )));
        }
        let total: usize = replies.iter().map(|r| r.payload.len()).sum();
        if total > self.limits.reply_bytes {
            return Err(self.invalid(format!(
                "device messages of {total} bytes exceed the limit of {} bytes",
                self.limits.reply_bytes
            )));
        }
        replies
            .into_iter()
            .map(|r| {
                if let Some(topic) = &r.topic {
                    check_reply_suffix(topic).map_err(|e| self.invalid(e))?;
                }
                Ok(Reply {
                    kind: match r.kind {
                        wit::ReplyKind::Response => ReplyKind::Response,
                        wit::ReplyKind::Error => ReplyKind::Error,
                    },
                    topic: r.topic,
                    payload: Bytes::from(r.payload),
                    unchunked: r.unchunked,
                })
            })
            .collect()
    }
}

fn to_wit_event(event: &Event) -> wit::Event {
    wit::Event {
        id: event.id.clone(),
        device_id: event.device.as_str().to_owned(),
        name: event.name.as_str().to_owned(),
        data: event.data.to_vec(),
        published_at: event.published_at.clone(),
    }
}

fn to_wit_outcome(outcome: &Outcome) -> wit::Outcome {
    match outcome {
        Outcome::Response(r) => wit::Outcome::Response(wit::Response {
            status: r.status,
            headers: r.headers.clone(),
            body: r.body.to_vec(),
        }),
        Outcome::Failed(text) => wit::Outcome::Failed(text.clone()),
    }
}
