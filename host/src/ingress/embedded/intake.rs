//! The embedded broker's subscribe and publish hooks: which filters a
//! client may hold and how many, who may publish where, and the intake of
//! devices' events and answers, published or from their Wills, within
//! each device's rate and share of the queue.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rmqtt::codec::types::{MQTT_LEVEL_5, QoS};
use rmqtt::codec::v5::{PublishAckReason, SubscribeAckReason};
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::{FromType, PublishAclResult, PublishResult, SubscribeAclResult};
use tokio::sync::{mpsc, oneshot};

use super::logins::who;
use crate::event::{CommandReply, Event};
use crate::ingress::acl::{self, MqttAuth, Who};
use crate::ingress::device_limits::{Pacer, Shares};
use crate::ingress::refusals::{Refusals, Refused};
use crate::ingress::{Ack, Inbound, Refusal};
use crate::origin::{Origin, Sent};
use crate::topic::{
    is_command_reply_topic, is_event_topic, parse_command_reply_topic, parse_event_topic,
};

/// The subscribe-ACL hook: which filters a client may hold, and how many.
pub(super) struct SubscribeHook {
    pub(super) auth: MqttAuth,
    pub(super) max_subscriptions: usize,
    pub(super) refusals: Arc<Refusals>,
}

fn subscribe_refusal(reason: SubscribeAckReason) -> ReturnType {
    let failure = SubscribeAclResult::new_failure(reason);
    (false, Some(HookResult::SubscribeAclResult(failure)))
}

#[async_trait::async_trait]
impl Handler for SubscribeHook {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        let Parameter::ClientSubscribeCheckAcl(session, subscribe) = param else {
            return (true, acc);
        };
        let filter: &str = &subscribe.topic_filter;
        let client = session.id.client_id.escape_debug();
        let who = who(self.auth, session.id.username.as_deref());
        if let Err(refusal) = acl::may_subscribe(who, filter) {
            self.refusals.count(Refused::SubscribeForbidden);
            tracing::warn!(
                "subscription refused: {refusal} (client {client}, filter {})",
                filter.escape_debug()
            );
            return subscribe_refusal(SubscribeAckReason::NotAuthorized);
        }
        if who != Who::Operator {
            let held = match session.subscriptions().await {
                Ok(subs) => {
                    let subs = subs.read().await;
                    (!subs.contains_key(filter)).then_some(subs.len())
                }
                Err(err) => {
                    tracing::warn!(
                        "subscription refused: cannot count the session's: {err} (client {client})"
                    );
                    return subscribe_refusal(SubscribeAckReason::UnspecifiedError);
                }
            };
            if held.is_some_and(|n| n >= self.max_subscriptions) {
                self.refusals.count(Refused::SubscribeQuota);
                tracing::warn!(
                    "subscription refused: the session holds {} filters already, the most a device may (client {client}, filter {})",
                    self.max_subscriptions,
                    filter.escape_debug()
                );
                return subscribe_refusal(SubscribeAckReason::QuotaExceeded);
            }
        }
        (true, acc)
    }
}

/// What a device's message on one of its device → host topics is.
enum Message {
    /// An event, for the pipeline.
    Event(Event),
    /// An answer to a command, for the command router.
    Reply(CommandReply),
}

/// Why a device's message is not taken.
enum NotTaken {
    /// Malformed or oversized: dropped (a resend would be refused again).
    Refused(String),
    /// Over the device's publish rate: dropped.
    TooFast { log: bool },
}

/// Takes devices' messages, published or from their Wills.
pub(super) struct Intake {
    pub(super) inbound: mpsc::Sender<Inbound>,
    pub(super) replies: mpsc::Sender<CommandReply>,
    pub(super) max_event_bytes: usize,
    pub(super) pacer: Pacer,
    pub(super) shares: Arc<Shares>,
    pub(super) refusals: Arc<Refusals>,
}

