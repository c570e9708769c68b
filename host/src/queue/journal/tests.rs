//! The queue log's unit tests: what survives a reopen, a commit cut short
//! or failed, a rotation, and the file of an earlier version.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::super::frame::{self, Entry, FrameKind};
use super::super::legacy;
use super::super::segment::{MAGIC, segment_path, segments};
use super::*;
use crate::event::Event;
use crate::topic::{DeviceId, EventName};

fn event(name: &str, data: &'static [u8]) -> Event {
    Event::received(
        DeviceId::try_from("dev-1").unwrap(),
        EventName::try_from(name).unwrap(),
        Bytes::from_static(data),
    )
}

fn stored(seq: u64) -> StoredOrigin {
    StoredOrigin {
        seq,
        fingerprint: seq * 10,
    }
}

fn open(dir: &Path) -> (Journal, Recovered) {
    Journal::open(dir, 8).unwrap()
}

fn seqs(recovered: &Recovered) -> Vec<u64> {
    recovered.pending.iter().map(|p| p.seq).collect()
}

/// The only segment of `dir`.
/// Where the last whole commit of the segment at `path` ends.
fn whole_end(path: &Path) -> usize {
    let Ok(Replay::Whole(_, end)) = replay(&fs::read(path).unwrap()) else {
        panic!("{} does not replay", path.display())
    };
    end
}

fn segment(dir: &Path) -> PathBuf {
    let numbers = segments(&dir.join("queue")).unwrap();
    assert_eq!(numbers.len(), 1, "one segment: {numbers:?}");
    segment_path(&dir.join("queue"), numbers[0])
}

#[test]
fn events_survive_reopening_with_their_done_webhooks_until_removed() {
    let dir = tempfile::tempdir().unwrap();
    let a = event("temp/room", b"{\"t\":21.5}");
    let b = event("hum", b"\x00\xffbinary");
    {
        let (journal, recovered) = open(dir.path());
        assert!(recovered.pending.is_empty());
        journal
            .apply(&[Change::Put(1, a.encode()), Change::Put(2, b.encode())])
            .unwrap();
        journal
            .apply(&[Change::Done(2, "webhook/x".into()), Change::Remove(1)])
            .unwrap();
    }
    let (journal, recovered) = open(dir.path());
    assert_eq!(seqs(&recovered), [2]);
    let p = &recovered.pending[0];
    assert_eq!(p.event.id, b.id);
    assert_eq!(p.event.name.as_str(), "hum");
    assert_eq!(p.event.device.as_str(), "dev-1");
    assert_eq!(p.event.published_at, b.published_at);
    assert_eq!(&p.event.data[..], b"\x00\xffbinary");
    assert_eq!(p.done, ["webhook/x"]);
    assert_eq!(p.bytes, b.encode().len());

    journal.apply(&[Change::Remove(2)]).unwrap();
    drop(journal);
    let (journal, recovered) = open(dir.path());
    assert!(recovered.pending.is_empty());
    // Removing an event also forgets its `done` rows.
    journal.apply(&[Change::Put(2, b.encode())]).unwrap();
    drop(journal);
    assert!(open(dir.path()).1.pending[0].done.is_empty());
}

#[test]
fn origins_survive_reopening_and_outlive_their_events() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (journal, _) = open(dir.path());
        journal
            .apply(&[
                Change::Put(1, event("a", b"1").encode()),
                Change::Remember(Origin::device("d1", 7), stored(1)),
                Change::Remember(Origin::device("d1", 8), stored(2)),
            ])
            .unwrap();
        journal
            .apply(&[
                Change::Remove(1),
                Change::Forget(2),
                Change::Forget(1),
                Change::Remember(Origin::device("d1", 7), stored(3)),
                Change::Remember(Origin::device("d2", 7), stored(4)),
                Change::Remember(Origin::device("d3", 7), stored(5)),
            ])
            .unwrap();
    }
    let (journal, recovered) = open(dir.path());
    assert!(recovered.pending.is_empty());
    assert_eq!(
        recovered.origins,
        [
            (Origin::device("d1", 7), stored(3)),
            (Origin::device("d2", 7), stored(4)),
            (Origin::device("d3", 7), stored(5)),
        ]
    );
    // Beyond the bound, or named again by a newer row: dropped.
    journal
        .apply(&[Change::Remember(Origin::device("d2", 7), stored(6))])
        .unwrap();
    drop(journal);
    let (_, recovered) = Journal::open(dir.path(), 2).unwrap();
    assert_eq!(
        recovered.origins,
        [
            (Origin::device("d3", 7), stored(5)),
            (Origin::device("d2", 7), stored(6)),
        ]
    );
    assert_eq!(open(dir.path()).1.origins.len(), 2);
}

#[test]
fn a_commit_cut_short_is_dropped_and_the_log_goes_on_after_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (journal, _) = open(dir.path());
        journal
            .apply(&[Change::Put(1, event("a", b"1").encode())])
            .unwrap();
        journal
            .apply(&[Change::Put(2, event("b", b"2").encode())])
            .unwrap();
    }
    // A crash in the middle of writing the second commit.
    let path = segment(dir.path());
    let end = whole_end(&path) as u64;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(end - 3)
        .unwrap();
    {
        let (journal, recovered) = open(dir.path());
        assert_eq!(seqs(&recovered), [1]);
        journal
            .apply(&[Change::Put(3, event("c", b"3").encode())])
            .unwrap();
    }
    assert_eq!(seqs(&open(dir.path()).1), [1, 3]);
}

