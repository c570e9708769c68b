//! The webhooks in force: a snapshot the pipeline reads without locking,
//! replaced whole whenever a plugin or webhook is added, replaced or
//! removed, and the load status of every plugin file for the API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use serde::Serialize;

use super::hook::{Filter, Hook, Retired};
use super::index::PrefixIndex;
use crate::event::Event;
use crate::fleet::GroupId;
use crate::runtime::PluginStats;

/// What `GET /v1/plugins` shows of one plugin.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PluginStatus {
    /// The plugin's name.
    pub name: String,
    /// `running`; `suspended` when the running version failed too many
    /// calls in a row and is not called; `failed` when no version of it
    /// runs.
    pub state: &'static str,
    /// SHA-256 of the running wasm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The world the running version implements, as
    /// `edgehook:webhook@0.2.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
    /// When the running version was loaded (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<String>,
    /// The event prefix of the running version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Why the last load failed; the previous version, if any, still runs.
    pub error: Option<String>,
    /// Why the running version is suspended, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_reason: Option<String>,
    /// Why the running version is disabled after failed deliveries, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

impl PluginStatus {
    /// A plugin of which no version runs, and why.
    fn failed(name: &str, error: String) -> Self {
        Self {
            name: name.to_owned(),
            state: "failed",
            digest: None,
            world: None,
            loaded_at: None,
            event: None,
            error: Some(error),
            suspended_reason: None,
            disabled_reason: None,
        }
    }
}

/// A plugin whose manifest is good but whose wasm did not load, and of
/// which no version runs: its events are answered with why.
#[derive(Debug)]
pub struct Unloaded {
    /// The plugin's name.
    pub name: Arc<str>,
    /// Its manifest's filter.
    pub filter: Filter,
    /// Why it did not load.
    pub reason: Arc<str>,
}

impl Unloaded {
    /// The device's hook-error for an event of this plugin.
    pub fn message(&self) -> String {
        format!("plugin {} is not running: {}", self.name, self.reason)
    }
}

/// The set of webhooks.
#[derive(Debug, Default)]
pub struct Registry {
    hooks: ArcSwap<Vec<Arc<Hook>>>,
    /// `hooks` filed by prefix, for the pipeline.
    index: ArcSwap<PrefixIndex>,
    /// Held by whoever changes `hooks`, so that `index` follows in order.
    writer: Mutex<()>,
    unloaded: ArcSwap<Vec<Arc<Unloaded>>>,
    status: Mutex<BTreeMap<String, PluginStatus>>,
}

impl Registry {
    /// The webhooks whose filter matches `event` of a device in `group`,
    /// in name order.
    pub fn matching(&self, event: &Event, group: Option<&GroupId>) -> Vec<Arc<Hook>> {
        self.index.load().matching(event, group)
    }

    /// The plugins that failed to load and match `event` of a device in
    /// `group`.
    pub fn unloaded_matching(&self, event: &Event, group: Option<&GroupId>) -> Vec<Arc<Unloaded>> {
        let unloaded = self.unloaded.load();
        if unloaded.is_empty() {
            return Vec::new();
        }
        unloaded
            .iter()
            .filter(|u| u.filter.matches(&event.device, group, event.name.as_str()))
            .cloned()
            .collect()
    }