impl Intake {
    /// What `payload` on `topic` is for the host, if anything: `None` for
    /// a topic that is neither an event nor an answer (routed to
    /// subscribers only).
    fn read(&self, topic: &str, payload: &Bytes) -> Option<Result<Message, NotTaken>> {
        let message = if is_command_reply_topic(topic) {
            parse_command_reply_topic(topic).map(|(device, kind, request_id)| {
                Message::Reply(CommandReply {
                    device,
                    request_id,
                    kind,
                    payload: payload.clone(),
                })
            })
        } else if is_event_topic(topic) {
            parse_event_topic(topic).map(|(device, name)| {
                Message::Event(Event::received(device, name, payload.clone()))
            })
        } else {
            return None;
        };
        let message = match message {
            Ok(message) => message,
            Err(err) => return Some(Err(NotTaken::Refused(err.to_string()))),
        };
        if let Some(why) = crate::ingress::oversized(payload, self.max_event_bytes) {
            return Some(Err(NotTaken::Refused(why)));
        }
        let device = match &message {
            Message::Event(event) => event.device.as_str(),
            Message::Reply(reply) => reply.device.as_str(),
        };
        if let Err(too_fast) = self.pacer.take(device, Instant::now()) {
            return Some(Err(NotTaken::TooFast { log: too_fast.log }));
        }
        Some(Ok(message))
    }

    /// Hands an answer to the command router.
    async fn reply(&self, reply: CommandReply) {
        // The router never waits on a reader, so this waits only while a
        // burst of answers is being routed: the device feels it.
        if self.replies.send(reply).await.is_err() {
            tracing::debug!("the host is stopping; answer dropped");
        }
    }

    /// Counts and logs a message not taken.
    fn log(&self, client: &str, topic: &str, not_taken: &NotTaken) {
        self.refusals.count(match not_taken {
            NotTaken::Refused(_) => Refused::PublishMalformed,
            NotTaken::TooFast { .. } => Refused::PublishRate,
        });
        let (client, topic) = (client.escape_debug(), topic.escape_debug());
        match not_taken {
            NotTaken::Refused(why) => {
                tracing::warn!(
                    "event refused: {} (client {client}, topic {topic})",
                    why.escape_debug()
                );
            }
            NotTaken::TooFast { log: true } => {
                tracing::warn!(
                    "events refused: over the device's publish rate; said once a minute (client {client}, topic {topic})"
                );
            }
            NotTaken::TooFast { log: false } => {}
        }
    }
}

/// The publish-ACL hook: checks who may publish where, and takes device
/// events and answers.
pub(super) struct EventHook {
    pub(super) intake: Arc<Intake>,
    pub(super) auth: MqttAuth,
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
        let client: &str = &session.id.client_id;
        let who = who(self.auth, session.id.username.as_deref());
        if let Err(refusal) = acl::may_publish(who, topic) {
            self.intake.refusals.count(Refused::PublishForbidden);
            tracing::warn!(
                "publish refused: {refusal} (client {}, topic {})",
                client.escape_debug(),
                topic.escape_debug()
            );
            return verdict(PublishAclResult::rejected(
                false,
                Some(refusal.to_string().into()),
            ));
        }
        let event = match self.intake.read(topic, &publish.payload) {
            None => return (true, acc),
            Some(Ok(Message::Reply(reply))) => {
                self.intake.reply(reply).await;
                return (true, acc);
            }
            Some(Ok(Message::Event(event))) => event,
            Some(Err(not_taken)) => {
                self.intake.log(client, topic, &not_taken);
                let (code, reason) = match not_taken {
                    NotTaken::Refused(why) => (PublishAckReason::NotAuthorized, why),
                    // MQTT 5 has no "message rate too high" for PUBACK
                    // (0x96 is a DISCONNECT reason): quota exceeded is.
                    NotTaken::TooFast { .. } => (
                        PublishAckReason::QuotaExceeded,
                        "over the device's publish rate".into(),
                    ),
                };
                let result = PublishResult::reason_code(code, Some(reason.into()), false);
                return verdict(PublishAclResult(result));
            }
        };
        let Some(share) = self.intake.shares.admit(&event.device) else {
            return self
                .over_share(session, client, topic, event.device.as_str())
                .await;
        };
        let device = event.device.clone();
        let (tx, rx) = oneshot::channel();
        let sent = publish
            .packet_id
            .filter(|_| publish.qos != QoS::AtMostOnce)
            .map(|id| Sent::new(Origin::device(client, id.get()), publish.dup, &event));
        let not_taken = || {
            verdict(PublishAclResult::rejected(
                true,
                Some("not taken; send it again".into()),
            ))
        };
        if self
            .intake
            .inbound
            .send(Inbound {
                event,
                ack: Ack::embedded(tx),
                sent,
                claim: None,
                share,
            })
            .await
            .is_err()
        {
            return not_taken();
        }
        match rx.await {
            Ok(Ok(())) => verdict(PublishAclResult::allow()),
            Ok(Err(Refusal::Share)) => {
                self.over_share(session, client, topic, device.as_str())
                    .await
            }
            Err(_) => not_taken(),
        }
    }
}

