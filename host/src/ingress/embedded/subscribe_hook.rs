//! The embedded broker's subscribe-ACL hook: which filters a client may
//! hold, and how many.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::SubscribeAclResult;

use super::logins::who;
use crate::ingress::acl::{self, MqttAuth, Who};
use crate::ingress::refusals::{Refusals, Refused};

/// The subscribe-ACL hook: which filters a client may hold, and how many.
pub(super) struct SubscribeHook {
    pub(super) auth: MqttAuth,
    /// The most filters a device's session may hold; a reload may change it.
    pub(super) max_subscriptions: Arc<AtomicUsize>,
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
            let max = self.max_subscriptions.load(Ordering::Relaxed);
            if held.is_some_and(|n| n >= max) {
                self.refusals.count(Refused::SubscribeQuota);
                tracing::warn!(
                    "subscription refused: the session holds {} filters already, the most a device may (client {client}, filter {})",
                    max,
                    filter.escape_debug()
                );
                return subscribe_refusal(SubscribeAckReason::QuotaExceeded);
            }
        }
        (true, acc)
    }
}
