//! The embedded broker's topic rules (CONTRACT sections 6 and 12) under a
//! sequence of packets from one logged-in client: each line of the input is
//! a CONNECT's Will topic (`W…`), a SUBSCRIBE filter (`S…`) or a PUBLISH
//! topic (`P…`), decided as device `d1`, the operator and an open-mode
//! client. Whatever the sequence, a device may publish (and leave as its
//! Will) only its own device → host topics, nobody may publish a host →
//! device topic, and no filter a device may hold matches a topic of
//! another device.
#![no_main]

use edgehook::ingress::acl::{Who, may_publish, may_subscribe};
use libfuzzer_sys::fuzz_target;

/// Topics of another device that `d1` must never hear or speak on.
const OTHERS: [&str; 6] = [
    "devices/d2/commands",
    "devices/d2/hook-response/temp/0",
    "devices/d2/events/temp",
    "devices/d1x/hook-sent/temp",
    "devices/d/1/commands",
    "$SYS/broker/clients",
];

/// Whether MQTT filter `filter` matches `topic` (`+` one level, `#` the
/// rest; `$` topics only by filters that name them).
fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && !filter.starts_with('$') {
        return false;
    }
    let mut levels = topic.split('/');
    for f in filter.split('/') {
        match (f, levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(t)) if f == t => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

fn is_host_topic(topic: &str) -> bool {
    let mut levels = topic.split('/');
    levels.next() == Some("devices")
        && levels.next().is_some()
        && levels
            .next()
            .is_some_and(|l| l.starts_with("hook-") || l == "commands")
}

fn own_device_to_host(topic: &str) -> bool {
    ["events/", "command-output/", "command-done/"]
        .iter()
        .any(|p| topic.strip_prefix("devices/d1/").is_some_and(|r| r.starts_with(p)))
}

fuzz_target!(|input: &str| {
    let device = Who::Device("d1");
    for line in input.lines().take(64) {
        let (kind, text) = line.split_at(line.len().min(1));
        match kind {
            "W" | "P" => {
                for who in [device, Who::Operator, Who::Anyone] {
                    if may_publish(who, text).is_ok() {
                        assert!(!is_host_topic(text), "{who:?} may publish {text:?}");
                    }
                }
                if may_publish(device, text).is_ok() {
                    assert!(own_device_to_host(text), "d1 may publish {text:?}");
                }
            }
            "S" => {
                if may_subscribe(device, text).is_ok() {
                    for other in OTHERS {
                        assert!(!matches(text, other), "d1's filter {text:?} hears {other:?}");
                    }
                }
            }
            _ => {}
        }
    }
});
