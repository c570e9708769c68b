//! Native unit tests of a plugin: a configuration and events without a host.
//!
//! Only on non-wasm targets. [`set_config`] sets what
//! [`config`](crate::config) returns on the current thread; [`event`] makes
//! an event (and [`Event::in_group`] for a device in a group);
//! logs go to stderr.
//!
//! ```
//! use edgehook_guest::testing;
//! testing::set_config(serde_json::json!({ "url": "https://example.com" }));
//! let event = testing::event("dev-1", "temp", b"21.5");
//! assert_eq!(event.text().unwrap(), "21.5");
//! ```

use std::cell::RefCell;

use crate::Event;

thread_local! {
    static CONFIG: RefCell<String> = RefCell::new("{}".to_owned());
}

/// Sets the configuration [`config`](crate::config) returns on this thread.
pub fn set_config(config: serde_json::Value) {
    CONFIG.with(|c| *c.borrow_mut() = config.to_string());
}

/// The device whose bucket [`Bucket::device`](crate::kv::Bucket::device)
/// opens on this thread (default `dev-1`), as the host picks the event's.
pub fn set_device(device: &str) {
    crate::kv::imp::set_device(device);
}

/// Moves the clock of the buckets' time to live forward by `by`.
pub fn advance(by: std::time::Duration) {
    crate::kv::imp::advance(u64::try_from(by.as_millis()).unwrap_or(u64::MAX));
}

/// Empties every bucket on this thread.
pub fn clear_kv() {
    crate::kv::imp::clear();
}

pub(crate) fn config_json() -> String {
    CONFIG.with(|c| c.borrow().clone())
}

/// An event from `device` named `name` with `data`.
pub fn event(device: &str, name: &str, data: &[u8]) -> Event {
    Event {
        id: "0123456789abcdef0123456789abcdef".to_owned(),
        device_id: device.to_owned(),
        name: name.to_owned(),
        data: data.to_vec(),
        published_at: "2026-01-01T00:00:00.000Z".to_owned(),
        group: None,
    }
}

impl Event {
    /// The same event from a device in `group`.
    pub fn in_group(mut self, group: &str) -> Self {
        self.group = Some(group.to_owned());
        self
    }
}
