//! Devices' events into JetStream: on a cluster, what a host's embedded
//! broker takes from its devices is published to [`EVENTS_STREAM`], and
//! the device gets its PUBACK only once JetStream has stored it on a
//! majority of its replicas. Any host then takes it ([`super::events`]).
//!
//! An event JetStream does not take is tried again for a while (a node's
//! death makes a leader's election, seconds without one); one it still
//! does not take (the device holds its share of the stream, or no node
//! answers) is not acknowledged: the device sends it again.
//!
//! [`EVENTS_STREAM`]: super::EVENTS_STREAM

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::HeaderMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{EVENTS_SUBJECTS, Nats, TOPIC_HEADER, device_subject, patiently};
use crate::ingress::{Inbound, Refusal};
use crate::topic::event_topic;

/// What JetStream says when a device's subject holds its share.
const PER_DEVICE_FULL: &str = "maximum messages per subject exceeded";

/// The subject prefix of [`EVENTS_SUBJECTS`].
const PREFIX: &str = "edgehook.events.";

/// Publishes what the broker takes until `shutdown` (what it has not
/// published then is not acknowledged: the devices send it again).
pub async fn run(nats: Nats, mut taken: mpsc::Receiver<Inbound>, shutdown: CancellationToken) {
    debug_assert!(EVENTS_SUBJECTS.starts_with(PREFIX));
    let failing = Arc::new(AtomicBool::new(false));
    loop {
        let Inbound {
            event, ack, share, ..
        } = tokio::select! {
            () = shutdown.cancelled() => return,
            taken = taken.recv() => match taken {
                Some(taken) => taken,
                None => return,
            },
        };
        let subject = device_subject(PREFIX, event.device.as_str());
        let mut headers = HeaderMap::new();
        headers.insert(
            TOPIC_HEADER,
            event_topic(&event.device, &event.name).as_str(),
        );
        // JetStream drops a second copy of one id within its duplicate
        // window: a publish tried again after a lost acknowledgement is
        // stored once.
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event.id.as_str());
        let first = nats
            .js
            .publish_with_headers(subject.clone(), headers.clone(), event.data.clone())
            .await;
        let nats = nats.clone();
        let failing = failing.clone();
        // Stored in order of publication; the acknowledgements are waited
        // for side by side.
        tokio::spawn(async move {
            let mut first = Some(first);
            let stored = patiently(
                || {
                    let sent = first.take();
                    let (nats, subject, headers) = (&nats, &subject, &headers);
                    let data = event.data.clone();
                    async move {
                        let sent = match sent {
                            Some(sent) => sent,
                            None => {
                                nats.js
                                    .publish_with_headers(subject.clone(), headers.clone(), data)
                                    .await
                            }
                        };
                        sent.map_err(|e| e.to_string())?
                            .await
                            .map(drop)
                            .map_err(|e| e.to_string())
                    }
                },
                // The stream keeps each device's share (its subject's).
                |err: &String| err.contains(PER_DEVICE_FULL),
            )
            .await;
            match stored {
                Ok(()) => {
                    if failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("JetStream takes devices' events again");
                    }
                    ack.ack().await;
                }
                Err(err) if err.contains(PER_DEVICE_FULL) => ack.refuse(Refusal::Share),
                Err(err) => refused(&failing, &err),
            }
            drop(share);
        });
    }
}

/// Says (once until events are taken again) that JetStream did not take
/// an event; the device sends it again.
fn refused(failing: &AtomicBool, err: &dyn std::fmt::Display) {
    if !failing.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "JetStream did not take a device's event: {err}; not acknowledged, the device sends it again"
        );
    }
}