#[test]
fn commits_overwrite_the_zeros_kept_ahead_of_them_which_read_as_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    let path = segment(dir.path());
    journal
        .apply(&[Change::Put(1, event("a", b"1").encode())])
        .unwrap();
    let len = fs::metadata(&path).unwrap().len();
    assert_eq!(len, whole_end(&path) as u64 + ZERO_AHEAD);
    for seq in 2..100 {
        journal
            .apply(&[Change::Put(seq, event("b", b"2").encode())])
            .unwrap();
    }
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        len,
        "the file did not grow: the commits overwrote its zeros"
    );
    drop(journal);
    assert_eq!(seqs(&open(dir.path()).1), (1..100).collect::<Vec<_>>());
}

#[test]
fn a_failed_commit_is_cut_off_and_the_next_one_follows_the_last_whole_one() {
    use crate::queue::DiskFault;
    for (fault, errno) in [(DiskFault::Full, 28), (DiskFault::SyncFails, 5)] {
        let dir = tempfile::tempdir().unwrap();
        {
            let (journal, _) = open(dir.path());
            journal
                .apply(&[Change::Put(1, event("a", b"1").encode())])
                .unwrap();
            let good = whole_end(&segment(dir.path()));
            journal.faults().inject(Some(fault));
            // Even half of it is longer than the commit after it.
            let big = event("b", &[b'x'; 256]);
            for _ in 0..2 {
                let err = journal.apply(&[Change::Put(2, big.encode())]).unwrap_err();
                let JournalError::Io { source, .. } = &err else {
                    panic!("{err}")
                };
                assert_eq!(source.raw_os_error(), Some(errno), "{fault:?}: {err}");
                // Its bytes are on the file, as far as the disk took them.
                let bytes = fs::read(segment(dir.path())).unwrap();
                assert!(bytes[good..].iter().any(|&b| b != 0), "{fault:?}");
            }
            journal.faults().inject(None);
            journal
                .apply(&[Change::Put(3, event("c", b"3").encode())])
                .unwrap();
            // Nothing of the failed commits is left after the last one.
            let bytes = fs::read(segment(dir.path())).unwrap();
            let Ok(Replay::Whole(_, end)) = replay(&bytes) else {
                panic!("{fault:?}: the segment does not replay")
            };
            assert!(bytes[end..].iter().all(|&b| b == 0), "{fault:?}");
        }
        assert_eq!(seqs(&open(dir.path()).1), [1, 3], "{fault:?}");
    }
}

#[test]
fn segments_are_rewritten_with_what_is_still_held() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path());
    journal.rotate_at = 4096;
    let first = segment(dir.path());
    for seq in 1..=200 {
        let mut changes = vec![
            Change::Put(seq, event("e", b"0123456789abcdef").encode()),
            Change::Remember(Origin::device("d1", seq as u16), stored(seq)),
        ];
        if seq % 10 != 0 {
            changes.push(Change::Remove(seq));
        }
        journal.apply(&changes).unwrap();
    }
    let last = segment(dir.path());
    assert_ne!(first, last, "the log was rewritten");
    assert!(whole_end(&last) < 8192);
    drop(journal);
    let (_, recovered) = open(dir.path());
    assert_eq!(
        seqs(&recovered),
        (1..=20).map(|n| n * 10).collect::<Vec<_>>()
    );
    let origins: Vec<u64> = recovered.origins.iter().map(|(_, s)| s.seq).collect();
    assert_eq!(origins, (193..=200).collect::<Vec<_>>());
}

#[test]
fn a_rewrite_cut_short_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (journal, _) = open(dir.path());
        journal
            .apply(&[Change::Put(1, event("a", b"1").encode())])
            .unwrap();
    }
    let path = segment(dir.path());
    let number = segments(&dir.path().join("queue")).unwrap()[0];
    // A crash while the next segment's checkpoint was being written.
    let mut next = MAGIC.to_vec();
    frame::write(&mut next, FrameKind::Checkpoint, [Entry::Remove(9)]).unwrap();
    next.truncate(next.len() - 1);
    fs::write(segment_path(&dir.path().join("queue"), number + 1), next).unwrap();
    let (_, recovered) = open(dir.path());
    assert_eq!(seqs(&recovered), [1]);
    assert!(!path.exists());
    segment(dir.path());
}

#[test]
fn a_whole_frame_that_edgehook_did_not_write_is_named() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let path = segment(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len();
    frame::write(&mut bytes, FrameKind::Checkpoint, []).unwrap();
    fs::write(&path, bytes).unwrap();
    let err = Journal::open(dir.path(), 8).unwrap_err().to_string();
    assert!(err.contains("a checkpoint out of place"), "{err}");
    assert!(err.contains(&format!("at byte {at}")), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
}

#[test]
fn events_queued_by_an_earlier_version_are_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join(legacy::FILE);
    let a = event("a", b"1");
    {
        let db = redb::Database::create(&old).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut events = tx.open_table(legacy::EVENTS).unwrap();
            events.insert(4, a.encode().as_slice()).unwrap();
            let mut done = tx.open_table(legacy::DONE).unwrap();
            done.insert((4, "webhook/x"), ()).unwrap();
            let mut origins = tx.open_table(legacy::ORIGINS).unwrap();
            origins.insert(4, ("device/d1", 7, 40)).unwrap();
        }
        tx.commit().unwrap();
    }
    let (journal, recovered) = open(dir.path());
    assert_eq!(seqs(&recovered), [4]);
    assert_eq!(recovered.pending[0].event.id, a.id);
    assert_eq!(recovered.pending[0].done, ["webhook/x"]);
    assert_eq!(recovered.origins, [(Origin::device("d1", 7), stored(4))]);
    assert!(!old.exists(), "the old file is deleted once taken over");
    journal.apply(&[Change::Remove(4)]).unwrap();
    drop(journal);
    assert!(open(dir.path()).1.pending.is_empty());
}
