//! The origins of stored events, so that a resent message is acknowledged
//! without a second delivery.
//!
//! For each event stored with a packet id (QoS 1 or 2) the intake
//! remembers its [`Origin`] (session + packet id) with its sequence number
//! and content fingerprint, in memory for the fast check and in the
//! queue's `origins` table, written in the same transaction as the event,
//! so that it survives a crash between the commit and the PUBACK.
//!
//! A message is a resend of a stored event when it carries DUP=1, its
//! origin is known, and its fingerprint is the one remembered. A message
//! that is not a resend but whose origin is known reuses the packet id for
//! a new message: the entry is replaced (or forgotten, when the new
//! message is not stored). The fingerprint guards the case where that
//! replacement never reached the disk (a crash before its commit): the
//! sender's resend of the new message is then not taken for the old one.
//!
//! An entry outlives its event (the resend may come after the delivery
//! finished) but not for ever: only the origins of the last
//! [`MAX_ORIGINS`] stored events are kept, oldest forgotten first.
//!
//! Plain state, no I/O: the intake owns it (one task, no lock) and turns
//! what it decides into [`Change`]s for the next commit.

use std::collections::{HashMap, VecDeque};

use super::Change;
use crate::origin::{Origin, Sent};

/// Origins remembered at most: the last this many stored events. A device
/// resends only what it sent but did not see acknowledged (at most its
/// in-flight window, 128 on the embedded broker); this leaves room for
/// that window of 512 devices reconnecting at once, or for a resend that
/// comes after 65,535 other events. At most about 200 bytes each in memory
/// (13 MB in all) and 60 on disk.
pub const MAX_ORIGINS: usize = 65_536;

/// What is remembered of one stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredOrigin {
    /// Its sequence number in the queue.
    pub seq: u64,
    /// Its content fingerprint ([`crate::origin::fingerprint`]).
    pub fingerprint: u64,
}

/// The origins of the last [`MAX_ORIGINS`] stored events.
#[derive(Debug)]
pub struct Origins {
    known: HashMap<Origin, StoredOrigin>,
    /// Oldest first, for forgetting; may hold entries since replaced,
    /// which are skipped (and compacted away when they pile up).
    order: VecDeque<(u64, Origin)>,
    max: usize,
    /// The newest event remembered, and the newest known to be on disk: a
    /// resend of an event between the two waits for its commit.
    newest: u64,
    committed: u64,
}

impl Origins {
    /// Keeps at most `max`, starting with `rows` (the queue's at start:
    /// oldest first, at most `max`, one per origin).
    pub fn new(max: usize, rows: Vec<(Origin, StoredOrigin)>) -> Self {
        let newest = rows.last().map_or(0, |(_, s)| s.seq);
        let mut origins = Self {
            known: HashMap::with_capacity(rows.len()),
            order: VecDeque::with_capacity(rows.len()),
            max,
            newest,
            committed: newest,
        };
        for (origin, stored) in rows {
            origins.order.push_back((stored.seq, origin.clone()));
            origins.known.insert(origin, stored);
        }
        origins
    }

    /// Origins remembered now.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// The stored event `sent` is a resend of, if it is one.
    pub fn resend_of(&self, sent: &Sent) -> Option<u64> {
        let stored = self.known.get(&sent.origin)?;
        (sent.dup && stored.fingerprint == sent.fingerprint).then_some(stored.seq)
    }

    /// Whether event `seq` is on disk: its resend may be acknowledged now;
    /// if not, only after the commit that stores it.
    pub fn is_committed(&self, seq: u64) -> bool {
        seq <= self.committed
    }

    /// The events remembered so far are on disk.
    pub fn committed(&mut self) {
        self.committed = self.newest;
    }

    /// `sent` is stored as event `seq`: remembers it in place of whatever
    /// its origin named before, and pushes the changes that keep the
    /// `origins` table the same (this one, and the oldest forgotten).
    pub fn remember(&mut self, sent: &Sent, seq: u64, changes: &mut Vec<Change>) {
        let stored = StoredOrigin {
            seq,
            fingerprint: sent.fingerprint,
        };
        self.newest = self.newest.max(seq);
        if let Some(replaced) = self.known.insert(sent.origin.clone(), stored) {
            changes.push(Change::Forget(replaced.seq));
        }
        self.order.push_back((seq, sent.origin.clone()));
        changes.push(Change::Remember(sent.origin.clone(), stored));
        while self.known.len() > self.max {
            let Some((seq, origin)) = self.order.pop_front() else {
                break;
            };
            if self.forget_stored(&origin, seq) {
                changes.push(Change::Forget(seq));
            }
        }
        if self.order.len() > 2 * self.known.len() + 64 {
            let known = &self.known;
            self.order
                .retain(|(seq, origin)| known.get(origin).is_some_and(|s| s.seq == *seq));
        }
    }

    /// A message from `origin` that is not stored (no webhook matches it)
    /// reused its packet id: forgets what the id named before, and pushes
    /// the change that forgets it on disk.
    pub fn reused(&mut self, origin: &Origin, changes: &mut Vec<Change>) {
        if let Some(replaced) = self.known.remove(origin) {
            changes.push(Change::Forget(replaced.seq));
        }
    }

