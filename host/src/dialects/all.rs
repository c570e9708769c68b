//! The webhooks of every dialect together: what `/v1/webhooks` reads by
//! id whatever the dialect, and what the followers of the shared stores
//! keep in step.

use std::sync::Arc;

use serde_json::Value;

use super::{Iottly, Mainflux, Particle};
use crate::webhooks::builtin::BuiltinPlugin;
use crate::webhooks::{Collection, Dialect, Runner, Store, WebhookError};

/// The webhooks of each dialect.
#[derive(Debug)]
pub struct Webhooks {
    /// Particle-style webhooks.
    pub particle: Arc<Collection<Particle>>,
    /// Iottly-style webhooks.
    pub iottly: Arc<Collection<Iottly>>,
    /// Mainflux-style webhooks.
    pub mainflux: Arc<Collection<Mainflux>>,
}

/// Where the webhooks of each dialect are kept.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Particle-style webhooks (`webhooks`).
    pub particle: Store,
    /// Iottly-style webhooks.
    pub iottly: Store,
    /// Mainflux-style webhooks.
    pub mainflux: Store,
}

impl Webhooks {
    /// Puts the webhooks of `stores` in force through `runner`.
    pub async fn open(stores: Stores, runner: &Runner) -> Result<Self, WebhookError> {
        Ok(Self {
            particle: Arc::new(Collection::open(stores.particle, runner).await?),
            iottly: Arc::new(Collection::open(stores.iottly, runner).await?),
            mainflux: Arc::new(Collection::open(stores.mainflux, runner).await?),
        })
    }

    /// The dialect of webhook `id`, if there is one.
    pub fn dialect_of(&self, id: &str) -> Option<BuiltinPlugin> {
        if self.particle.get(id).is_some() {
            Some(BuiltinPlugin::Particle)
        } else if self.iottly.get(id).is_some() {
            Some(BuiltinPlugin::Iottly)
        } else if self.mainflux.get(id).is_some() {
            Some(BuiltinPlugin::Mainflux)
        } else {
            None
        }
    }

    /// The view of webhook `id` with its `"dialect"`, whatever it is.
    pub fn view(&self, id: &str) -> Option<Value> {
        let kind = self.dialect_of(id)?;
        let view = match kind {
            BuiltinPlugin::Particle => self.particle.view(id),
            BuiltinPlugin::Iottly => self.iottly.view(id),
            BuiltinPlugin::Mainflux => self.mainflux.view(id),
        };
        view.map(|view| with_dialect(view, kind))
    }

    /// The views of every webhook with their `"dialect"`, oldest first.
    pub fn views(&self) -> Vec<Value> {
        let mut all: Vec<(String, Value)> = dated(&self.particle)
            .chain(dated(&self.iottly))
            .chain(dated(&self.mainflux))
            .collect();
        // Stable: each dialect's own order stays among equal times.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.into_iter().map(|(_, view)| view).collect()
    }

    /// Deletes webhook `id`, whatever its dialect.
    pub async fn delete(&self, id: &str) -> Result<(), WebhookError> {
        match self.dialect_of(id) {
            Some(BuiltinPlugin::Iottly) => self.iottly.delete(id).await,
            Some(BuiltinPlugin::Mainflux) => self.mainflux.delete(id).await,
            Some(BuiltinPlugin::Particle) | None => self.particle.delete(id).await,
        }
    }

    /// The delivery log of webhook `id`, whatever its dialect.
    pub fn log(&self, id: &str) -> Option<Value> {
        self.particle
            .log(id)
            .or_else(|| self.iottly.log(id))
            .or_else(|| self.mainflux.log(id))
    }
}

/// The views of `collection`'s webhooks with their dialect, and when each
/// was made.
fn dated<D: Dialect>(collection: &Collection<D>) -> impl Iterator<Item = (String, Value)> {
    collection
        .dated_views()
        .into_iter()
        .map(|(at, view)| (at, with_dialect(view, D::KIND)))
}

/// `view` with `"dialect"` added.
pub fn with_dialect(mut view: Value, kind: BuiltinPlugin) -> Value {
    if let Value::Object(fields) = &mut view {
        fields.insert("dialect".to_owned(), kind.name().into());
    }
    view
}
