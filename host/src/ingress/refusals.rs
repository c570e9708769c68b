//! What the embedded broker refused, counted by reason for `/metrics`
//! (`edgehook_mqtt_refusals_total`): a rise is a misconfigured device, a
//! device over its limits or someone trying another's rights.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why the broker refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// CONNECT with a wrong or unknown username or key.
    LoginCredentials,
    /// CONNECT of a known client that may not do what it asks: another's
    /// client id, a session of another username, a Will it may not send.
    LoginForbidden,
    /// SUBSCRIBE to a filter the client may not hold.
    SubscribeForbidden,
    /// SUBSCRIBE beyond the device's number of filters.
    SubscribeQuota,
    /// PUBLISH on a topic the client may not publish on.
    PublishForbidden,
    /// PUBLISH of a malformed or oversized event or answer.
    PublishMalformed,
    /// PUBLISH beyond the device's rate.
    PublishRate,
    /// PUBLISH while the device holds its share of the queue.
    PublishShare,
}

impl Refused {
    /// Every reason, in the order `/metrics` lists them.
    pub const ALL: [Self; 8] = [
        Self::LoginCredentials,
        Self::LoginForbidden,
        Self::SubscribeForbidden,
        Self::SubscribeQuota,
        Self::PublishForbidden,
        Self::PublishMalformed,
        Self::PublishRate,
        Self::PublishShare,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::LoginCredentials => "login_credentials",
            Self::LoginForbidden => "login_forbidden",
            Self::SubscribeForbidden => "subscribe_forbidden",
            Self::SubscribeQuota => "subscribe_quota",
            Self::PublishForbidden => "publish_forbidden",
            Self::PublishMalformed => "publish_malformed",
            Self::PublishRate => "publish_rate",
            Self::PublishShare => "publish_share",
        }
    }
}

/// The counters, one per [`Refused`].
#[derive(Debug, Default)]
pub struct Refusals([AtomicU64; Refused::ALL.len()]);

impl Refusals {
    /// Counts one refusal.
    pub fn count(&self, why: Refused) {
        self.0[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every reason's label and count.
    pub fn read(&self) -> Vec<(&'static str, u64)> {
        Refused::ALL
            .iter()
            .map(|&r| (r.label(), self.0[r as usize].load(Ordering::Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Refusals, Refused};

    #[test]
    fn each_reason_has_its_own_counter() {
        let refusals = Refusals::default();
        refusals.count(Refused::PublishRate);
        refusals.count(Refused::PublishRate);
        refusals.count(Refused::LoginForbidden);
        let read = refusals.read();
        assert_eq!(read.len(), Refused::ALL.len());
        for (label, n) in read {
            let expected = match label {
                "publish_rate" => 2,
                "login_forbidden" => 1,
                _ => 0,
            };
            assert_eq!(n, expected, "{label}");
        }
    }
}
