//! One delivery: a webhook's plugin renders the request, the throttle
//! admits it, the client sends it, failures are retried on the schedule,
//! and the final outcome goes back through the plugin to the device.
//!
//! The event leaves the queue only when its delivery is done for good:
//! answered, failed for good, or dropped by policy (retries or skips
//! exhausted, TTL), each of which tells the device with a hook-error.
//! A delivery cut short by shutdown leaves its event queued. One whose
//! webhook is retired (deleted, disabled, removed) makes no further attempt:
//! it stops waiting at once, and the device gets a hook-error that says so
//! — it may be waiting for an answer, and this is the last word on its
//! event.
//!
//! The plugin calls, the request and the publishing are boxed where they
//! are awaited: a delivery waiting for a slot or the throttle (a flood
//! queues thousands) then takes a few hundred bytes, not the kilobytes of
//! its largest step.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::SemaphorePermit;

use super::authorize::{Ready, Sent};
use super::parts::{Job, Pipeline};
use super::record::Made;
use super::stats::{DropReason, RequestOutcome};
use crate::delivery::DeliveryError;
use crate::event::Event;
use crate::exchange::{Answer, HookRequest, HookResponse, Outcome, Reply};
use crate::fleet::GroupId;
use crate::hooks::Hook;
use crate::runtime::KeptInstance;
use crate::stores::history::Outcome as Recorded;
use crate::throttle::{Attempt, SLEEPING_MESSAGE, Verdict, classify};
use crate::traces::Span;
use opentelemetry::StringValue;

/// Waiting this long for the throttle counts as throttled.
const THROTTLED: Duration = Duration::from_millis(1);

/// One delivery's attempts so far.
struct Tries<'a> {
    /// Failed requests retried.
    retries: usize,
    /// Attempts skipped because the host was sleeping.
    skips: usize,
    /// The request went out at least once: the device heard `hook-sent`.
    sent: bool,
    /// Attempts recorded in the history.
    recorded: u32,
    /// The span of this delivery, whose children its attempts are.
    span: &'a Span,
    /// The instance kept for the answer, dropped before any wait for a
    /// retry (it would hold a pool slot through the wait).
    kept: &'a mut Option<KeptInstance>,
}

/// What a delivery does after an attempt that did not end it.
enum Step {
    /// Make the next attempt.
    Again,
    /// The delivery ends with this outcome.
    Done(Outcome),
}

impl Pipeline {
    /// Runs `hook` for the event of `job` to its end.
    pub(super) async fn deliver(&self, hook: &Hook, job: &Job) {
        let mut span = job.trace.child("webhook");
        span.set("edgehook.webhook", StringValue::from(hook.name.clone()));
        let Some(replies) = self.run_hook(hook, job, &span).await else {
            return;
        };
        if !hook.one_way {
            let publish = span.child("publish");
            Box::pin(self.responder.replies(&job.event, &replies)).await;
            if job.ticket.is_claimed() {
                // The answers are part of the delivery: the event stays in
                // the cluster's stream until the broker has them, so that a host
                // killed in between leaves them to another host.
                self.responder.confirmed().await;
            }
            publish.end();
        }
        self.stats.latency(job.since.elapsed());
        job.ticket.finish(&hook.name);
    }

