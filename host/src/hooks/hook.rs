//! One webhook in force: a compiled plugin with its configuration, the
//! events that run it, where it may send requests, how they are sent, and
//! its delivery log. Plugin files and Particle-style webhooks both become a
//! [`Hook`]; the pipeline knows no difference.
//!
//! A hook taken out of service (deleted, disabled, its plugin file removed)
//! rather than replaced is [`Retired`]: the deliveries still holding it
//! make no further attempt and finish at once.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use super::host_pattern::HostPattern;
use super::log::DeliveryLog;
use crate::delivery::SendOptions;
use crate::fleet::GroupId;
use crate::runtime::Plugin;
use crate::streak::Streak;
use crate::topic::DeviceId;

/// Which events run a webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Event-name prefix, case-sensitive (empty: every event).
    pub event: String,
    /// Not the events whose name begins with this (Iottly's `user` type
    /// takes everything but the agent's own `iottly/` events).
    pub except: Option<String>,
    /// Only these devices, when set.
    pub devices: Option<Vec<DeviceId>>,
    /// Only the devices of this group, when set: looked up per event in
    /// the registry, so a device moved between groups follows at once.
    pub group: Option<GroupId>,
}

impl Filter {
    /// Whether an event named `name` from `device`, a member of `group`,
    /// runs the webhook.
    pub fn matches(&self, device: &DeviceId, group: Option<&GroupId>, name: &str) -> bool {
        name.starts_with(&self.event)
            && self.except.as_ref().is_none_or(|x| !name.starts_with(x))
            && self.devices.as_ref().is_none_or(|ids| ids.contains(device))
            && self.group.as_ref().is_none_or(|g| group == Some(g))
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
    /// Its failed deliveries in a row; once tripped the webhook is
    /// disabled until it is replaced.
    pub failures: Streak,
    /// The device hears nothing of it (no hook-sent, response or error):
    /// the Iottly and Mainflux dialects. Failures still reach the delivery
    /// log, the metrics and the retries.
    pub one_way: bool,
    /// Set when it is taken out of service, so that its deliveries waiting
    /// for a retry or a host do not go on against a destination the user
    /// removed.
    pub retirement: Retirement,
}

/// Why a webhook was taken out of service rather than replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    /// Deleted through the API (of any host), or its webhook file removed.
    Deleted,
    /// Disabled by its definition (Particle's `"disabled": true`).
    Disabled,
    /// Its plugin file removed from the plugins directory.
    Removed,
    /// Its definition replaced (through the API of any host, or its file):
    /// what it was about to send again went with the old definition.
    Replaced,
}

/// Whether a webhook was retired, for the deliveries that hold it.
#[derive(Debug, Default)]
pub struct Retirement {
    why: OnceLock<Retired>,
    /// Cancelled once `why` is set.
    done: CancellationToken,
}

impl Retirement {
    /// Retires the webhook (the first reason given stays).
    pub fn retire(&self, why: Retired) {
        let _ = self.why.set(why);
        self.done.cancel();
    }
}

impl Hook {
    /// Whether the webhook may send a request to `host`.
    pub fn allows_host(&self, host: &str) -> bool {
        self.allowed_hosts.iter().any(|p| p.matches(host))
    }

    /// The hook-error of its deliveries once it is retired, if it is.
    pub fn retired(&self) -> Option<String> {
        let name = &self.name;
        Some(match self.retirement.why.get()? {
            Retired::Deleted => format!("not delivered: {name} was deleted"),
            Retired::Disabled => format!("not delivered: {name} was disabled"),
            Retired::Removed => format!("not delivered: plugin {name} was removed"),
            Retired::Replaced => format!(
                "not delivered: {name} was replaced; its new definition takes the events that come from now on"
            ),
        })
    }

    /// Resolves once the webhook is retired, with [`Self::retired`].
    pub async fn until_retired(&self) -> String {
        self.retirement.done.cancelled().await;
        self.retired().unwrap_or_default()
    }

    /// Why the webhook is disabled, if it is: its events then get this as
    /// a hook-error instead of a request.
    pub fn disabled(&self) -> Option<String> {
        self.failures.tripped().map(str::to_owned)
    }

    /// Records the final result of one delivery (`failure` is why it
    /// failed, `None` when the endpoint answered below 400). `Some(reason)`
    /// when this one disabled the webhook: `disable_after` failures in a
    /// row, never when 0.
    pub fn record_delivery(&self, failure: Option<&str>, disable_after: u32) -> Option<String> {
        let failure = failure.as_ref().map(|f| f as &dyn std::fmt::Display);
        self.failures.record(failure, disable_after, |n, last| {
            format!(
                "Too many errors, webhook disabled: {n} deliveries of {} failed in a row \
                 (last: {last}); replace it to enable it again",
                self.name
            )
        })
    }
}
