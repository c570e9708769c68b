//! Finding the webhooks of an event without looking at every webhook.
//!
//! A webhook matches an event whose name starts with its prefix, so the
//! candidates of an event are the webhooks filed under the prefixes of its
//! name: one hash lookup per distinct prefix length in use, however many
//! webhooks there are. Built again, whole, whenever the set changes.

use std::collections::HashMap;
use std::sync::Arc;

use super::hook::Hook;
use crate::event::Event;
use crate::fleet::GroupId;

/// The webhooks in force, filed by event prefix.
#[derive(Debug, Default)]
pub struct PrefixIndex {
    by_prefix: HashMap<Box<str>, Vec<Arc<Hook>>>,
    /// The distinct prefix lengths, shortest first.
    lengths: Vec<usize>,
}

impl PrefixIndex {
    /// Files `hooks` (in name order) by prefix.
    pub fn build(hooks: &[Arc<Hook>]) -> Self {
        let mut by_prefix: HashMap<Box<str>, Vec<Arc<Hook>>> = HashMap::new();
        for hook in hooks {
            by_prefix
                .entry(hook.filter.event.as_str().into())
                .or_default()
                .push(hook.clone());
        }
        let mut lengths: Vec<usize> = by_prefix.keys().map(|p| p.len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        Self { by_prefix, lengths }
    }

    /// The webhooks whose filter matches `event` of a device in `group`,
    /// in name order.
    pub fn matching(&self, event: &Event, group: Option<&GroupId>) -> Vec<Arc<Hook>> {
        let name = event.name.as_str();
        let mut out = Vec::new();
        for &len in &self.lengths {
            if len > name.len() {
                break;
            }
            let Some(prefix) = name.get(..len) else {
                continue;
            };
            if let Some(hooks) = self.by_prefix.get(prefix) {
                out.extend(
                    hooks
                        .iter()
                        .filter(|h| h.filter.matches(&event.device, group, name))
                        .cloned(),
                );
            }
        }
        if out.len() > 1 {
            out.sort_by(|a, b| a.name.cmp(&b.name));
        }
        out
    }
}