    /// The device's replies; `None` when shutdown cut the delivery short.
    async fn run_hook(&self, hook: &Hook, job: &Job, span: &Span) -> Option<Vec<Reply>> {
        let event = &job.event;
        if let Some(reason) = hook.disabled() {
            // Through the plugin, so that its error topic applies.
            self.note_unsent(hook, job, &reason, Recorded::Refused);
            let outcome = Outcome::Failed(reason);
            let replies = Box::pin(self.answer(hook, job, Answer::Plugin, &outcome, None)).await?;
            hook.log.record(event, None, outcome);
            return Some(replies);
        }
        let (called, mut kept) = match hook.plugin.suspended() {
            // A plugin in a crash loop is not called; the device is told why.
            Some(reason) => (Err(reason), None),
            None => {
                let _slot = self.slot().await?;
                let group = job.group.as_ref().map(GroupId::as_str);
                let mut call = span.child("plugin.on_event");
                let (called, kept) = Box::pin(hook.plugin.on_event_keeping(event, group)).await;
                let called = called.map_err(|e| e.to_string());
                if let Err(why) = &called {
                    call.error(why);
                }
                call.end();
                (called, kept)
            }
        };
        let request = match called {
            Ok(Some(request)) => request,
            Ok(None) => return Some(Vec::new()),
            Err(why) => {
                tracing::warn!(device = %event.device, event = %event.name, "{why}");
                self.note_unsent(hook, job, &why, Recorded::GaveUp);
                let reply = Reply::error(why.clone());
                hook.log.record(event, None, Outcome::Failed(why));
                return Some(vec![reply]);
            }
        };
        // Boxed, as the answer below: a delivery waiting for its first slot
        // (thousands of them in a flood) holds only what it needs so far.
        let outcome =
            Box::pin(self.send_with_retries(hook, job, &request, &mut kept, span)).await?;
        let failure = match &outcome {
            Outcome::Response(r) if r.status < 400 => None,
            Outcome::Response(r) => Some(format!("status {}", r.status)),
            Outcome::Failed(why) => {
                tracing::info!(device = %event.device, event = %event.name, plugin = %hook.name, "{why}");
                Some(why.clone())
            }
        };
        // A retired webhook's streak no longer matters.
        let recorded = hook
            .retired()
            .is_none()
            .then(|| hook.record_delivery(failure.as_deref(), self.policy.load().disable_after));
        if let Some(Some(reason)) = recorded {
            tracing::warn!("{reason}");
            self.flags.disabled(&hook.name, &reason);
        }
        let answering = span.child("plugin.on_response");
        let replies = Box::pin(self.answer(hook, job, request.answer, &outcome, kept)).await?;
        answering.end();
        hook.log.record(event, Some(request), outcome);
        Some(replies)
    }

    /// The replies to `outcome` that `answer` asks for, or a hook-error
    /// when the plugin fails (even at shutdown: the request was made, so
    /// the drain finishes it). A plugin that leaves the
    /// answer to the host is not called, and takes no slot. `kept` is the
    /// instance of the event's `on-event`, if it was kept.
    async fn answer(
        &self,
        hook: &Hook,
        job: &Job,
        answer: Answer,
        outcome: &Outcome,
        kept: Option<KeptInstance>,
    ) -> Option<Vec<Reply>> {
        let event = &job.event;
        let group = job.group.as_ref().map(GroupId::as_str);
        // Not cut short by shutdown: the request was made, and the drain
        // lets its answer reach the device.
        let _slot = match answer {
            Answer::Plugin => Some(self.in_flight.acquire().await.ok()?),
            Answer::Default | Answer::None => None,
        };
        Some(
            match Box::pin(hook.plugin.answer(event, group, answer, outcome, kept)).await {
                Ok(replies) => replies,
                Err(err) => {
                    tracing::warn!(device = %event.device, event = %event.name, "{err}");
                    vec![Reply::error(err.to_string())]
                }
            },
        )
    }

