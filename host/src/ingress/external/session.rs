//! What the host's session owes the broker across connections: its QoS 1
//! publishes the broker has not acknowledged (sent again, marked DUP, when
//! the broker kept the session; lost when it did not), and the packet ids
//! in use.

use std::collections::VecDeque;

use bytes::Bytes;

use super::RECEIVE_MAXIMUM;

/// A publish sent and not yet acknowledged.
#[derive(Debug)]
pub struct Unacked {
    /// Its packet id.
    pub pkid: u16,
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
}

/// The session's packet ids and unacknowledged publishes.
#[derive(Debug)]
pub struct Session {
    /// In the order sent, which is the order a broker acknowledges them
    /// (MQTT 4.6): the one acknowledged is nearly always the first.
    unacked: VecDeque<Unacked>,
    /// One bit per packet id, set while the id is in use (an unacknowledged
    /// publish or subscription).
    used: Box<[u64; 1024]>,
    /// The last id given.
    last: u16,
    /// Most publishes unacknowledged at once: the broker's receive maximum
    /// (MQTT 5), at most [`RECEIVE_MAXIMUM`].
    window: usize,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            unacked: VecDeque::new(),
            used: Box::new([0; 1024]),
            last: 0,
            window: usize::from(RECEIVE_MAXIMUM),
        }
    }
}

impl Session {
    /// A new connection: the broker kept the session or not, and takes at
    /// most `receive_maximum` publishes unacknowledged. Returns how many
    /// publishes a new session lost; subscriptions asked for on the last
    /// connection are never answered.
    pub fn resume(&mut self, session_present: bool, receive_maximum: Option<u16>) -> usize {
        self.window = usize::from(
            receive_maximum
                .unwrap_or(RECEIVE_MAXIMUM)
                .min(RECEIVE_MAXIMUM),
        );
        self.used.fill(0);
        let lost = if session_present {
            0
        } else {
            std::mem::take(&mut self.unacked).len()
        };
        for unacked in &self.unacked {
            mark(&mut self.used, unacked.pkid, true);
        }
        lost
    }

    /// Whether the broker takes another publish before acknowledging one.
    pub fn has_room(&self) -> bool {
        self.unacked.len() < self.window
    }

    /// The publishes to send again on a kept session, in the order first
    /// sent.
    pub fn unacked(&self) -> impl Iterator<Item = &Unacked> {
        self.unacked.iter()
    }

    /// Keeps a publish until the broker acknowledges it; returns it with
    /// its packet id.
    pub fn publish(&mut self, topic: String, payload: Bytes) -> &Unacked {
        let pkid = self.next_pkid();
        self.unacked.push_back(Unacked {
            pkid,
            topic,
            payload,
        });
        self.unacked.back().expect("just pushed")
    }

    /// A packet id for a subscription.
    pub fn subscribe(&mut self) -> u16 {
        self.next_pkid()
    }

    /// The broker acknowledged the publish `pkid`; false when no publish
    /// waited for it.
    pub fn acked(&mut self, pkid: u16) -> bool {
        let Some(at) = self.unacked.iter().position(|u| u.pkid == pkid) else {
            return false;
        };
        self.unacked.remove(at);
        self.mark(pkid, false);
        true
    }

    /// The broker answered the subscription `pkid`.
    pub fn subacked(&mut self, pkid: u16) {
        self.mark(pkid, false);
    }

    /// The next packet id not in use (ids run 1 to 65,535; at most
    /// [`RECEIVE_MAXIMUM`] publishes and a few subscriptions are in use).
    fn next_pkid(&mut self) -> u16 {
        loop {
            self.last = self.last.checked_add(1).unwrap_or(1);
            if !self.in_use(self.last) {
                self.mark(self.last, true);
                return self.last;
            }
        }
    }

    fn in_use(&self, pkid: u16) -> bool {
        self.used[usize::from(pkid / 64)] & (1 << (pkid % 64)) != 0
    }

    fn mark(&mut self, pkid: u16, used: bool) {
        mark(&mut self.used, pkid, used);
    }
}

fn mark(bits: &mut [u64; 1024], pkid: u16, used: bool) {
    let word = &mut bits[usize::from(pkid / 64)];
    if used {
        *word |= 1 << (pkid % 64);
    } else {
        *word &= !(1 << (pkid % 64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_skip_those_in_use_and_wrap_after_65535() {
        let mut s = Session::default();
        let first = s.publish("t".into(), Bytes::new()).pkid;
        assert_eq!(first, 1);
        s.last = u16::MAX - 1;
        assert_eq!(s.subscribe(), u16::MAX);
        assert_eq!(s.publish("t".into(), Bytes::new()).pkid, 2, "1 is in use");
        assert!(s.acked(1));
        assert!(!s.acked(1), "acknowledged once");
        s.last = 0;
        assert_eq!(s.subscribe(), 1, "free again");
    }

    #[test]
    fn a_kept_session_sends_again_in_order_and_a_new_one_loses_them() {
        let mut s = Session::default();
        for n in 0..3 {
            s.publish(format!("t{n}"), Bytes::new());
        }
        assert_eq!(s.resume(true, Some(2)), 0);
        let topics: Vec<_> = s.unacked().map(|u| u.topic.as_str()).collect();
        assert_eq!(topics, ["t0", "t1", "t2"]);
        assert!(!s.has_room(), "the broker's receive maximum of 2 is full");
        assert!(s.acked(2));
        assert_eq!(
            s.publish("t3".into(), Bytes::new()).pkid,
            4,
            "1 and 3 still in use"
        );
        assert_eq!(s.resume(false, None), 3);
        assert_eq!(s.unacked().count(), 0);
        assert!(s.has_room());
    }
}
