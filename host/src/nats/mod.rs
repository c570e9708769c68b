//! Several hosts on NATS JetStream (CONTRACT section 11): the connection,
//! and what the hosts share through it.
//!
//! - [`events`]: device events, captured from the NATS MQTT listener's
//!   subjects by the replicated stream [`EVENTS_STREAM`] and pulled by
//!   every host from one shared durable consumer; each is acknowledged to
//!   JetStream only when every matching webhook is done with it
//!   ([`held::Held`]), so a dead host's events go to the others.
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
pub mod events;
pub mod followers;
pub mod held;
pub mod plugins;
pub mod shared;
pub mod trips;

use std::time::Duration;

use async_nats::jetstream;

use auth::{NatsAuth, Secret};

/// The stream of device events.
pub const EVENTS_STREAM: &str = "EDGEHOOK_EVENTS";
/// The subjects NATS gives device events (`devices/+/events/#`).
pub const EVENTS_SUBJECTS: &str = "devices.*.events.>";
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

/// How long start-up waits for the first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The shared consumer's numbers, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Events in the stream not yet handed to any host.
    pub pending: u64,
    /// Events handed to a host and not yet acknowledged.
    pub ack_pending: u64,
    /// Events handed out more than once and not yet acknowledged.
    pub redelivered: u64,
}

/// A connection to the NATS cluster, cheap to clone.
#[derive(Debug, Clone)]
pub struct Nats {
    client: async_nats::Client,
    js: jetstream::Context,
    /// The user and password the host's MQTT connections log in with.
    mqtt_login: Option<(String, Secret)>,
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
        let mqtt_login = loaded
            .mqtt_login()
            .map(|(user, password)| (user.to_owned(), password.clone()));
        Ok(Self {
            client,
            js,
            mqtt_login,
        })
    }

    /// `url`, an MQTT listener of a node, with the host's NATS user and
    /// password as its login unless it names its own.
    pub fn mqtt_url(&self, url: &str) -> String {
        match &self.mqtt_login {
            Some((user, password)) => auth::with_login(url, user, password),
            None => url.to_owned(),
        }
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
            |replicas| {
                self.js.create_stream(jetstream::stream::Config {
                    name: EVENTS_STREAM.to_owned(),
                    subjects: vec![EVENTS_SUBJECTS.to_owned()],
                    // An event is gone once acknowledged: by then every
                    // webhook is done with it.
                    retention: jetstream::stream::RetentionPolicy::WorkQueue,
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

    /// The shared consumer's numbers: events not yet handed to any host,
    /// handed out and not acknowledged, and handed out again; `None` when
    /// JetStream does not answer.
    pub async fn backlog(&self) -> Option<Backlog> {
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

/// What to say when `err` will not go away by trying again: the login was
/// refused, or TLS failed (the server's certificate not trusted, TLS
/// required by one side only); `None` for a server that could not be
/// reached.
fn refusal(err: &async_nats::ConnectError) -> Option<String> {
    use async_nats::ConnectErrorKind as Kind;
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