    /// Sends `request` until it is answered, fails for good, or is dropped
    /// by policy; `None` when shutdown cut it short. An instance `kept` for
    /// the answer is dropped before any wait for a retry: it would hold a
    /// pool slot through the wait.
    async fn send_with_retries(
        &self,
        hook: &Hook,
        job: &Job,
        request: &HookRequest,
        kept: &mut Option<KeptInstance>,
        span: &Span,
    ) -> Option<Outcome> {
        let event = &job.event;
        let host = request.url.host_str().unwrap_or_default();
        if let Some((ended, recorded)) = self.ended_before_sending(hook, event, host) {
            if let Outcome::Failed(why) = &ended {
                self.note_unsent(hook, job, why, recorded);
            }
            return Some(ended);
        }
        let mut tries = Tries {
            retries: 0,
            skips: 0,
            sent: false,
            recorded: 0,
            span,
            kept,
        };
        // A `401` to an access token asks for a new one, once.
        let mut refreshed = false;
        loop {
            if let Some(retired) = hook.retired() {
                return Some(self.retired(hook, job, &mut tries, retired));
            }
            let ready = match hook.send.may_wait() {
                true => Box::pin(self.ready_auth(hook, event)).await?,
                false => Ready::Go,
            };
            match ready {
                Ready::Go => {}
                Ready::Retired(why) => return Some(self.retired(hook, job, &mut tries, why)),
                Ready::Failed(refused @ DeliveryError::Refused(_)) => {
                    self.stats.request(RequestOutcome::Refused);
                    let ended = outcome_of(Err(refused));
                    if let Outcome::Failed(why) = &ended {
                        self.note(
                            hook,
                            job,
                            &mut tries,
                            Made::unsent(),
                            Err(why),
                            Recorded::Refused,
                        );
                    }
                    return Some(ended);
                }
                Ready::Failed(failed) => {
                    match self
                        .retry(hook, job, Err(failed), None, Made::unsent(), &mut tries)
                        .await?
                    {
                        Step::Again => continue,
                        Step::Done(outcome) => return Some(outcome),
                    }
                }
            }
            let asked = tokio::time::Instant::now();
            let admitted = tokio::select! {
                admitted = self.throttle.admit(host, event.device.as_str()) => admitted,
                retired = hook.until_retired() => return Some(self.retired(hook, job, &mut tries, retired)),
                () = self.shutdown.cancelled() => return None,
            };
            let Ok(host_slot) = admitted else {
                match self.skipped(hook, job, request, &mut tries).await? {
                    Step::Again => continue,
                    Step::Done(outcome) => return Some(outcome),
                }
            };
            if asked.elapsed() >= THROTTLED {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            }
            let mut made = Made::unsent();
            let Sent { result, token } = {
                let _slot = self.slot().await?;
                if let Some(retired) = hook.retired() {
                    return Some(self.retired(hook, job, &mut tries, retired));
                }
                let mut http = tries.span.client("http");
                if http.is_recording() {
                    http.set("server.address", host.to_owned());
                    http.set("http.request.method", request.method.to_string());
                    let number = job.attempts_before + tries.recorded + 1;
                    http.set("edgehook.attempt", i64::from(number));
                }
                made.at = SystemTime::now();
                let started = tokio::time::Instant::now();
                let sent =
                    Box::pin(self.send_authorized(hook, event, request, http.traceparent())).await;
                made.took = started.elapsed();
                if http.is_recording() {
                    match &sent.result {
                        Ok(r) => http.set("http.response.status_code", i64::from(r.status)),
                        Err(e) => http.error(&e.to_string()),
                    }
                }
                http.end();
                sent
            };
            if !matches!(result, Err(DeliveryError::Refused(_))) {
                made.request = Some(request);
            }
            let attempt = attempt_of(&result);
            let verdict = classify(&attempt, SystemTime::now());
            let not_before = match verdict {
                Verdict::Retry { not_before } => not_before,
                Verdict::Success | Verdict::Fail => None,
            };
            if attempt != Attempt::Refused {
                self.throttle
                    .record(host, verdict == Verdict::Success, not_before);
            }
            // A refused certificate went out; a refused address did not.
            if !tries.sent && !matches!(result, Err(DeliveryError::Refused(_))) {
                tries.sent = true;
                if !hook.one_way {
                    Box::pin(self.responder.hook_sent(event)).await;
                }
            }
            drop(host_slot);
            self.stats.request(request_outcome(&attempt));
            if let (Some(auth), Some(token), Ok(HookResponse { status: 401, .. }), false) =
                (&hook.send.auth, &token, &result, refreshed)
            {
                auth.forget(token);
                refreshed = true;
                self.note_result(hook, job, &mut tries, made, &result, Recorded::Retrying);
                continue;
            }
            let Verdict::Retry { not_before } = verdict else {
                let recorded = match (verdict, attempt) {
                    (Verdict::Success, _) => Recorded::Delivered,
                    (_, Attempt::Refused) => Recorded::Refused,
                    _ => Recorded::GaveUp,
                };
                self.note_result(hook, job, &mut tries, made, &result, recorded);
                return Some(outcome_of(result));
            };
            match self
                .retry(hook, job, result, not_before, made, &mut tries)
                .await?
            {
                Step::Again => {}
                Step::Done(outcome) => return Some(outcome),
            }
        }
    }

    /// The end of a delivery before its first attempt: its destination
    /// is not allowed, or its event is past its TTL already (it waited in
    /// the queue: a stop, a slow cluster).
    fn ended_before_sending(
        &self,
        hook: &Hook,
        event: &Event,
        host: &str,
    ) -> Option<(Outcome, Recorded)> {
        if !hook.allows_host(host) {
            self.stats.request(RequestOutcome::Refused);
            let why = format!(
                "destination {host} refused: not in the allowed_hosts of plugin {}",
                hook.name
            );
            return Some((Outcome::Failed(why), Recorded::Refused));
        }
        self.expires_within(event, Duration::ZERO)
            .map(|expired| (expired, Recorded::GaveUp))
    }

