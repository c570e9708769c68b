//! The embedded broker's publish hooks: the publish ACL, which checks who
//! may publish where and takes devices' events (the PUBACK waits for the
//! event's [`Ack`]) and answers, and the hook that takes Wills.

use std::sync::Arc;
use std::time::Instant;

use rmqtt::codec::types::{MQTT_LEVEL_5, QoS};
use rmqtt::codec::v5::PublishAckReason;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::session::Session;
use rmqtt::types::{FromType, Publish, PublishAclResult, PublishResult};
use tokio::sync::oneshot;

use super::intake::{Intake, Message, NotTaken};
use super::logins::who;
use crate::event::Event;
use crate::ingress::acl::{self, MqttAuth};
use crate::ingress::refusals::Refused;
use crate::ingress::{Ack, Inbound, Refusal};
use crate::origin::{Origin, Sent};

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
        match self.intake.read(topic, &publish.payload) {
            None => (true, acc),
            Some(Ok(Message::Reply(reply))) => {
                self.intake.reply(reply).await;
                (true, acc)
            }
            Some(Ok(Message::Event(event))) => self.take(session, publish, event).await,
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
                verdict(PublishAclResult(result))
            }
        }
    }
}

impl EventHook {
    /// Hands `event` to the pipeline within its device's share of the
    /// queue, and allows the PUBACK once the pipeline acknowledges it.
    async fn take(&self, session: &Session, publish: &Publish, event: Event) -> ReturnType {
        let topic: &str = &publish.topic;
        let client: &str = &session.id.client_id;
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

    /// Refuses an event of a device that holds its share of the queue:
    /// MQTT 5 says why; a 3.1.1 device gets no PUBACK and sends the event
    /// again once its connection is back.
    async fn over_share(
        &self,
        session: &Session,
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
