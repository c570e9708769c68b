//! The embedded MQTT broker (rmqtt), run on the host's own tokio runtime.
//!
//! Device events are taken in rmqtt's publish-ACL hook, which runs *before*
//! the broker acknowledges the message: the hook hands the event to the
//! pipeline and waits for its [`Ack`](super::Ack); only then does the PUBACK go out. A
//! dropped ack closes the device's connection without a PUBACK, so the
//! device sends the event again. Malformed or oversized events are refused
//! without closing the connection (a resend would be refused again).
//!
//! Each QoS 1 or 2 event carries its origin (the device's client id and
//! packet id) and DUP flag, so the pipeline acknowledges a device's resend
//! of an event it had stored without delivering it again.
//!
//! Devices' answers to commands (`command-output/…`, `command-done/…`) are
//! caught in the same hook and handed to the command router; they are not
//! events and never reach the pipeline.
//!
//! The host's own messages go straight into the broker's router, not
//! through a client connection, so they never reach the hook.
//!
//! Logins and topics are checked in the broker's own hooks (authenticate,
//! publish ACL, subscribe ACL) by the rules of [`super::acl`]: a refused
//! message is never routed. With `--mqtt-auth devices` a device logs in
//! with its registry key under a client id equal to its id, never takes
//! over a session of another login, and rotating or removing its key
//! closes its sessions.
//!
//! A Will is a publish the broker makes for the client later, past the
//! publish ACL: its topic is checked at CONNECT by the same rules, in
//! every mode, and a connection whose Will the client could not publish is
//! refused. An allowed Will on the device's own events is taken as an event
//! when the broker publishes it.
//!
//! Each device is held to [`DeviceLimits`]: filters per session and a
//! publish rate, refused with MQTT 5's reason code quota exceeded (3.1.1:
//! acknowledged and dropped) and logged at most once a minute per device.
//!
//! The broker's hooks: `publish_hooks` (events, answers, Wills) over the
//! `intake`, `subscribe_hook`, `logins`; `revocations` closes the
//! sessions of revoked keys.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use rmqtt::codec::types::{Publish as CodecPublish, QoS};
use rmqtt::context::{ServerContext, ServerContextBuilder};
use rmqtt::hook::Type;
use rmqtt::net::{Builder, Listener};
use rmqtt::server::MqttServer;
use rmqtt::session::SessionState;
use rmqtt::types::{From, Id, Publish};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

mod intake;
mod logins;
mod publish_hooks;
mod revocations;
mod subscribe_hook;

use super::acl::MqttAuth;
use super::device_limits::{DeviceLimits, Pacer, Shares};
use super::refusals::Refusals;
use super::{Inbound, IngressError};
use crate::event::CommandReply;
use crate::fleet::{Fleet, KeyHash};
use intake::Intake;
use logins::{Live, Logins, Running};
use publish_hooks::{EventHook, WillHook};
use revocations::close_revoked_sessions;
use subscribe_hook::SubscribeHook;

/// How often a stopping host looks whether the devices have everything.
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// QoS 1 messages in flight to one device, awaiting its PUBACK. rmqtt's
/// default (16) throttles a device that triggers many webhooks to 16
/// round trips at a time; MQTT clients allow far more (rumqttc: 100).
const DEVICE_INFLIGHT: std::num::NonZeroU16 = std::num::NonZeroU16::new(128).unwrap();

/// Messages queued for one device beyond those in flight. rmqtt drops what
/// does not fit; its default (1,000) is reached by a device that publishes
/// a few hundred events in a burst (each answered by hook-sent and at least
/// one response chunk). Bounded still: a device that never reads cannot
/// make the broker grow without end.
const DEVICE_QUEUE: usize = 20_000;

/// Listener id of the one listener (rmqtt keys listeners by id).
const LISTENER_ID: u16 = 1;

/// What the embedded broker needs.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest event payload taken.
    pub max_event_bytes: usize,
    /// Who may log in.
    pub auth: MqttAuth,
    /// The registry devices log in with.
    pub fleet: Arc<Fleet>,
    /// The operator's password: the API token.
    pub operator_token: Arc<str>,
    /// Where devices' answers to commands go.
    pub replies: mpsc::Sender<CommandReply>,
    /// What the broker refused, counted.
    pub refusals: Arc<Refusals>,
    /// What each device may hold and send.
    pub limits: DeviceLimits,
}