    /// Forgets `origin` if it still names event `seq` (a commit that
    /// failed: the event is not stored after all); true if it did.
    pub fn forget_stored(&mut self, origin: &Origin, seq: u64) -> bool {
        if self.known.get(origin).is_some_and(|s| s.seq == seq) {
            self.known.remove(origin);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(client: &str, packet_id: u16, dup: bool, fingerprint: u64) -> Sent {
        Sent {
            origin: Origin::device(client, packet_id),
            dup,
            fingerprint,
        }
    }

    /// The sequence numbers whose origins `changes` forget.
    fn forgotten(changes: &[Change]) -> Vec<u64> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::Forget(seq) => Some(*seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_resend_is_dup_with_a_known_origin_and_the_same_content() {
        let mut origins = Origins::new(8, Vec::new());
        let mut changes = Vec::new();
        origins.remember(&sent("d1", 7, false, 0xaa), 1, &mut changes);
        assert!(matches!(
            &changes[..],
            [Change::Remember(_, StoredOrigin { seq: 1, .. })]
        ));

        assert_eq!(origins.resend_of(&sent("d1", 7, true, 0xaa)), Some(1));
        // Not marked as a resend: the packet id was reused.
        assert_eq!(origins.resend_of(&sent("d1", 7, false, 0xaa)), None);
        // Another message: different content, or another session or id.
        assert_eq!(origins.resend_of(&sent("d1", 7, true, 0xbb)), None);
        assert_eq!(origins.resend_of(&sent("d2", 7, true, 0xaa)), None);
        assert_eq!(origins.resend_of(&sent("d1", 8, true, 0xaa)), None);
    }

    #[test]
    fn a_resend_of_an_event_not_yet_committed_waits_for_the_commit() {
        let stored = StoredOrigin {
            seq: 4,
            fingerprint: 0,
        };
        let mut origins = Origins::new(8, vec![(Origin::device("d1", 1), stored)]);
        assert!(origins.is_committed(4), "read from disk");
        let mut changes = Vec::new();
        origins.remember(&sent("d1", 7, false, 0xaa), 5, &mut changes);
        assert_eq!(origins.resend_of(&sent("d1", 7, true, 0xaa)), Some(5));
        assert!(!origins.is_committed(5));
        origins.committed();
        assert!(origins.is_committed(5));
    }

    #[test]
    fn a_reused_packet_id_replaces_or_forgets_the_old_message() {
        let mut origins = Origins::new(8, Vec::new());
        let mut changes = Vec::new();
        origins.remember(&sent("d1", 7, false, 0xaa), 1, &mut changes);
        origins.remember(&sent("d1", 7, false, 0xbb), 2, &mut changes);
        assert_eq!(forgotten(&changes), [1]);
        assert_eq!(origins.resend_of(&sent("d1", 7, true, 0xbb)), Some(2));
        assert_eq!(origins.resend_of(&sent("d1", 7, true, 0xaa)), None);
        assert_eq!(origins.len(), 1);

        changes.clear();
        origins.reused(&Origin::device("d1", 7), &mut changes);
        assert_eq!(forgotten(&changes), [2]);
        assert_eq!(origins.resend_of(&sent("d1", 7, true, 0xbb)), None);
        // Forgetting what is not known changes nothing.
        changes.clear();
        origins.reused(&Origin::device("d1", 7), &mut changes);
        assert!(changes.is_empty());
    }

    #[test]
    fn only_the_last_max_origins_are_kept_oldest_forgotten_first() {
        let mut origins = Origins::new(3, Vec::new());
        let mut changes = Vec::new();
        for (i, seq) in (1..=3).zip(10..) {
            origins.remember(&sent("d1", i, false, 0), seq, &mut changes);
        }
        // Replacing id 1 (event 10) makes id 2 (event 11) the oldest.
        origins.remember(&sent("d1", 1, false, 1), 13, &mut changes);
        assert_eq!(forgotten(&changes), [10]);
        changes.clear();
        origins.remember(&sent("d1", 4, false, 0), 14, &mut changes);
        assert_eq!(forgotten(&changes), [11]);
        assert_eq!(origins.len(), 3);
        assert_eq!(origins.resend_of(&sent("d1", 1, true, 1)), Some(13));
        assert_eq!(origins.resend_of(&sent("d1", 2, true, 0)), None);

        // One packet id reused for ever stays one entry, in memory too.
        for seq in 100..10_000 {
            origins.remember(&sent("d9", 1, false, 0), seq, &mut changes);
        }
        assert!(origins.order.len() <= 2 * origins.len() + 64 + 1);
    }

    #[test]
    fn the_origins_read_at_start_are_forgotten_oldest_first() {
        let stored = |seq| StoredOrigin {
            seq,
            fingerprint: 0,
        };
        let rows = vec![
            (Origin::device("d1", 2), stored(20)),
            (Origin::device("d1", 3), stored(30)),
        ];
        let mut origins = Origins::new(2, rows);
        assert_eq!(origins.resend_of(&sent("d1", 2, true, 0)), Some(20));
        let mut changes = Vec::new();
        origins.remember(&sent("d1", 4, false, 0), 40, &mut changes);
        assert_eq!(forgotten(&changes), [20]);
    }

    #[test]
    fn a_failed_commit_forgets_only_what_it_stored() {
        let mut origins = Origins::new(8, Vec::new());
        let mut changes = Vec::new();
        origins.remember(&sent("d1", 7, false, 0xaa), 1, &mut changes);
        assert!(!origins.forget_stored(&Origin::device("d1", 7), 2));
        assert!(origins.forget_stored(&Origin::device("d1", 7), 1));
        assert!(origins.is_empty());
    }
}
