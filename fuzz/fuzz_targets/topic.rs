//! The MQTT topic parser: any text is read as a device event topic and as
//! a plugin's reply topic. What parses must print back to the same topic,
//! and no accepted reply topic may be one that devices publish events on.
#![no_main]

use edgehook::topic::{
    DeviceId, check_reply_suffix, hook_sent_topic, is_event_topic, parse_event_topic, reply_topic,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|topic: &str| {
    let event = is_event_topic(topic);
    if let Ok((device, name)) = parse_event_topic(topic) {
        assert!(event, "{topic:?} parses but is not an event topic");
        assert_eq!(format!("devices/{device}/events/{name}"), topic);
        assert_eq!(DeviceId::try_from(device.as_str()).as_ref(), Ok(&device));
        assert!(!is_event_topic(&hook_sent_topic(&device, &name)));
    }
    let device = DeviceId::try_from("dev-1").unwrap();
    if check_reply_suffix(topic).is_ok() {
        let reply = reply_topic(&device, topic, 0);
        assert!(!is_event_topic(&reply), "reply {reply:?} is an event topic");
        assert!(
            parse_event_topic(&reply).is_err(),
            "reply {reply:?} parses as an event"
        );
    }
});
