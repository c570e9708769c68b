//! One webhook in force: a compiled plugin with its configuration, the
//! events that run it, where it may send requests, how they are sent, and
//! its delivery log. Plugin files and Particle-style webhooks both become a
//! [`Hook`]; the pipeline knows no difference.

use std::sync::Arc;

use super::manifest::HostPattern;
use crate::delivery::SendOptions;
use crate::runtime::Plugin;
use crate::topic::DeviceId;
use crate::webhooks::DeliveryLog;

/// Which events run a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Event-name prefix, case-sensitive, non-empty.
    pub event: String,
    /// Only these devices, when set.
    pub devices: Option<Vec<DeviceId>>,
}

impl Filter {
    /// Whether an event from `device` named `name` runs the webhook.
    pub fn matches(&self, device: &DeviceId, name: &str) -> bool {
        name.starts_with(&self.event)
            && self.devices.as_ref().is_none_or(|ids| ids.contains(device))
    }
}

/// A webhook ready to run.
#[derive(Debug)]
pub struct Hook {
    /// The plugin's file stem, or `webhook/{id}` for a Particle-style webhook.
    pub name: Arc<str>,
    /// The events that run it.
    pub filter: Filter,
    /// Hosts its requests may go to.
    pub allowed_hosts: Vec<HostPattern>,
    /// The compiled plugin, configured for this webhook.
    pub plugin: Plugin,
    /// TLS and signing of its requests.
    pub send: SendOptions,
    /// Its last requests and errors, for the API.
    pub log: Arc<DeliveryLog>,
}

impl Hook {
    /// Whether the webhook may send a request to `host`.
    pub fn allows_host(&self, host: &str) -> bool {
        self.allowed_hosts.iter().any(|p| p.matches(host))
    }
}
