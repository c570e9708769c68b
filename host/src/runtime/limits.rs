//! A plugin's limits as each call finds them: the manifest's own values
//! over the host's defaults, which a reload (SIGHUP) changes in place while
//! every plugin stays loaded.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Limits, RawLimits};

/// The host's `[limits]`, shared by every plugin; [`Self::set`] applies
/// new ones from the next call on.
#[derive(Debug, Clone)]
pub struct DefaultLimits(Arc<ArcSwap<Limits>>);

impl DefaultLimits {
    /// Defaults in force until [`Self::set`].
    pub fn new(limits: Limits) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(limits)))
    }

    /// Puts `limits` in force for every plugin's next call.
    pub fn set(&self, limits: Limits) {
        self.0.store(Arc::new(limits));
    }

    /// The defaults in force.
    pub fn get(&self) -> Limits {
        **self.0.load()
    }
}

/// One plugin's limits: its own (checked when its manifest was read) over
/// the host's defaults.
#[derive(Debug, Clone)]
pub struct PluginLimits {
    own: RawLimits,
    defaults: DefaultLimits,
}

impl PluginLimits {
    /// `own` over `defaults`.
    pub fn new(own: RawLimits, defaults: DefaultLimits) -> Self {
        Self { own, defaults }
    }

    /// The host's defaults, for a plugin without limits of its own.
    pub fn defaults(defaults: DefaultLimits) -> Self {
        Self::new(RawLimits::default(), defaults)
    }

    /// The limits in force now.
    pub fn current(&self) -> Limits {
        self.own.over(&self.defaults.get())
    }
}

impl From<Limits> for PluginLimits {
    /// Limits that never change.
    fn from(limits: Limits) -> Self {
        Self::defaults(DefaultLimits::new(limits))
    }
}
