//! Running one plugin on one event: a fresh store and instance per event
//! (kept from `on-event` for `on-response` when the pool has room), a
//! time budget (the guest yields to the executor at every epoch tick and is
//! stopped once it has run its limit), a memory cap, the conversion of what
//! the guest returns into checked host values, and the counting of results
//! that suspends a plugin in a crash loop.

use std::sync::Arc;

use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::v0_2::edgehook::webhook::types as wit;
use super::compat;
use super::engine::{EPOCH_TICK, Slot};
use super::output::GuestLog;
use super::plugin::{Instance, Plugin, Pre};
use super::state::HostState;
use crate::event::Event;
use crate::exchange::{Answer, HookRequest, Outcome, Reply, ReplyKind};
use crate::topic::check_reply_suffix;

/// A call may take this many times its CPU budget in wall-clock time (it
/// may wait behind others to run, or for the host) ...
const WALL_TIME_FACTOR: u32 = 50;

/// ... plus this.
const WALL_TIME_SLACK: Duration = Duration::from_secs(1);

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
    /// Every [`Self::cause`], in the order metrics list them.
    pub const CAUSES: [&'static str; 6] = [
        "trap",
        "deadline",
        "memory",
        "invalid",
        "plugin",
        "instantiate",
    ];

    /// Whether the sandbox had to stop or refuse the call. The plugin's own
    /// error is a deliberate answer, not a failure: it does not count
    /// towards suspending the plugin.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Plugin { .. })
    }

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

/// A plugin's instance kept from an event's `on-event` for the same
/// event's `on-response`: one instance per event instead of one per call,
/// which saves an instantiation (and lets the guest keep what it worked out
/// in `on-event`). Kept only when the call succeeded and half the pool is
/// free; dropping it frees its pool slot. Never used for another event.
pub struct Kept {
    // Declared before the slot: the instance is gone before the slot is
    // free for another.
    store: Store<HostState>,
    instance: Instance,
    slot: Slot,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept").finish_non_exhaustive()
    }
}

impl Plugin {
    /// Runs `on-event`: the request to send for `event` of a device in
    /// `group`, or `None` to skip it.
    pub async fn on_event(
        &self,
        event: &Event,
        group: Option<&str>,
    ) -> Result<Option<HookRequest>, CallError> {
        self.on_event_keeping(event, group).await.0
    }

    /// [`Self::on_event`], and the instance for the event's `on-response`
    /// when the request asks for one and the pool has room to keep it.
    pub async fn on_event_keeping(
        &self,
        event: &Event,
        group: Option<&str>,
    ) -> (Result<Option<HookRequest>, CallError>, Option<Kept>) {
        let (result, kept) = self
            .call(None, async |store, instance| match instance {
                Instance::V0_2(i) => i.call_on_event(store, &to_wit_event(event, group)).await,
                Instance::V0_1(i) => i
                    .call_on_event(store, &compat::event(event))
                    .await
                    .map(|r| r.map(|request| request.map(compat::request))),
            })
            .await;
        let result = result.and_then(|result| {
            result
                .map_err(|message| self.plugin_error(message))
                .and_then(|request| request.map(|r| self.check_request(r)).transpose())
        });
        // Plugins of 0.1.0 were promised a fresh instance for every call.
        let keep = matches!(&result, Ok(Some(r)) if r.answer == Answer::Plugin)
            && matches!(self.pre, Pre::V0_2(_))
            && self.engine.is_roomy();
        (self.counted(result), kept.filter(|_| keep))
    }

    /// The messages for the device once the request for `event` is done, as
    /// its `answer` asks: by the plugin's `on-response` (in the instance
    /// `kept` from its `on-event`, if any), by the host, or none.
    pub async fn answer(
        &self,
        event: &Event,
        group: Option<&str>,
        answer: Answer,
        outcome: &Outcome,
        kept: Option<Kept>,
    ) -> Result<Vec<Reply>, CallError> {
        match answer {
            Answer::Plugin => self.on_response(event, group, outcome, kept).await,
            Answer::Default => Ok(outcome.default_replies()),
            Answer::None => Ok(Vec::new()),
        }
    }

    /// Runs `on-response`: the messages for the device. In the instance
    /// `kept` from the event's `on-event` if there is one, else in a fresh
    /// one.
    pub async fn on_response(
        &self,
        event: &Event,
        group: Option<&str>,
        outcome: &Outcome,
        kept: Option<Kept>,
    ) -> Result<Vec<Reply>, CallError> {
        let (result, _) = self
            .call(kept, async |store, instance| match instance {
                Instance::V0_2(i) => {
                    i.call_on_response(store, &to_wit_event(event, group), &to_wit_outcome(outcome))
                        .await
                }
                Instance::V0_1(i) => i
                    .call_on_response(store, &compat::event(event), &compat::outcome(outcome))
                    .await
                    .map(|r| r.map(|replies| replies.into_iter().map(compat::reply).collect())),
            })
            .await;
        let result = result.and_then(|result| {
            result
                .map_err(|message| self.plugin_error(message))
                .and_then(|replies| self.check_replies(replies))
        });
        self.counted(result)
    }

    /// Why the plugin is suspended, if it is: it is not called then.
    pub fn suspended(&self) -> Option<String> {
        self.stats.suspended()
    }

