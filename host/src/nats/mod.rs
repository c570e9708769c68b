//! Several hosts on NATS JetStream (README "Running several hosts" and
//! ARCHITECTURE "Several hosts"): the connection, and what the hosts share
//! through it.
//!
//! Devices log in to the hosts' own embedded brokers, with the rules of a
//! single host; NATS is only the hosts' ([`auth`]):
//! - [`intake`]: what a host's broker takes from its devices goes into the
//!   replicated stream [`EVENTS_STREAM`] before the device gets its
//!   PUBACK;
//! - [`events`]: every host pulls those events from one shared durable
//!   consumer; each is acknowledged to JetStream only when every matching
//!   webhook is done with it ([`held::Held`]), so a dead host's events go
//!   to the others;
//! - [`to_devices`]: what hosts send devices goes through the stream
//!   [`TO_DEVICES_STREAM`], which every host relays into its own broker,
//!   and devices' answers to commands through [`COMMAND_REPLIES`] to every
//!   host ([`command_replies`]).
//! - [`shared`]: webhook definitions of every dialect and the device
//!   registry, in the key-value buckets [`DEFINITIONS_BUCKET`] and
//!   [`REGISTRY_BUCKET`], watched by every host.
//! - [`trips`]: webhooks disabled after failures in a row, disabled on
//!   every host.
//! - [`plugins`]: plugin files in the object store [`PLUGINS_BUCKET`],
//!   copied into each host's plugins directory, where the directory's own
//!   hot reload takes them.
//!
//! - [`followers`]: the tasks that apply every host's changes here.
//! - [`auth`]: the hosts' login to NATS and the servers' certificates.
//!
//! The stream, the consumer and the buckets are created by the first host
//! that finds them missing, with `min(3, nodes)` replicas ([`made`]).

pub mod auth;
pub mod command_replies;
pub mod events;
pub mod followers;
pub mod held;
pub mod intake;
pub mod plugins;
pub mod shared;
pub mod to_devices;
pub mod trips;

use std::time::Duration;

use async_nats::jetstream;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use auth::NatsAuth;

use crate::stores::{Backlog, Cluster};

/// The stream of device events.
pub const EVENTS_STREAM: &str = "EDGEHOOK_EVENTS";
/// Its subjects: one per device ([`device_subject`]), so that the stream
/// keeps each device's share.
pub const EVENTS_SUBJECTS: &str = "edgehook.events.*";
/// The stream of what hosts send devices.
pub const TO_DEVICES_STREAM: &str = "EDGEHOOK_TO_DEVICES";
/// Its subjects: one per device.
pub const TO_DEVICES_SUBJECTS: &str = "edgehook.to-devices.*";
/// Where devices' answers to commands go to every host.
pub const COMMAND_REPLIES: &str = "edgehook.command-replies";
/// The header that carries a message's MQTT topic.
pub const TOPIC_HEADER: &str = "Edgehook-Topic";
/// The durable consumer every host pulls from.
pub const EVENTS_CONSUMER: &str = "edgehook";
/// Webhook definitions of every dialect.
pub const DEFINITIONS_BUCKET: &str = "EDGEHOOK_DEFINITIONS";
/// The device registry: groups and devices.
pub const REGISTRY_BUCKET: &str = "EDGEHOOK_REGISTRY";
/// Plugin files.
pub const PLUGINS_BUCKET: &str = "EDGEHOOK_PLUGINS";

/// Events handed out and not yet acknowledged, over every host: beyond
/// this JetStream hands out no more until some are done.
const MAX_ACK_PENDING: i64 = 20_000;

/// Replicas of what the hosts create: any one node may die.
const MAX_REPLICAS: usize = 3;

/// How long what hosts send devices stays in [`TO_DEVICES_STREAM`].
const TO_DEVICES_KEPT: Duration = Duration::from_secs(10 * 60);

