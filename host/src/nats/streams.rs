//! The streams, the consumer, the key-value buckets and the object stores
//! the hosts share, each created by the first host that finds it missing,
//! with `min(3, nodes)` replicas ([`made`]).

use std::time::Duration;

use async_nats::jetstream;

use super::{
    EVENTS_CONSUMER, EVENTS_STREAM, EVENTS_SUBJECTS, Nats, NatsError, TO_DEVICES_STREAM,
    TO_DEVICES_SUBJECTS,
};

/// Events handed out and not yet acknowledged, over every host: beyond
/// this JetStream hands out no more until some are done.
const MAX_ACK_PENDING: i64 = 20_000;

/// Replicas of what the hosts create: any one node may die.
const MAX_REPLICAS: usize = 3;

/// How long what hosts send devices stays in [`TO_DEVICES_STREAM`].
const TO_DEVICES_KEPT: Duration = Duration::from_secs(10 * 60);

/// The most [`TO_DEVICES_STREAM`] holds; the oldest go first.
const TO_DEVICES_MAX_BYTES: i64 = 256 * 1024 * 1024;

impl Nats {
    /// The events stream, created when missing.
    pub async fn events_stream(&self) -> Result<jetstream::stream::Stream, NatsError> {
        made(
            &format!("stream {EVENTS_STREAM}"),
            || self.js.get_stream(EVENTS_STREAM),
            |replicas| self.js.create_stream(events_config(replicas, None)),
        )
        .await
    }

    /// The events stream, created when missing, keeping at most
    /// `per_device` events of each device (beyond them a device's events
    /// are refused, so one device never fills the stream). Every host sets
    /// it: the last to start wins, and says so.
    pub async fn keep_events(&self, per_device: usize) -> Result<(), NatsError> {
        let per_device = i64::try_from(per_device).unwrap_or(i64::MAX);
        let mut stream = self.events_stream().await?;
        let found = stream
            .info()
            .await
            .map_err(|e| NatsError::jetstream(format!("stream {EVENTS_STREAM}"), e))?
            .config
            .clone();
        if found.subjects == [EVENTS_SUBJECTS]
            && found.max_messages_per_subject == per_device
            && found.discard_new_per_subject
        {
            return Ok(());
        }
        if found.max_messages_per_subject != per_device {
            tracing::info!(
                "JetStream stream {EVENTS_STREAM}: {per_device} events per device (was {}), for every host",
                found.max_messages_per_subject
            );
        }
        self.js
            .update_stream(events_config(found.num_replicas, Some(per_device)))
            .await
            .map(drop)
            .map_err(|e| NatsError::jetstream(format!("stream {EVENTS_STREAM}"), e))
    }

