//! One simulated device: its publisher, paced by the plan, and its
//! receiver, which matches every answer to the event it answers.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS, SubscribeReasonCode};
use tokio::sync::{Semaphore, oneshot};

use super::counts::{Ledger, Progress, lock};
use super::plan::{Plan, event_data};
use super::topics::{Answer, Topics};

/// How a device waits before each event.
#[derive(Debug)]
pub(super) enum Pacer {
    /// Until its time at this many events per second across the fleet.
    Rate(f64),
    /// For a permit, which the answer gives back.
    Window(Arc<Semaphore>),
    /// Not at all.
    Flood,
}

/// The state one device's publisher and receiver share.
#[derive(Debug)]
pub(super) struct Device {
    pub(super) id: String,
    pub(super) index: usize,
    pub(super) plan: Plan,
    pub(super) topics: Topics,
    pub(super) pacer: Arc<Pacer>,
    pub(super) ledger: Mutex<Ledger>,
    /// Publish-to-response latencies of the whole fleet, microseconds.
    pub(super) latencies: Arc<Mutex<Histogram<u64>>>,
    pub(super) progress: Arc<Progress>,
}

impl Device {
    pub(super) fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    /// Publishes this device's events at the plan's pace; stops early when
    /// its connection is gone.
    pub(super) async fn publish(self: Arc<Self>, client: AsyncClient, start: Instant) {
        let plan = self.plan;
        let seqs = (self.index..plan.events).step_by(plan.devices);
        for (local, seq) in seqs.enumerate() {
            match &*self.pacer {
                Pacer::Rate(rate) => {
                    let at = start + Duration::from_secs_f64(seq as f64 / rate);
                    tokio::time::sleep_until(at.into()).await;
                }
                Pacer::Window(window) => match window.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => return,
                },
                Pacer::Flood => {}
            }
            let now = Instant::now();
            {
                let mut ledger = self.ledger();
                ledger.sent[local] = Some(now);
                ledger.last_publish = Some(now);
            }
            let data = event_data(seq, plan.size);
            if client
                .publish(&self.topics.events, QoS::AtLeastOnce, false, data)
                .await
                .is_err()
            {
                self.ledger().sent[local] = None;
                return;
            }
            self.progress.published.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Matches one message to the event it answers.
    pub(super) fn receive(&self, topic: &str, payload: &[u8], at: Instant) {
        let answer = self.topics.read(topic, payload);
        let mut ledger = self.ledger();
        let matched = answer.and_then(|answer| {
            let local = self.plan.local(self.index, answer.seq())?;
            Some((answer, local, ledger.sent[local]?))
        });
        let Some((answer, local, sent_at)) = matched else {
            ledger.wrong_topics += 1;
            let text = String::from_utf8_lossy(payload);
            ledger.note(format!("unexpected message on {topic}: {text:.80}"));
            return;
        };
        if std::mem::replace(&mut ledger.answered[local], true) {
            ledger.duplicates += 1;
            return;
        }
        let latency = match answer {
            Answer::Response(_) => {
                ledger.responses += 1;
                Some(at.saturating_duration_since(sent_at))
            }
            Answer::Error(seq, text) => {
                ledger.hook_errors += 1;
                let text = String::from_utf8_lossy(text);
                ledger.note(format!("hook-error for event {seq}: {text}"));
                None
            }
        };
        ledger.last_answer = Some(at);
        drop(ledger);
        if let Some(latency) = latency {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            lock(&self.latencies).saturating_record(micros);
        }
        self.progress.answered.fetch_add(1, Ordering::Relaxed);
        if let Pacer::Window(window) = &*self.pacer {
            window.add_permits(1);
        }
    }
}

/// Runs a device's MQTT connection: says when its subscriptions are in
/// place, then hands every message to [`Device::receive`].
pub(super) async fn drive(
    mut connection: EventLoop,
    device: Arc<Device>,
    ready: oneshot::Sender<Result<(), String>>,
) {
    let mut ready = Some(ready);
    loop {
        match connection.poll().await {
            Ok(Event::Incoming(Packet::Publish(message))) => {
                device.receive(&message.topic, &message.payload, Instant::now());
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if let Some(ready) = ready.take() {
                    let refused = ack.return_codes.contains(&SubscribeReasonCode::Failure);
                    let _ = ready.send(if refused {
                        Err("the broker refused the subscription".to_owned())
                    } else {
                        Ok(())
                    });
                }
            }
            Ok(_) => {}
            Err(err) => {
                match ready.take() {
                    Some(ready) => {
                        let _ = ready.send(Err(err.to_string()));
                    }
                    None => device.ledger().connection_lost = Some(err.to_string()),
                }
                return;
            }
        }
    }
}