    /// The host of `request` is sleeping: the device hears of every skip,
    /// as from Particle, and the last one is its final hook-error; until
    /// then the request waits for the next attempt on the skip schedule.
    /// `None` when shutdown cut it short.
    async fn skipped(
        &self,
        hook: &Hook,
        job: &Job,
        request: &HookRequest,
        tries: &mut Tries<'_>,
    ) -> Option<Step> {
        let event = &job.event;
        self.stats.skipped.fetch_add(1, Ordering::Relaxed);
        let Some(wait) = self.policy.load().skip_retry.delay(tries.skips, None) else {
            self.stats.drop_event(DropReason::Skipped);
            self.note_skip(hook, job, tries, Recorded::GaveUp);
            return Some(Step::Done(Outcome::Failed(SLEEPING_MESSAGE.to_owned())));
        };
        if let Some(expired) = self.expires_within(event, wait) {
            self.note_skip(hook, job, tries, Recorded::GaveUp);
            return Some(Step::Done(expired));
        }
        self.note_skip(hook, job, tries, Recorded::Retrying);
        let skipped = Outcome::Failed(SLEEPING_MESSAGE.to_owned());
        let replies = self
            .answer(hook, job, request.answer, &skipped, tries.kept.take())
            .await?;
        if !hook.one_way {
            Box::pin(self.responder.replies(event, &replies)).await;
        }
        tries.skips += 1;
        self.wait_for_next(hook, job, tries, wait).await
    }

    /// A failed attempt the policy retries: waits for the next one, or
    /// ends the delivery when the retries are exhausted or the event would
    /// outlive its TTL. `None` when shutdown cut it short.
    async fn retry(
        &self,
        hook: &Hook,
        job: &Job,
        result: Result<HookResponse, DeliveryError>,
        not_before: Option<Duration>,
        made: Made<'_>,
        tries: &mut Tries<'_>,
    ) -> Option<Step> {
        let event = &job.event;
        let schedule = match &hook.send.retry {
            Some(own) => own.delay(tries.retries, not_before),
            None => self.policy.load().retry.delay(tries.retries, not_before),
        };
        let Some(wait) = schedule else {
            self.note_result(hook, job, tries, made, &result, Recorded::GaveUp);
            self.stats.drop_event(DropReason::Retries);
            return Some(Step::Done(match outcome_of(result) {
                Outcome::Failed(why) if tries.retries > 0 => Outcome::Failed(format!(
                    "{why} (gave up after {} attempts)",
                    tries.retries + 1
                )),
                outcome => outcome,
            }));
        };
        if let Some(expired) = self.expires_within(event, wait) {
            self.note_result(hook, job, tries, made, &result, Recorded::GaveUp);
            return Some(Step::Done(expired));
        }
        self.note_result(hook, job, tries, made, &result, Recorded::Retrying);
        tries.retries += 1;
        *tries.kept = None;
        self.stats.retried.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(device = %event.device, event = %event.name, plugin = %hook.name,
            "attempt {} failed; trying again in {wait:?}", tries.retries);
        self.wait_for_next(hook, job, tries, wait).await
    }

    /// Waits `wait` for the next attempt: [`Step::Again`], or the end of
    /// the delivery when its webhook was retired first; `None` at shutdown.
    async fn wait_for_next(
        &self,
        hook: &Hook,
        job: &Job,
        tries: &mut Tries<'_>,
        wait: Duration,
    ) -> Option<Step> {
        Some(match self.wait(hook, wait).await? {
            Some(retired) => Step::Done(self.retired(hook, job, tries, retired)),
            None => Step::Again,
        })
    }

    /// The end of a delivery whose webhook was retired (`why`, its
    /// message): counted as a drop, recorded as given up.
    fn retired(&self, hook: &Hook, job: &Job, tries: &mut Tries<'_>, why: String) -> Outcome {
        self.stats.drop_event(DropReason::Removed);
        self.note(
            hook,
            job,
            tries,
            Made::unsent(),
            Err(&why),
            Recorded::GaveUp,
        );
        Outcome::Failed(why)
    }

