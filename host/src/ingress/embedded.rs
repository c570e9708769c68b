//! The embedded MQTT broker (rmqtt), run on the host's own tokio runtime.
//!
//! Device events are taken in rmqtt's publish-ACL hook, which runs *before*
//! the broker acknowledges the message: the hook hands the event to the
//! pipeline and waits for its [`Ack`]; only then does the PUBACK go out. A
//! dropped ack closes the device's connection without a PUBACK, so the
//! device sends the event again. Malformed or oversized events are refused
//! without closing the connection (a resend would be refused again).
//!
//! The host's own messages go straight into the broker's router, not
//! through a client connection, so they never reach the hook.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rmqtt::codec::types::{Publish as CodecPublish, QoS};
use rmqtt::context::{ServerContext, ServerContextBuilder};
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;
use rmqtt::session::SessionState;
use rmqtt::types::{From, Id, Publish, PublishAclResult};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Ack, Inbound, IngressError};
use crate::event::Event;
use crate::topic::{is_event_topic, parse_event_topic};

/// Listener id of the one listener (rmqtt keys listeners by id).
const LISTENER_ID: u16 = 1;

/// What the embedded broker needs.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest event payload taken.
    pub max_event_bytes: usize,
}

/// A running embedded broker.
#[derive(Clone)]
pub struct Handle {
    scx: ServerContext,
    addr: SocketAddr,
    /// The id the host's own messages are sent under.
    from: Id,
    server: Arc<JoinHandle<()>>,
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
        .build()
        .await;
    let register = scx.extends.hook_mgr().register();
    register
        .add(
            Type::MessagePublishCheckAcl,
            Box::new(EventHook {
                inbound,
                max_event_bytes: opts.max_event_bytes,
            }),
        )
        .await;
    register.start().await;

    // Room for the MQTT header and topic beside the largest payload, so an
    // oversized event reaches the hook and is refused with a log line.
    let max_packet =
        u32::try_from(opts.max_event_bytes.saturating_add(64 << 10)).unwrap_or(u32::MAX);
    let listener = Builder::new()
        .name("tcp")
        .laddr(opts.listen)
        .max_packet_size(max_packet)
        .allow_anonymous(true)
        .bind()
        .and_then(|l| l.tcp())
        .map_err(|e| listen_error(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| listen_error(e.to_string()))?;
    let server = MqttServer::new(scx.clone())
        .listener_by_id(listener, LISTENER_ID)
        .build();
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
        addr,
        from,
        server: Arc::new(task),
    })
}

impl Handle {
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

    /// Stops accepting connections.
    pub async fn shutdown(&self) {
        self.server.abort();
    }
}

/// The publish-ACL hook that takes device events.
struct EventHook {
    inbound: mpsc::Sender<Inbound>,
    max_event_bytes: usize,
}

fn verdict(result: PublishAclResult) -> ReturnType {
    (false, Some(HookResult::PublishAclResult(result)))
}

#[async_trait::async_trait]
impl Handler for EventHook {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        let Parameter::MessagePublishCheckAcl(session, publish) = param else {
            return (true, acc);
        };
        let topic: &str = &publish.topic;
        if !is_event_topic(topic) {
            return (true, acc);
        }
        let client = &session.id.client_id;
        let refuse = |reason: String| {
            tracing::warn!(client = %client, topic, "event refused: {reason}");
            verdict(PublishAclResult::rejected(false, Some(reason.into())))
        };
        let (device, name) = match parse_event_topic(topic) {
            Ok(parsed) => parsed,
            Err(err) => return refuse(err.to_string()),
        };
        if publish.payload.len() > self.max_event_bytes {
            return refuse(format!(
                "payload of {} bytes exceeds max_event_bytes {}",
                publish.payload.len(),
                self.max_event_bytes
            ));
        }
        let (tx, rx) = oneshot::channel();
        let event = Event::received(device, name, publish.payload.clone());
        let not_taken = || {
            verdict(PublishAclResult::rejected(
                true,
                Some("not taken; send it again".into()),
            ))
        };
        if self
            .inbound
            .send(Inbound {
                event,
                ack: Ack::embedded(tx),
            })
            .await
            .is_err()
        {
            return not_taken();
        }
        match rx.await {
            Ok(()) => verdict(PublishAclResult::allow()),
            Err(_) => not_taken(),
        }
    }
}
