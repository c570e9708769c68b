//! Who may publish and subscribe where on the embedded broker (README "Who may
//! speak on the embedded broker"): pure rules, checked by the broker's hooks
//! before a message is routed or a subscription made.
//!
//! - Only the host speaks on host → device topics (`hook-*`, `commands`),
//!   in every mode: a client's publish there is refused.
//! - With `--mqtt-auth devices`, a device publishes only its own device →
//!   host topics (`devices/{id}/events/…`, `command-output/…`,
//!   `command-done/…`) and subscribes only under `devices/{id}/`; the
//!   operator (`edgehook` + the API token) may subscribe to everything.

pub use crate::config::MqttAuth;

/// The username of the operator's login.
pub const OPERATOR: &str = "edgehook";

/// Who a connected client is, as its login established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who<'a> {
    /// Open mode: anybody.
    Anyone,
    /// The operator's tool.
    Operator,
    /// A registered device, logged in with its key.
    Device(&'a str),
}

/// Why a publish or a subscription is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A host → device topic.
    #[error("only the host publishes on host-to-device topics")]
    HostTopic,
    /// Another device's topic, or not a device → host topic.
    #[error(
        "a device publishes only on devices/{{its id}}/events/…, command-output/… or command-done/…"
    )]
    NotOwnTopic,
    /// A filter outside the device's own topics.
    #[error("a device subscribes only under devices/{{its id}}/")]
    NotOwnFilter,
}

/// Topic levels after `devices/{id}/` that a device may publish on.
const DEVICE_TO_HOST: [&str; 3] = ["events/", "command-output/", "command-done/"];

/// Whether `who` may publish on `topic`.
pub fn may_publish(who: Who<'_>, topic: &str) -> Result<(), Refusal> {
    if is_host_topic(topic) {
        return Err(Refusal::HostTopic);
    }
    match who {
        Who::Anyone | Who::Operator => Ok(()),
        Who::Device(id) => match own_rest(id, topic) {
            Some(rest) if DEVICE_TO_HOST.iter().any(|p| rest.starts_with(p)) => Ok(()),
            _ => Err(Refusal::NotOwnTopic),
        },
    }
}

/// Whether `who` may subscribe to `filter`.
pub fn may_subscribe(who: Who<'_>, filter: &str) -> Result<(), Refusal> {
    match who {
        Who::Anyone | Who::Operator => Ok(()),
        Who::Device(id) => match own_rest(id, filter) {
            Some(rest) if !rest.is_empty() => Ok(()),
            _ => Err(Refusal::NotOwnFilter),
        },
    }
}

/// What follows `devices/{id}/` in `topic`.
fn own_rest<'t>(id: &str, topic: &'t str) -> Option<&'t str> {
    topic
        .strip_prefix("devices/")?
        .strip_prefix(id)?
        .strip_prefix('/')
}

/// `devices/{any}/hook-…` or `devices/{any}/commands`, and any topic under
/// those: what only the host publishes.
fn is_host_topic(topic: &str) -> bool {
    let Some(rest) = topic.strip_prefix("devices/") else {
        return false;
    };
    let Some((_, rest)) = rest.split_once('/') else {
        return false;
    };
    rest.starts_with("hook-") || rest == "commands" || rest.starts_with("commands/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_host_speaks_on_host_topics() {
        for who in [Who::Anyone, Who::Operator, Who::Device("d1")] {
            for topic in [
                "devices/d1/hook-response/t/0",
                "devices/d2/hook-sent/t",
                "devices/d1/hook-error/x/0",
                "devices/d1/commands",
            ] {
                assert_eq!(may_publish(who, topic), Err(Refusal::HostTopic), "{topic}");
            }
        }
        assert_eq!(may_publish(Who::Anyone, "devices/d2/events/t"), Ok(()));
        assert_eq!(may_publish(Who::Anyone, "other/topic"), Ok(()));
    }

    #[test]
    fn a_device_publishes_its_own_device_to_host_topics_only() {
        let me = Who::Device("d1");
        for ok in [
            "devices/d1/events/temp",
            "devices/d1/events/a/b",
            "devices/d1/command-output/r1",
            "devices/d1/command-done/r1",
        ] {
            assert_eq!(may_publish(me, ok), Ok(()), "{ok}");
        }
        for bad in [
            "devices/d2/events/temp",
            "devices/d10/events/temp",
            "devices/d1x/events/temp",
            "devices/d1/other",
            "devices/d1",
            "elsewhere",
        ] {
            assert_eq!(may_publish(me, bad), Err(Refusal::NotOwnTopic), "{bad}");
        }
    }

    #[test]
    fn commands_go_host_to_device_and_their_answers_device_to_host() {
        let me = Who::Device("d1");
        // Only the host sends commands, to anyone, in every mode.
        for who in [Who::Anyone, Who::Operator, me] {
            for topic in [
                "devices/d1/commands",
                "devices/d2/commands",
                "devices/d1/commands/x",
            ] {
                assert_eq!(may_publish(who, topic), Err(Refusal::HostTopic), "{topic}");
            }
        }
        // A device answers only its own commands.
        for other in [
            "devices/d2/command-output/r1",
            "devices/d2/command-done/r1",
            "devices/d1/command-outputs/r1",
        ] {
            assert_eq!(may_publish(me, other), Err(Refusal::NotOwnTopic), "{other}");
        }
        assert_eq!(
            may_publish(Who::Anyone, "devices/d2/command-done/r1"),
            Ok(())
        );
        // It hears its own commands, not another device's or their answers.
        assert_eq!(may_subscribe(me, "devices/d1/commands"), Ok(()));
        for bad in [
            "devices/d2/commands",
            "devices/+/commands",
            "devices/d2/command-output/#",
        ] {
            assert_eq!(may_subscribe(me, bad), Err(Refusal::NotOwnFilter), "{bad}");
        }
    }

    #[test]
    fn a_device_subscribes_under_its_own_prefix_only() {
        let me = Who::Device("d1");
        for ok in ["devices/d1/#", "devices/d1/hook-response/+/+"] {
            assert_eq!(may_subscribe(me, ok), Ok(()), "{ok}");
        }
        for bad in [
            "devices/#",
            "devices/+/hook-response/#",
            "devices/d2/#",
            "devices/d1",
            "#",
            "$share/g/devices/d1/#",
        ] {
            assert_eq!(may_subscribe(me, bad), Err(Refusal::NotOwnFilter), "{bad}");
        }
        assert_eq!(may_subscribe(Who::Operator, "#"), Ok(()));
    }
}