/// A running embedded broker.
#[derive(Clone)]
pub struct Handle {
    scx: ServerContext,
    /// What the login hook reads, cleared at shutdown: the hook lives in
    /// the broker, which outlives the host (its tasks hold it), and holding
    /// the registry for good would keep its file locked after the host
    /// stops.
    running: Running,
    addr: SocketAddr,
    /// The id the host's own messages are sent under.
    from: Id,
    server: Arc<JoinHandle<()>>,
    /// Closes the sessions of revoked keys.
    revoker: Arc<JoinHandle<()>>,
    /// The device limits a reload changes.
    tunable: Arc<Tunable>,
}

/// The device limits in force that a reload changes, where the hooks read
/// them: the publish rate and the filters per session. A device's share
/// of the queue is not among them: on a cluster it is a property of the
/// shared stream, set when the first host made it.
struct Tunable {
    intake: Arc<Intake>,
    max_subscriptions: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Starts the broker; returns once it listens.
pub async fn start(
    opts: EmbeddedOptions,
    inbound: mpsc::Sender<Inbound>,
) -> Result<Handle, IngressError> {
    let listen_error = |reason: String| IngressError::Listen {
        addr: opts.listen,
        reason,
    };
    let scx = ServerContextBuilder::new()
        .task_exec_workers(64)
        // rmqtt's own overload guard refuses logins ("server unavailable")
        // while the machine's CPU is above 90 % or its load average above
        // 80: at full load, or in a reconnect storm, devices were turned
        // away by a figure that is not theirs. The host's own limits hold
        // instead (the handshakes at once, per device, the queue).
        .busy_check_enable(false)
        .build()
        .await;
    let running = Running::default();
    running.store(Some(Arc::new(Live {
        scx: scx.clone(),
        fleet: opts.fleet.clone(),
    })));
    let tunable = register_hooks(&scx, &opts, inbound, &running).await;
    let listener = listener(&opts).map_err(|e| listen_error(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| listen_error(e.to_string()))?;
    let server = MqttServer::new(scx.clone())
        .listener_by_id(listener, LISTENER_ID)
        .build();
    let revoker = tokio::spawn(close_revoked_sessions(
        scx.clone(),
        opts.fleet.revocations(),
    ));
    let task = tokio::spawn(async move {
        if let Err(err) = server.run().await {
            tracing::error!("embedded MQTT broker stopped: {err}");
        }
    });
    let from = Id::new(
        scx.node.id(),
        LISTENER_ID,
        Some(addr),
        None,
        "edgehook".into(),
        None,
    );
    Ok(Handle {
        scx,
        running,
        addr,
        from,
        server: Arc::new(task),
        revoker: Arc::new(revoker),
        tunable: Arc::new(tunable),
    })
}

/// Registers the broker's hooks: events and answers (published, and from
/// Wills), logins, subscriptions; what of their limits a reload changes.
async fn register_hooks(
    scx: &ServerContext,
    opts: &EmbeddedOptions,
    inbound: mpsc::Sender<Inbound>,
    running: &Running,
) -> Tunable {
    let register = scx.extends.hook_mgr().register();
    let intake = Arc::new(Intake {
        inbound,
        replies: opts.replies.clone(),
        max_event_bytes: opts.max_event_bytes,
        pacer: Pacer::new(opts.limits.publish_rate),
        shares: Shares::new(opts.limits.max_queued),
        refusals: opts.refusals.clone(),
    });
    register
        .add(
            Type::MessagePublishCheckAcl,
            Box::new(EventHook {
                intake: intake.clone(),
                auth: opts.auth,
            }),
        )
        .await;
    register
        .add(
            Type::MessagePublish,
            Box::new(WillHook {
                intake: intake.clone(),
            }),
        )
        .await;
    let max_subscriptions = Arc::new(AtomicUsize::new(opts.limits.max_subscriptions));
    let logins = Logins {
        auth: opts.auth,
        operator: KeyHash::of(opts.operator_token.as_bytes()),
        running: running.clone(),
        refusals: opts.refusals.clone(),
    };
    register
        .add(Type::ClientAuthenticate, Box::new(logins))
        .await;
    register
        .add(
            Type::ClientSubscribeCheckAcl,
            Box::new(SubscribeHook {
                auth: opts.auth,
                max_subscriptions: max_subscriptions.clone(),
                refusals: opts.refusals.clone(),
            }),
        )
        .await;
    register.start().await;
    Tunable {
        intake,
        max_subscriptions,
    }
}

/// Connections the kernel holds for the broker before it accepts them.
const LISTEN_BACKLOG: i32 = 4096;

/// Logins handled at once; the others wait their turn in the accept
/// queue. rmqtt's default of 1,000 lets a reconnect storm put that many
/// handshakes on the runtime ahead of the events of devices already
/// connected; 128 still takes 18,000 devices back in about 13 s here
/// (32 measured no different: docs/performance.md).
const MAX_HANDSHAKES: usize = 128;

/// The one TCP listener, bound.
fn listener(opts: &EmbeddedOptions) -> rmqtt::Result<Listener> {
    // Room for the MQTT header and topic beside the largest payload, so an
    // oversized event reaches the hook and is refused with a log line.
    let max_packet =
        u32::try_from(opts.max_event_bytes.saturating_add(64 << 10)).unwrap_or(u32::MAX);
    Builder::new()
        .name("tcp")
        .laddr(opts.listen)
        .max_packet_size(max_packet)
        .max_inflight(DEVICE_INFLIGHT)
        .max_mqueue_len(DEVICE_QUEUE)
        // A PUBACK, hook-sent and a response go out as small writes one
        // after another: with Nagle each waits for the device's delayed
        // ACK (40 ms), which was the whole latency at light load.
        .nodelay(true)
        // Every login goes through the hook, anonymous ones too: it checks
        // Wills in open mode as well.
        .allow_anonymous(false)
        // A restarted host binds again while its last connections are in
        // TIME_WAIT.
        .reuseaddr(Some(true))
        // Devices reconnecting all at once (after a restart, a network
        // outage) overflowed rmqtt's default of 512 pending connections:
        // the kernel dropped their SYNs and each one waited for its
        // retransmission (1 s, 3 s, 7 s, …). The kernel caps this at
        // net.core.somaxconn.
        .backlog(LISTEN_BACKLOG)
        .max_handshaking_limit(MAX_HANDSHAKES)
        .bind()
        .and_then(|l| l.tcp())
}

impl Handle {
    /// Holds devices to `limits` from their next publish and subscription
    /// on (all but `max_queued`, which needs a restart).
    pub fn set_limits(&self, limits: &DeviceLimits) {
        self.tunable.intake.pacer.set_rate(limits.publish_rate);
        self.tunable
            .max_subscriptions
            .store(limits.max_subscriptions, Ordering::Relaxed);
    }

    /// The address the broker listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Publishes to the broker's subscribers with QoS 1.
    pub async fn publish(&self, topic: String, payload: Bytes) -> Result<(), IngressError> {
        let publish = CodecPublish {
            dup: false,
            retain: false,
            qos: QoS::AtLeastOnce,
            topic: topic.as_str().into(),
            packet_id: None,
            payload,
            properties: None,
        };
        let publish = Publish::new(
            Box::new(publish),
            None,
            None,
            Some(rmqtt::utils::timestamp_millis()),
        );
        SessionState::forwards(
            &self.scx,
            From::from_system(self.from.clone()),
            publish,
            false,
            None,
        )
        .await
        .map_err(|e| IngressError::Publish {
            topic,
            reason: e.to_string(),
        })
    }

    /// Waits, until `deadline` at most, for the connected devices to
    /// acknowledge what the broker holds for them: a host that stops right
    /// after its last delivery still gets the answers out.
    pub async fn settle(&self, deadline: tokio::time::Instant) {
        loop {
            let mut owed = 0;
            for entry in self.scx.extends.shared().await.iter() {
                let Some(session) = entry.session() else {
                    continue;
                };
                if entry.is_connected().await {
                    owed +=
                        session.deliver_queue().len() + session.out_inflight().read().await.len();
                }
            }
            if owed == 0 || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }

    /// Stops accepting connections.
    pub async fn shutdown(&self) {
        self.server.abort();
        self.revoker.abort();
        self.running.store(None);
    }
}

#[cfg(test)]
mod tests;
