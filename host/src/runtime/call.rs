//! Running one plugin on one event: a fresh store and instance per event
//! (kept from `on-event` for `on-response` when the pool has room), a
//! time budget (the guest yields to the executor at every epoch tick and is
//! stopped once it has run its limit), a memory cap, and the counting of
//! results that suspends a plugin in a crash loop. What the guest is given
//! and returns is converted in [`super::convert`].

use std::pin::pin;
use std::time::{Duration, Instant};

use wasmtime::{Store, UpdateDeadline};

use super::Limits;
use super::call_error::CallError;
use super::compat;
use super::convert::{to_wit_event, to_wit_outcome};
use super::engine::Slot;
use super::keyvalue::KvAccess;
use super::output::GuestLog;
use super::plugin::{Instance, Plugin, Pre};
use super::state::HostState;
use super::ticker::EPOCH_TICK;
use crate::event::Event;
use crate::exchange::{Answer, HookRequest, Outcome, Reply};
use crate::topic::DeviceId;

/// A call may take this many times its CPU budget in wall-clock time (it
/// may wait behind others to run, or for the host) ...
const WALL_TIME_FACTOR: u32 = 50;

/// ... plus this.
const WALL_TIME_SLACK: Duration = Duration::from_secs(1);

/// A plugin's instance kept from an event's `on-event` for the same
/// event's `on-response`: one instance per event instead of one per call,
/// which saves an instantiation (and lets the guest keep what it worked out
/// in `on-event`). Kept only when the call succeeded and half the pool is
/// free; dropping it frees its pool slot. Never used for another event.
pub struct KeptInstance {
    // Declared before the slot: the instance is gone before the slot is
    // free for another.
    store: Store<HostState>,
    instance: Instance,
    slot: Slot,
}

impl std::fmt::Debug for KeptInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptInstance").finish_non_exhaustive()
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
    ) -> (Result<Option<HookRequest>, CallError>, Option<KeptInstance>) {
        let (result, kept) = self
            .call(
                &event.device,
                None,
                async |store, instance| match instance {
                    Instance::V0_2(i) => i.call_on_event(store, &to_wit_event(event, group)).await,
                    Instance::V0_1(i) => i
                        .call_on_event(store, &compat::event(event))
                        .await
                        .map(|r| r.map(|request| request.map(compat::request))),
                },
            )
            .await;
        let result = result.and_then(|result| {
            result
                .map_err(|message| self.plugin_error(message))
                .and_then(|request| request.map(|r| self.check_request(r)).transpose())
        });
        // Plugins of 0.1.0 were promised a fresh instance for every call.
        let keep = matches!(&result, Ok(Some(r)) if r.answer == Answer::Plugin)
            && !matches!(self.pre, Pre::V0_1(_))
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
        kept: Option<KeptInstance>,
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
        kept: Option<KeptInstance>,
    ) -> Result<Vec<Reply>, CallError> {
        let (result, _) = self
            .call(
                &event.device,
                kept,
                async |store, instance| match instance {
                    Instance::V0_2(i) => {
                        i.call_on_response(
                            store,
                            &to_wit_event(event, group),
                            &to_wit_outcome(outcome),
                        )
                        .await
                    }
                    Instance::V0_1(i) => i
                        .call_on_response(store, &compat::event(event), &compat::outcome(outcome))
                        .await
                        .map(|r| r.map(|replies| replies.into_iter().map(compat::reply).collect())),
                },
            )
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
            .record_result(&self.name, &result, self.limits().suspend_after);
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
        device: &DeviceId,
        kept: Option<KeptInstance>,
        f: impl AsyncFnOnce(&mut Store<HostState>, &Instance) -> wasmtime::Result<R>,
    ) -> (Result<R, CallError>, Option<KeptInstance>) {
        let limits = self.limits();
        let (mut store, instance, slot) = match kept {
            Some(kept) => (kept.store, Some(kept.instance), kept.slot),
            None => {
                let (store, slot) = self.fresh_store(&limits, device).await;
                (store, None, slot)
            }
        };
        let _running = self.engine.running();
        set_cpu_budget(&mut store, limits.cpu_time);
        let mut ran = Duration::ZERO;
        let run = async {
            let instance = match instance {
                Some(instance) => instance,
                None => self.pre.instantiate_async(&mut store).await.map_err(|e| {
                    match self.classify(&store, e, &limits) {
                        CallError::Trap { plugin, message } => {
                            CallError::Instantiate { plugin, message }
                        }
                        other => other,
                    }
                })?,
            };
            let result = f(&mut store, &instance)
                .await
                .map_err(|e| self.classify(&store, e, &limits))?;
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
        self.drain_log(&store, limits.log_bytes);
        self.stats.record_call(ran, store.data().limits.high_water);
        match result {
            Ok((result, instance)) => (
                Ok(result),
                Some(KeptInstance {
                    store,
                    instance,
                    slot,
                }),
            ),
            Err(err) => (Err(err), None),
        }
    }

    /// A store for a fresh instance, and the pool slot it takes (waited
    /// for).
    async fn fresh_store(&self, limits: &Limits, device: &DeviceId) -> (Store<HostState>, Slot) {
        let slot = self.engine.slot().await;
        // Only a plugin that imports key-value state can open a bucket.
        let stateful = matches!(self.pre, Pre::V0_3(_));
        let kv = self.engine.kv().filter(|_| stateful).map(|store| KvAccess {
            store: store.clone(),
            plugin: self.name.clone(),
            device: device.clone(),
            max_keys: limits.kv_max_keys,
            stats: self.stats.clone(),
        });
        let mut store = Store::new(
            self.engine.engine(),
            HostState::new(self.config.clone(), limits.memory, limits.log_bytes, kv),
        );
        store.limiter(|s| &mut s.limits);
        (store, slot)
    }

    fn classify(
        &self,
        store: &Store<HostState>,
        err: wasmtime::Error,
        limits: &Limits,
    ) -> CallError {
        let plugin = self.name.clone();
        if store.data().limits.hit {
            return CallError::Memory {
                plugin,
                limit: limits.memory,
            };
        }
        if let Some(wasmtime::Trap::Interrupt) = err.downcast_ref::<wasmtime::Trap>() {
            return CallError::Deadline {
                plugin,
                limit_ms: limits.cpu_time.as_millis(),
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

    fn drain_log(&self, store: &Store<HostState>, log_bytes: usize) {
        // A kept instance's next call gets a budget of its own.
        let log = std::mem::replace(
            &mut *store
                .data()
                .log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            GuestLog::new(log_bytes),
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
                "dropped {} bytes of log over the limit of {} bytes per call", log.dropped, log_bytes);
        }
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

/// Gives the next call in `store` its time budget of `cpu_time`. The guest
/// yields to the executor at every epoch tick, so a loop holds no worker
/// thread; the callback runs only while the guest runs, so the ticks it
/// counts are the guest's own time. One tick more than the limit: the
/// first one is partly spent before the call starts.
fn set_cpu_budget(store: &mut Store<HostState>, cpu_time: Duration) {
    let budget = cpu_time.as_millis().div_ceil(EPOCH_TICK.as_millis()) + 1;
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
}