impl EventHook {
    /// Refuses an event of a device that holds its share of the queue:
    /// MQTT 5 says why; a 3.1.1 device gets no PUBACK and sends the event
    /// again once its connection is back.
    async fn over_share(
        &self,
        session: &rmqtt::session::Session,
        client: &str,
        topic: &str,
        device: &str,
    ) -> ReturnType {
        self.intake.refusals.count(Refused::PublishShare);
        if self.intake.pacer.may_warn(device, Instant::now()) {
            tracing::warn!(
                "events refused: the device holds its share of the queue; said once a minute (client {}, topic {})",
                client.escape_debug(),
                topic.escape_debug()
            );
        }
        let v5 = session
            .connect_info()
            .await
            .is_ok_and(|c| c.proto_ver() == MQTT_LEVEL_5);
        let reason = "the device holds its share of the queue; send it again later";
        let result = if v5 {
            PublishResult::reason_code(PublishAckReason::QuotaExceeded, Some(reason.into()), false)
        } else {
            PublishAclResult::rejected(true, Some(reason.into())).pub_res()
        };
        verdict(PublishAclResult(result))
    }
}

/// Takes a Will the broker publishes for a gone client: its topic was
/// allowed at CONNECT, so on the device's own events it is an event like
/// any other (nobody is left to acknowledge it).
pub(super) struct WillHook {
    pub(super) intake: Arc<Intake>,
}

#[async_trait::async_trait]
impl Handler for WillHook {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        let Parameter::MessagePublish(_, from, publish) = param else {
            return (true, acc);
        };
        if !matches!(from.typ(), FromType::LastWill) {
            return (true, acc);
        }
        let topic: &str = &publish.topic;
        match self.intake.read(topic, &publish.payload) {
            None => {}
            Some(Ok(Message::Reply(reply))) => self.intake.reply(reply).await,
            Some(Ok(Message::Event(event))) => {
                let Some(share) = self.intake.shares.admit(&event.device) else {
                    tracing::warn!(
                        "a Will dropped: the device holds its share of the queue (client {}, topic {})",
                        from.id.client_id.escape_debug(),
                        topic.escape_debug()
                    );
                    return (true, acc);
                };
                let inbound = Inbound {
                    event,
                    ack: Ack::none(),
                    sent: None,
                    claim: None,
                    share,
                };
                if self.intake.inbound.send(inbound).await.is_err() {
                    tracing::debug!("the host is stopping; a Will dropped");
                }
            }
            Some(Err(not_taken)) => self.intake.log(&from.id.client_id, topic, &not_taken),
        }
        (true, acc)
    }
}