    /// Records an attempt of this delivery in the history.
    fn note(
        &self,
        hook: &Hook,
        job: &Job,
        tries: &mut Tries<'_>,
        made: Made<'_>,
        answer: Result<&HookResponse, &str>,
        outcome: Recorded,
    ) {
        let first = tries.recorded == 0;
        tries.recorded += 1;
        let made = Made {
            number: job.attempts_before + tries.recorded,
            ..made
        };
        self.recorder
            .attempt(&hook.name, &job.event, first, made, answer, outcome);
    }

    /// [`Self::note`] of an attempt skipped because its host was sleeping.
    fn note_skip(&self, hook: &Hook, job: &Job, tries: &mut Tries<'_>, outcome: Recorded) {
        let made = Made::unsent();
        self.note(hook, job, tries, made, Err(SLEEPING_MESSAGE), outcome);
    }

    /// [`Self::note`] of a request's result.
    fn note_result(
        &self,
        hook: &Hook,
        job: &Job,
        tries: &mut Tries<'_>,
        made: Made<'_>,
        result: &Result<HookResponse, DeliveryError>,
        outcome: Recorded,
    ) {
        match result {
            Ok(response) => self.note(hook, job, tries, made, Ok(response), outcome),
            Err(err) => self.note(hook, job, tries, made, Err(&err.to_string()), outcome),
        }
    }

    /// Records the one attempt of a delivery that ended before any
    /// request: `why` it ended.
    fn note_unsent(&self, hook: &Hook, job: &Job, why: &str, outcome: Recorded) {
        self.recorder.attempt(
            &hook.name,
            &job.event,
            true,
            Made {
                number: job.attempts_before + 1,
                ..Made::unsent()
            },
            Err(why),
            outcome,
        );
    }

    /// The drop of `event` when waiting `wait` more would take it past the
    /// event TTL.
    fn expires_within(&self, event: &Event, wait: Duration) -> Option<Outcome> {
        let published = humantime::parse_rfc3339(&event.published_at).ok()?;
        let age = SystemTime::now()
            .duration_since(published)
            .unwrap_or_default();
        let ttl = self.policy.load().ttl;
        if age + wait <= ttl {
            return None;
        }
        self.stats.drop_event(DropReason::Ttl);
        Some(Outcome::Failed(format!(
            "event dropped: not delivered within its TTL of {}",
            humantime::format_duration(ttl)
        )))
    }

    /// A slot for a plugin call or a request; `None` at shutdown.
    pub(super) async fn slot(&self) -> Option<SemaphorePermit<'_>> {
        tokio::select! {
            permit = self.in_flight.acquire() => permit.ok(),
            () = self.shutdown.cancelled() => None,
        }
    }

    /// Sleeps `d`; `None` when shutdown came first, `Some(Some(why))` when
    /// `hook` was retired first.
    pub(super) async fn wait(&self, hook: &Hook, d: Duration) -> Option<Option<String>> {
        tokio::select! {
            () = tokio::time::sleep(d) => Some(None),
            retired = hook.until_retired() => Some(Some(retired)),
            () = self.shutdown.cancelled() => None,
        }
    }
}

/// What the retry policy needs to know of a result.
fn attempt_of(result: &Result<HookResponse, DeliveryError>) -> Attempt<'_> {
    match result {
        Ok(response) => Attempt::Status {
            code: response.status,
            retry_after: response
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
                .map(|(_, value)| value.as_str()),
        },
        Err(DeliveryError::Refused(_) | DeliveryError::Certificate { .. }) => Attempt::Refused,
        Err(DeliveryError::Timeout { .. }) => Attempt::Timeout,
        Err(
            DeliveryError::Transport { .. }
            | DeliveryError::Unresolved(_)
            | DeliveryError::Token { .. },
        ) => Attempt::Transport,
    }
}

fn request_outcome(attempt: &Attempt<'_>) -> RequestOutcome {
    match attempt {
        Attempt::Status {
            code: 100..=399, ..
        } => RequestOutcome::Success,
        Attempt::Status { .. } => RequestOutcome::ErrorStatus,
        Attempt::Timeout => RequestOutcome::Timeout,
        Attempt::Transport => RequestOutcome::Transport,
        Attempt::Refused => RequestOutcome::Refused,
    }
}

fn outcome_of(result: Result<HookResponse, DeliveryError>) -> Outcome {
    match result {
        Ok(response) => Outcome::Response(response),
        Err(err) => Outcome::Failed(err.to_string()),
    }
}