/// The most [`TO_DEVICES_STREAM`] holds; the oldest go first.
const TO_DEVICES_MAX_BYTES: i64 = 256 * 1024 * 1024;

/// How long start-up waits for the first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a write JetStream does not take is tried again before it
/// fails: a node's death makes a leader's election, and a stream or
/// bucket just created is not yet known to every server (its subjects
/// have no responders there), each for seconds.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Why the NATS side cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// No server of the list could be reached.
    #[error("NATS {urls}: {reason}")]
    Connect {
        /// The URLs as given (passwords masked).
        urls: String,
        /// What went wrong.
        reason: String,
    },
    /// A file of the login or of TLS cannot be used.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// A server refused the login or its certificate was not trusted:
    /// trying again will not help.
    #[error("NATS {urls}: {reason}")]
    Refused {
        /// The URLs as given (passwords masked).
        urls: String,
        /// What the server or the TLS check said, and what to look at.
        reason: String,
    },
    /// JetStream refused to create or open something.
    #[error("JetStream {what}: {reason}")]
    JetStream {
        /// The stream, consumer or bucket.
        what: String,
        /// What the server said.
        reason: String,
    },
}

impl NatsError {
    fn jetstream(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::JetStream {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// What a device id may not hold in a subject token: the separator, the
/// wildcards, white space, the escape itself; anything not ASCII too, so
/// that tokens stay readable in `nats` tools.
const NOT_IN_TOKEN: &AsciiSet = &CONTROLS.add(b' ').add(b'.').add(b'*').add(b'>').add(b'%');

/// `prefix` (ending in `.`) followed by `device` as one subject token.
pub fn device_subject(prefix: &str, device: &str) -> String {
    let mut subject = String::with_capacity(prefix.len() + device.len());
    subject.push_str(prefix);
    subject.extend(utf8_percent_encode(device, NOT_IN_TOKEN));
    subject
}

/// The MQTT topic a message carries in [`TOPIC_HEADER`]; empty when it
/// carries none.
pub fn topic_in(headers: Option<&async_nats::HeaderMap>) -> &str {
    headers
        .and_then(|h| h.get(TOPIC_HEADER))
        .map_or("", |t| t.as_str())
}

/// A connection to the NATS cluster, cheap to clone.
#[derive(Debug, Clone)]
pub struct Nats {
    client: async_nats::Client,
    js: jetstream::Context,
}

impl Nats {
    /// Connects to any server of `urls` as `auth` says; the client moves
    /// to another one when its server goes away. Servers that cannot be
    /// reached are tried again for [`CONNECT_TIMEOUT`]; a refused login or
    /// an untrusted certificate fails at once.
    pub async fn connect(urls: &[String], auth: &NatsAuth) -> Result<Self, NatsError> {
        let mut userinfo = None;
        let bare: Vec<String> = urls
            .iter()
            .map(|u| {
                let (bare, info) = auth::split_userinfo(u);
                userinfo = userinfo.take().or(info);
                bare
            })
            .collect();
        let shown = urls
            .iter()
            .map(|u| crate::secrets::url(u).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        let loaded = auth.load(userinfo)?;
        let fail = |reason: String| NatsError::Connect {
            urls: shown.clone(),
            reason,
        };
        let addrs = bare
            .iter()
            .map(|u| u.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        let client = loop {
            let options = async_nats::ConnectOptions::new()
                .name("edgehook")
                .connection_timeout(CONNECT_TIMEOUT)
                .event_callback(|event| async move {
                    match event {
                        async_nats::Event::Disconnected => tracing::warn!("NATS: disconnected"),
                        async_nats::Event::Connected => tracing::info!("NATS: connected"),
                        other => tracing::debug!("NATS: {other}"),
                    }
                });
            let options = loaded.apply(options).map_err(|e| fail(e.to_string()))?;
            let err = match options.connect(addrs.clone()).await {
                Ok(client) => break client,
                Err(err) => err,
            };
            if let Some(reason) = refusal(&err) {
                return Err(NatsError::Refused {
                    urls: shown,
                    reason,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(fail(format!(
                    "no server answered within {} s ({err})",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let js = jetstream::new(client.clone());
        Ok(Self { client, js })
    }

    /// Whether the connection to a server is up, for `/healthz`.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

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

/// What to say when `err` will not go away by trying again: the login was
/// refused, or TLS failed (the server's certificate not trusted, TLS
/// required by one side only); `None` for a server that could not be
/// reached.
fn refusal(err: &async_nats::ConnectError) -> Option<String> {
    use async_nats::ConnectErrorKind as Kind;
    if err.to_string().contains("CertificateRequired") {
        return Some(format!(
            "{err}: TLS failed: the server asks for a client certificate: give nats_tls_cert and nats_tls_key"
        ));
    }
    let hint = match err.kind() {
        Kind::AuthorizationViolation => {
            "the server refused the login: check the user and password of nats_url, or nats_user and nats_password_file, nats_token_file, nats_nkey, nats_creds"
        }
        Kind::Authentication => "the nkey or credentials could not sign the server's challenge",
        Kind::Tls => {
            "TLS failed: nats_ca_file must be the CA that signed the servers' certificates"
        }
        Kind::Io if tls_refused(err) => {
            "TLS failed: nats_ca_file must be the CA that signed the servers' certificates"
        }
        _ => return None,
    };
    Some(format!("{err}: {hint}"))
}

/// Whether the I/O error under `err` is one of rustls (a handshake that
/// failed, e.g. an unknown issuer).
fn tls_refused(err: &async_nats::ConnectError) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| inner.is::<async_nats::rustls::Error>())
}

/// What `write` (or a read that may be tried again) gives once it
/// succeeds, or its error when `lasting` says trying again will not help or
/// when [`PATIENCE`] has passed.
pub async fn patiently<T, E, F, W>(mut write: W, lasting: impl Fn(&E) -> bool) -> Result<T, E>
where
    W: FnMut() -> F,
    F: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut backoff = Duration::from_millis(100);
    loop {
        match write().await {
            Err(err) if !lasting(&err) && tokio::time::Instant::now() + backoff < deadline => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            done => return done,
        }
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

#[async_trait::async_trait]
impl Cluster for Nats {
    fn is_connected(&self) -> bool {
        Nats::is_connected(self)
    }

    /// The shared consumer's numbers: events not yet handed to any host,
    /// handed out and not acknowledged, and handed out again; `None` when
    /// JetStream does not answer.
    async fn backlog(&self) -> Option<Backlog> {
        let ask = async {
            let mut consumer: jetstream::consumer::PullConsumer = self
                .js
                .get_consumer_from_stream(EVENTS_CONSUMER, EVENTS_STREAM)
                .await
                .ok()?;
            let info = consumer.info().await.ok()?;
            Some(Backlog {
                pending: info.num_pending,
                ack_pending: info.num_ack_pending as u64,
                redelivered: info.num_redelivered as u64,
            })
        };
        tokio::time::timeout(Duration::from_secs(2), ask)
            .await
            .ok()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::device_subject;

    #[test]
    fn a_device_id_is_one_subject_token_and_can_never_be_a_wildcard() {
        let prefix = "edgehook.events.";
        assert_eq!(device_subject(prefix, "press-7"), "edgehook.events.press-7");
        for (id, token) in [
            ("a.b", "a%2Eb"),
            ("*", "%2A"),
            (">", "%3E"),
            ("two words", "two%20words"),
            ("100%", "100%25"),
            ("capteur-é", "capteur-%C3%A9"),
        ] {
            assert_eq!(
                device_subject(prefix, id),
                format!("{prefix}{token}"),
                "{id}"
            );
        }
        assert_ne!(
            device_subject(prefix, "a.b"),
            device_subject(prefix, "a%2Eb"),
            "two devices never share a subject"
        );
    }
}
