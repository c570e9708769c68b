//! Noticing changes in a watched directory by polling, without mistaking a
//! file still being copied for a broken one: a change is acted on only once
//! it looks the same on two polls in a row.
//!
//! [`Settle`] is the pure state machine; the plugin and webhook directory
//! watchers feed it what they read from disk.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How often the watched directories are looked at. Two polls make a change
/// stable, so a change takes effect within about a second.
pub const POLL_INTERVAL: Duration = Duration::from_millis(400);

/// Size and modification time of a file: enough to notice a change.
pub type Stamp = Option<(u64, SystemTime)>;

/// The files of `dir` named `STEM.EXT` with one of `exts` and a usable
/// stem (`valid_name`), with their stamps: `(stem, ext, stamp)`.
pub async fn files(
    dir: &Path,
    exts: &[&'static str],
) -> std::io::Result<Vec<(String, &'static str, Stamp)>> {
    let mut out = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let Some(ext) = exts.iter().find(|e| **e == ext) else {
            continue;
        };
        if !valid_name(stem) {
            continue;
        }
        match entry.metadata().await {
            Ok(meta) if meta.is_file() => {
                let stamp = Some((
                    meta.len(),
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                ));
                out.push((stem.to_owned(), *ext, stamp));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// What to do about one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange<S> {
    /// New or changed, and stable: load it.
    Changed(String, S),
    /// No longer there: unload it.
    Gone(String),
}

/// What was seen of each name, and what was acted on.
#[derive(Debug)]
pub struct Settle<S> {
    /// What each name looked like at the previous poll.
    seen: BTreeMap<String, S>,
    /// What each name looked like when it was last acted on.
    done: BTreeMap<String, S>,
}

impl<S> Default for Settle<S> {
    fn default() -> Self {
        Self {
            seen: BTreeMap::new(),
            done: BTreeMap::new(),
        }
    }
}

impl<S: Clone + PartialEq> Settle<S> {
    /// The changes to act on, given what is on disk `now`. With `settle`
    /// false (the first look at start), files are taken as they are.
    pub fn changes(&mut self, now: BTreeMap<String, S>, settle: bool) -> Vec<FileChange<S>> {
        let mut out: Vec<FileChange<S>> = self
            .done
            .keys()
            .filter(|n| !now.contains_key(*n))
            .map(|n| FileChange::Gone(n.clone()))
            .collect();
        for change in &out {
            if let FileChange::Gone(name) = change {
                self.done.remove(name);
            }
        }
        for (name, state) in &now {
            let stable = !settle || self.seen.get(name) == Some(state);
            if stable && self.done.get(name) != Some(state) {
                out.push(FileChange::Changed(name.clone(), state.clone()));
                self.done.insert(name.clone(), state.clone());
            }
        }
        self.seen = now;
        out
    }
}

/// A directory watcher: looks once, acting on every stable change.
pub trait Scan: Send {
    /// Looks at the directory once. With `settle` false (the first look at
    /// start), files are taken as they are.
    fn scan(&mut self, settle: bool) -> impl Future<Output = ()> + Send;
}

/// Runs `watcher` every [`POLL_INTERVAL`] until `shutdown` resolves.
pub async fn poll(
    mut watcher: impl Scan,
    mut rescan: tokio::sync::watch::Receiver<()>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => watcher.scan(true).await,
            Ok(()) = rescan.changed() => watcher.scan(false).await,
        }
    }
}

/// Asks every [`poll`] given one of its receivers to scan at once, taking
/// what it finds without waiting for it to hold still (a reload's).
#[derive(Debug, Clone)]
pub struct Rescan(tokio::sync::watch::Sender<()>);

impl Default for Rescan {
    fn default() -> Self {
        Self(tokio::sync::watch::Sender::new(()))
    }
}

impl Rescan {
    /// A receiver for one more [`poll`].
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<()> {
        self.0.subscribe()
    }

    /// Every poll scans at once.
    pub fn now(&self) {
        self.0.send_replace(());
    }
}

/// Whether a file stem is a usable plugin or webhook name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now(entries: &[(&str, u32)]) -> BTreeMap<String, u32> {
        entries.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
    }

    #[test]
    fn a_change_is_taken_once_it_holds_still() {
        let mut settle = Settle::default();
        assert_eq!(
            settle.changes(now(&[("a", 1)]), false),
            [FileChange::Changed("a".into(), 1)],
            "the first look takes files as they are"
        );
        assert_eq!(settle.changes(now(&[("a", 1)]), true), []);
        assert_eq!(settle.changes(now(&[("a", 2)]), true), [], "still changing");
        assert_eq!(
            settle.changes(now(&[("a", 2)]), true),
            [FileChange::Changed("a".into(), 2)]
        );
        assert_eq!(
            settle.changes(now(&[]), true),
            [FileChange::Gone("a".into())]
        );
        assert_eq!(settle.changes(now(&[]), true), []);
    }
}
