//! The webhooks in force: a snapshot the pipeline reads without locking,
//! replaced whole whenever a plugin is added, replaced or removed, and the
//! load status of every plugin file for the API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use serde::Serialize;

use super::manifest::Manifest;
use crate::event::Event;
use crate::runtime::Plugin;

/// One webhook: a plugin, its event filter and its outbound policy.
#[derive(Debug)]
pub struct Hook {
    /// The plugin's name (file stem).
    pub name: Arc<str>,
    /// Its validated manifest.
    pub manifest: Manifest,
    /// The compiled plugin.
    pub plugin: Plugin,
}

/// What `GET /v1/plugins` shows of one plugin.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PluginStatus {
    /// The plugin's name.
    pub name: String,
    /// `running`, or `failed` when no version of it runs.
    pub state: &'static str,
    /// SHA-256 of the running wasm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When the running version was loaded (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<String>,
    /// The event prefix of the running version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Why the last load failed; the previous version, if any, still runs.
    pub error: Option<String>,
}

impl PluginStatus {
    /// A plugin of which no version runs, and why.
    fn failed(name: &str, error: String) -> Self {
        Self {
            name: name.to_owned(),
            state: "failed",
            digest: None,
            loaded_at: None,
            event: None,
            error: Some(error),
        }
    }
}

/// The set of webhooks.
#[derive(Debug, Default)]
pub struct Registry {
    hooks: ArcSwap<Vec<Arc<Hook>>>,
    status: Mutex<BTreeMap<String, PluginStatus>>,
}

impl Registry {
    /// The webhooks whose filter matches `event`, in name order.
    pub fn matching(&self, event: &Event) -> Vec<Arc<Hook>> {
        self.hooks
            .load()
            .iter()
            .filter(|h| h.manifest.matches(&event.device, event.name.as_str()))
            .cloned()
            .collect()
    }

    /// The load status of every plugin, in name order.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        self.status_map().values().cloned().collect()
    }

    /// The counters of the running version of plugin `name`.
    pub fn stats(&self, name: &str) -> Option<Arc<crate::runtime::PluginStats>> {
        self.hooks
            .load()
            .iter()
            .find(|h| &*h.name == name)
            .map(|h| h.plugin.stats_handle())
    }

    /// How many plugins run.
    pub fn running(&self) -> usize {
        self.hooks.load().len()
    }

    /// Puts `hook` in force, replacing any previous version of it.
    pub fn install(&self, hook: Hook) {
        let status = PluginStatus {
            name: hook.name.to_string(),
            state: "running",
            digest: Some(hook.plugin.digest().to_owned()),
            loaded_at: Some(
                humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            ),
            event: Some(hook.manifest.event.clone()),
            error: None,
        };
        let name = hook.name.clone();
        let hook = Arc::new(hook);
        self.hooks.rcu(|hooks| {
            let mut next: Vec<Arc<Hook>> =
                hooks.iter().filter(|h| h.name != name).cloned().collect();
            next.push(hook.clone());
            next.sort_by(|a, b| a.name.cmp(&b.name));
            next
        });
        self.status_map().insert(name.to_string(), status);
    }

    /// Records a failed load; a previous version keeps running.
    pub fn failed(&self, name: &str, error: String) {
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
        self.hooks.rcu(|hooks| {
            hooks
                .iter()
                .filter(|h| &*h.name != name)
                .cloned()
                .collect::<Vec<_>>()
        });
        let mut map = self.status_map();
        match reason {
            Some(error) => map.insert(name.to_owned(), PluginStatus::failed(name, error)),
            None => map.remove(name),
        };
    }

    fn status_map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PluginStatus>> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