    /// The stream of what hosts send devices, created when missing.
    pub async fn to_devices_stream(&self) -> Result<jetstream::stream::Stream, NatsError> {
        made(
            &format!("stream {TO_DEVICES_STREAM}"),
            || self.js.get_stream(TO_DEVICES_STREAM),
            |replicas| {
                self.js.create_stream(jetstream::stream::Config {
                    name: TO_DEVICES_STREAM.to_owned(),
                    subjects: vec![TO_DEVICES_SUBJECTS.to_owned()],
                    // Kept for hosts that were away a moment (a node's
                    // death, a reconnection), not for good: a host that
                    // comes back after longer has lost its devices'
                    // sessions anyway.
                    max_age: TO_DEVICES_KEPT,
                    max_bytes: TO_DEVICES_MAX_BYTES,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
            },
        )
        .await
    }

    /// The shared durable consumer of the events stream, created when
    /// missing; an event a host took and did not acknowledge within
    /// `ack_wait` (nor kept with a progress ack) goes to another host.
    /// The ack wait is the consumer's, shared by every host: one that asks
    /// for another sets it for all (the last to start wins) and says so.
    pub async fn events_consumer(
        &self,
        ack_wait: Duration,
    ) -> Result<jetstream::consumer::PullConsumer, NatsError> {
        let stream = self.events_stream().await?;
        let config = jetstream::consumer::pull::Config {
            durable_name: Some(EVENTS_CONSUMER.to_owned()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait,
            max_ack_pending: MAX_ACK_PENDING,
            ..Default::default()
        };
        let refused = |e: &dyn std::fmt::Display| {
            NatsError::jetstream(format!("consumer {EVENTS_CONSUMER}"), e)
        };
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(EVENTS_CONSUMER, config.clone())
            .await
            .map_err(|e| refused(&e))?;
        let was = consumer.cached_info().config.ack_wait;
        if was == ack_wait {
            return Ok(consumer);
        }
        tracing::info!(
            "JetStream consumer {EVENTS_CONSUMER}: ack wait {} (was {}), for every host",
            humantime::format_duration(ack_wait),
            humantime::format_duration(was)
        );
        stream
            .update_consumer(config)
            .await
            .map_err(|e| refused(&e))
    }

    /// The key-value bucket `name`, created when missing.
    pub async fn bucket(&self, name: &str) -> Result<jetstream::kv::Store, NatsError> {
        made(
            &format!("bucket {name}"),
            || self.js.get_key_value(name),
            |replicas| {
                self.js.create_key_value(jetstream::kv::Config {
                    bucket: name.to_owned(),
                    history: 1,
                    num_replicas: replicas,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
            },
        )
        .await
    }

    /// The object store `name`, created when missing.
    pub async fn objects(
        &self,
        name: &str,
    ) -> Result<jetstream::object_store::ObjectStore, NatsError> {
        made(
            &format!("object store {name}"),
            || self.js.get_object_store(name),
            |replicas| {
                self.js
                    .create_object_store(jetstream::object_store::Config {
                        bucket: name.to_owned(),
                        num_replicas: replicas,
                        storage: jetstream::stream::StorageType::File,
                        ..Default::default()
                    })
            },
        )
        .await
    }
}

/// The events stream's settings, with `per_device` events kept at most
/// for each device.
fn events_config(replicas: usize, per_device: Option<i64>) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: EVENTS_STREAM.to_owned(),
        subjects: vec![EVENTS_SUBJECTS.to_owned()],
        // An event is gone once acknowledged: by then every webhook is
        // done with it.
        retention: jetstream::stream::RetentionPolicy::WorkQueue,
        storage: jetstream::stream::StorageType::File,
        num_replicas: replicas,
        max_messages_per_subject: per_device.unwrap_or(-1),
        discard_new_per_subject: per_device.is_some(),
        discard: if per_device.is_some() {
            jetstream::stream::DiscardPolicy::New
        } else {
            jetstream::stream::DiscardPolicy::Old
        },
        ..Default::default()
    }
}

/// What `get` finds, or else what `create` makes with as many replicas as
/// the cluster takes, 3 at most (a 3-node cluster with a node down, or a
/// smaller one, takes fewer). Several hosts starting at once race to
/// create it: whoever loses finds the winner's.
async fn made<T, E1, E2, G, C>(
    what: &str,
    get: impl Fn() -> G,
    create: impl Fn(usize) -> C,
) -> Result<T, NatsError>
where
    G: Future<Output = Result<T, E1>>,
    C: Future<Output = Result<T, E2>>,
    E2: std::fmt::Display,
{
    if let Ok(found) = get().await {
        return Ok(found);
    }
    let mut refused = String::new();
    for replicas in (1..=MAX_REPLICAS).rev() {
        match create(replicas).await {
            Ok(created) => {
                if replicas < MAX_REPLICAS {
                    tracing::warn!(
                        "JetStream {what}: created with {replicas} replica(s): the cluster took no more ({refused})"
                    );
                }
                return Ok(created);
            }
            Err(err) => refused = err.to_string(),
        }
        if let Ok(found) = get().await {
            return Ok(found);
        }
    }
    Err(NatsError::jetstream(what, refused))
}