    /// Counts the final result of a call, which may suspend the plugin.
    fn counted<T>(&self, result: Result<T, CallError>) -> Result<T, CallError> {
        let suspended = self
            .stats
            .record_result(&self.name, &result, self.limits.suspend_after);
        if let Some(reason) = suspended {
            tracing::warn!(plugin = %self.name, "{reason}");
        }
        result
    }

    /// Runs `f` in the instance `kept` from an earlier call of the same
    /// event, or in a fresh one; returns the instance with the result when
    /// the call succeeded, for a later call of the same event.
    async fn call<R>(
        &self,
        kept: Option<Kept>,
        f: impl AsyncFnOnce(&mut Store<HostState>, &Instance) -> wasmtime::Result<R>,
    ) -> (Result<R, CallError>, Option<Kept>) {
        let limits = &self.limits;
        let (mut store, instance, slot) = match kept {
            Some(kept) => (kept.store, Some(kept.instance), kept.slot),
            None => {
                let slot = self.engine.slot().await;
                let mut store = Store::new(
                    self.engine.engine(),
                    HostState::new(self.config.clone(), limits.memory, limits.log_bytes),
                );
                store.limiter(|s| &mut s.limits);
                (store, None, slot)
            }
        };
        let _running = self.engine.running();
        // The guest yields to the executor at every epoch tick, so a loop
        // holds no worker thread; the callback runs only while the guest
        // runs, so the ticks it counts are the guest's own time. One tick
        // more than the limit: the first one is partly spent before the
        // call starts.
        let budget = limits.cpu_time.as_millis().div_ceil(EPOCH_TICK.as_millis()) + 1;
        let budget = u64::try_from(budget).unwrap_or(u64::MAX);
        let mut ticks = 0u64;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            ticks += 1;
            Ok(if ticks < budget {
                // tokio's own yield puts the task behind the others that are
                // ready, where a plain self-wake could take the LIFO slot
                // and run again first.
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            } else {
                UpdateDeadline::Interrupt
            })
        });

        let mut ran = Duration::ZERO;
        let run = async {
            let instance = match instance {
                Some(instance) => instance,
                None => self.pre.instantiate_async(&mut store).await.map_err(|e| {
                    match self.classify(&store, e) {
                        CallError::Trap { plugin, message } => {
                            CallError::Instantiate { plugin, message }
                        }
                        other => other,
                    }
                })?,
            };
            let result = f(&mut store, &instance)
                .await
                .map_err(|e| self.classify(&store, e))?;
            Ok((result, instance))
        };
        // A guest blocked in a host call (a sleep) spends no ticks: a
        // wall-clock limit, far above the CPU budget, ends it too.
        let wall = limits.cpu_time * WALL_TIME_FACTOR + WALL_TIME_SLACK;
        let result = tokio::time::timeout(wall, timed(run, &mut ran))
            .await
            .unwrap_or_else(|_| {
                Err(CallError::Deadline {
                    plugin: self.name.clone(),
                    limit_ms: wall.as_millis(),
                })
            });
        self.drain_log(&store);
        self.stats.record_call(ran, store.data().limits.high_water);
        match result {
            Ok((result, instance)) => (
                Ok(result),
                Some(Kept {
                    store,
                    instance,
                    slot,
                }),
            ),
            Err(err) => (Err(err), None),
        }
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
        // A kept instance's next call gets a budget of its own.
        let log = std::mem::replace(
            &mut *store
                .data()
                .log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            GuestLog::new(self.limits.log_bytes),
        );
        for (stream, text) in log.lines() {
            for line in text.lines().filter(|l| !l.is_empty()) {
                tracing::info!(target: "plugin", plugin = %self.name, stream, "{line}");
            }
        }
        if log.dropped > 0 {
            self.stats
                .log_bytes_dropped
                .fetch_add(log.dropped as u64, std::sync::atomic::Ordering::Relaxed);
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
        // The URL is shown as the views show it: it may hold credentials.
        let url = url::Url::parse(&r.url).map_err(|e| {
            self.invalid(format!(
                "request URL {:?}: {e}",
                crate::secrets::url(&r.url)
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(self.invalid(format!(
                "request URL {:?} is not an http(s) URL with a host",
                crate::secrets::url(&r.url)
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
            answer: match r.answer {
                wit::Answer::Plugin => Answer::Plugin,
                wit::Answer::Default => Answer::Default,
                wit::Answer::None => Answer::None,
            },
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

/// Runs `fut`, adding the time spent inside its polls to `ran`: the time
/// the call ran on a worker, not the time it spent yielded.
async fn timed<F: Future>(fut: F, ran: &mut Duration) -> F::Output {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| {
        let start = Instant::now();
        let poll = fut.as_mut().poll(cx);
        *ran += start.elapsed();
        poll
    })
    .await
}

fn to_wit_event(event: &Event, group: Option<&str>) -> wit::Event {
    wit::Event {
        id: event.id.clone(),
        device_id: event.device.as_str().to_owned(),
        name: event.name.as_str().to_owned(),
        data: event.data.to_vec(),
        published_at: event.published_at.clone(),
        group: group.map(str::to_owned),
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