    /// The status of every plugin file, in name order; a running version
    /// that is suspended shows as `suspended`, with the reason.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let hooks = self.hooks.load();
        self.status_map()
            .values()
            .cloned()
            .map(|mut status| {
                let running = hooks.iter().find(|h| *h.name == *status.name);
                if status.state == "running"
                    && let Some(reason) = running.and_then(|h| h.plugin.suspended())
                {
                    status.state = "suspended";
                    status.suspended_reason = Some(reason);
                } else if status.state == "running"
                    && let Some(reason) = running.and_then(|h| h.disabled())
                {
                    status.state = "disabled";
                    status.disabled_reason = Some(reason);
                }
                status
            })
            .collect()
    }

    /// The counters of the running version of plugin `name`.
    pub fn stats(&self, name: &str) -> Option<Arc<PluginStats>> {
        self.hooks
            .load()
            .iter()
            .find(|h| &*h.name == name)
            .map(|h| h.plugin.stats_handle())
    }

    /// Every webhook in force (plugin files and Particle-style webhooks),
    /// in name order.
    pub fn hooks(&self) -> Arc<Vec<Arc<Hook>>> {
        self.hooks.load_full()
    }

    /// How many plugin files run.
    pub fn running(&self) -> usize {
        self.status_map()
            .values()
            .filter(|s| s.state == "running")
            .count()
    }

    /// Puts a plugin file's `hook` in force, replacing any previous version
    /// of it, and records it as running.
    pub fn install(&self, hook: Hook) {
        let status = PluginStatus {
            name: hook.name.to_string(),
            state: "running",
            digest: Some(hook.plugin.digest().to_owned()),
            world: Some(format!("edgehook:webhook@{}", hook.plugin.world_version())),
            loaded_at: Some(
                humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            ),
            event: Some(hook.filter.event.clone()),
            error: None,
            suspended_reason: None,
            disabled_reason: None,
        };
        let name = hook.name.to_string();
        self.put(hook);
        self.forget_unloaded(&name);
        self.status_map().insert(name, status);
    }

    /// Puts `hook` in force, replacing the one of the same name.
    pub fn put(&self, hook: Hook) {
        let hook = Arc::new(hook);
        self.change_hooks(&hook.name.clone(), Some(hook));
    }

    /// Puts `hook` in force in place of a webhook definition of the same
    /// name, which is retired: its deliveries waiting to try again make no
    /// further attempt with what the old definition rendered (its
    /// destination, its secrets).
    pub fn replace(&self, hook: Hook) {
        let hook = Arc::new(hook);
        if let Some(old) = self.change_hooks(&hook.name.clone(), Some(hook)) {
            old.retirement.retire(Retired::Replaced);
        }
    }

    /// Takes the hook named `name` out of service, if it is in force, and
    /// retires it for `why`: its deliveries in progress make no further
    /// attempt.
    pub fn take(&self, name: &str, why: Retired) {
        if let Some(old) = self.change_hooks(name, None) {
            old.retirement.retire(why);
        }
    }

    /// Puts `new` in place of the hook named `name` (or none); the hook
    /// that was there.
    fn change_hooks(&self, name: &str, new: Option<Arc<Hook>>) -> Option<Arc<Hook>> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.hooks.load().iter().find(|h| &*h.name == name).cloned();
        replace_named(&self.hooks, name, new, |h| &h.name);
        self.index
            .store(Arc::new(PrefixIndex::build(&self.hooks.load())));
        old
    }

    /// Records a failed load; a previous version keeps running. When none
    /// runs and the manifest was good (`filter`), the plugin's events are
    /// answered with a hook-error that gives `error`.
    pub fn failed(&self, name: &str, error: String, filter: Option<Filter>) {
        let running = self.hooks.load().iter().any(|h| &*h.name == name);
        match filter {
            Some(filter) if !running => {
                let unloaded = Arc::new(Unloaded {
                    name: name.into(),
                    filter,
                    reason: error.as_str().into(),
                });
                replace_named(&self.unloaded, name, Some(unloaded), |u| &u.name);
            }
            _ => self.forget_unloaded(name),
        }
        let mut map = self.status_map();
        match map.get_mut(name) {
            Some(status) => status.error = Some(error),
            None => {
                map.insert(name.to_owned(), PluginStatus::failed(name, error));
            }
        }
    }

    /// Takes a plugin out of service. With `reason`, it stays listed as
    /// failed with that reason; without, it disappears.
    pub fn remove(&self, name: &str, reason: Option<String>) {
        self.take(name, Retired::Removed);
        self.forget_unloaded(name);
        let mut map = self.status_map();
        match reason {
            Some(error) => map.insert(name.to_owned(), PluginStatus::failed(name, error)),
            None => map.remove(name),
        };
    }

    fn forget_unloaded(&self, name: &str) {
        if self.unloaded.load().iter().any(|u| &*u.name == name) {
            replace_named(&self.unloaded, name, None, |u| &u.name);
        }
    }

    fn status_map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PluginStatus>> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Replaces the entry of `list` named `name` with `new`, or removes it
/// with `None`; the list stays in name order.
fn replace_named<T>(
    list: &ArcSwap<Vec<Arc<T>>>,
    name: &str,
    new: Option<Arc<T>>,
    name_of: fn(&T) -> &str,
) {
    list.rcu(|all| {
        let mut next: Vec<Arc<T>> = all.iter().filter(|e| name_of(e) != name).cloned().collect();
        if let Some(new) = &new {
            next.push(new.clone());
            next.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        }
        next
    });
}
