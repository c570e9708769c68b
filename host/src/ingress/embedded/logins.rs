//! The embedded broker's login hook, in every mode: who a client is, its
//! client id (`devices` mode: a device's is its id, and no login takes over
//! a session of another username), and whether its Will is one it could
//! publish (rmqtt later publishes a Will past the publish ACL).

use std::sync::Arc;

use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::{AuthResult, ConnectInfo, LastWill};

use crate::fleet::{Fleet, KeyHash};
use crate::ingress::acl::{self, MqttAuth, Who};
use crate::ingress::refusals::{Refusals, Refused};

/// The login hook, in every mode: who the client is (`devices`: a
/// registered device with its key under its own id as client id, or the
/// operator with the API token; `open`: anyone), and whether its Will is
/// one it could publish.
pub(super) struct Logins {
    pub(super) auth: MqttAuth,
    pub(super) operator: KeyHash,
    pub(super) running: Running,
    pub(super) refusals: Arc<Refusals>,
}

/// The broker's sessions and the registry, while the host runs.
pub(super) type Running = Arc<arc_swap::ArcSwapOption<Live>>;

/// What logins are checked against.
pub(super) struct Live {
    pub(super) scx: ServerContext,
    pub(super) fleet: Arc<Fleet>,
}

/// Why a login is refused, and with which CONNACK.
enum LoginRefusal {
    /// Not who it says it is: bad username or password.
    Credentials(&'static str),
    /// Who it says it is, but not allowed this: not authorized.
    Forbidden(String),
}

impl Logins {
    fn who<'c>(&self, live: &Live, connect: &'c ConnectInfo) -> Result<Who<'c>, LoginRefusal> {
        if self.auth == MqttAuth::Open {
            return Ok(Who::Anyone);
        }
        let username = connect.username().map_or("", |u| &**u);
        let password = connect.password().map_or(&[][..], |p| &p[..]);
        if username == acl::OPERATOR {
            return match self.operator.matches(password) {
                true => Ok(Who::Operator),
                false => Err(LoginRefusal::Credentials("wrong API token")),
            };
        }
        match live.fleet.snapshot().devices.get(username) {
            Some(device) if device.key.matches(password) => Ok(Who::Device(username)),
            Some(_) => Err(LoginRefusal::Credentials("wrong key")),
            None if username.is_empty() => Err(LoginRefusal::Credentials("no username")),
            None => Err(LoginRefusal::Credentials("not a registered device")),
        }
    }

    /// The client id rules of `devices` mode: a device's is its id; the
    /// operator's is no registered device's; no login takes over the
    /// session of another username.
    async fn check_client_id(
        live: &Live,
        who: Who<'_>,
        connect: &ConnectInfo,
    ) -> Result<(), String> {
        let id = connect.id();
        let client_id: &str = &id.client_id;
        match who {
            Who::Anyone => return Ok(()),
            Who::Device(device) if client_id != device => {
                return Err(format!(
                    "a device's client id must be its device id {:?}",
                    device.escape_debug().to_string()
                ));
            }
            Who::Operator if live.fleet.snapshot().devices.contains_key(client_id) => {
                return Err(
                    "the operator may not use a registered device's id as client id".into(),
                );
            }
            Who::Device(_) | Who::Operator => {}
        }
        let holder = live.scx.extends.shared().await.entry(id.clone()).session();
        match holder {
            Some(session) if session.id.username != id.username => {
                Err("the client id's session belongs to another login".into())
            }
            _ => Ok(()),
        }
    }
}

/// The topic of a Will.
fn will_topic<'a>(will: &'a LastWill<'_>) -> &'a str {
    match will {
        LastWill::V3(will) => &will.topic,
        LastWill::V5(will) => &will.topic,
    }
}

#[async_trait::async_trait]
impl Handler for Logins {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        let Parameter::ClientAuthenticate(connect) = param else {
            return (true, acc);
        };
        let Some(live) = self.running.load_full() else {
            let refused = AuthResult::NotAuthorized;
            return (false, Some(HookResult::AuthResult(refused)));
        };
        let mut refusal = self.who(&live, connect);
        if let Ok(who) = refusal {
            refusal = Self::check_client_id(&live, who, connect)
                .await
                .map_err(LoginRefusal::Forbidden)
                .map(|()| who);
        }
        if let (Ok(who), Some(will)) = (&refusal, connect.last_will()) {
            let topic = will_topic(&will);
            if let Err(why) = acl::may_publish(*who, topic) {
                refusal = Err(LoginRefusal::Forbidden(format!(
                    "Will on {}: {why}",
                    topic.escape_debug()
                )));
            }
        }
        let id = connect.id();
        let client = id.client_id.escape_debug();
        let username = connect.username().map_or("", |u| &**u).escape_debug();
        let result = match refusal {
            Ok(_) => AuthResult::Allow(false, None),
            Err(LoginRefusal::Credentials(why)) => {
                self.refusals.count(Refused::LoginCredentials);
                tracing::warn!("login refused: {why} (client {client}, username {username})");
                AuthResult::BadUsernameOrPassword
            }
            Err(LoginRefusal::Forbidden(why)) => {
                self.refusals.count(Refused::LoginForbidden);
                tracing::warn!("login refused: {why} (client {client}, username {username})");
                AuthResult::NotAuthorized
            }
        };
        (false, Some(HookResult::AuthResult(result)))
    }
}

/// Who a session is, as far as the ACL is concerned.
pub(super) fn who(auth: MqttAuth, username: Option<&str>) -> Who<'_> {
    match (auth, username) {
        (MqttAuth::Open, _) => Who::Anyone,
        (MqttAuth::Devices, Some(acl::OPERATOR)) => Who::Operator,
        (MqttAuth::Devices, name) => Who::Device(name.unwrap_or_default()),
    }
}
