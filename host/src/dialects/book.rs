//! The webhooks of one dialect: each definition is checked once by its
//! dialect, kept in the data directory (`data/{dialect}/{id}.json`), and put
//! in force in the registry under `webhook/{id}` on the dialect's built-in
//! plugin, one-way, with its own delivery log.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt as _;
use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::delivery::SendOptions;
use crate::plugins::hook::Retirement;
use crate::plugins::{Filter, Hook, HostPattern, Registry, Retired};
use crate::streak::Streak;
use crate::webhooks::DeliveryLog;
use crate::webhooks::builtin::{Builtin, Kind};
use crate::webhooks::catalog::{hook_name, new_id, now};
use crate::webhooks::store::{Remote, Store, Stored};

/// Why a dialect's webhook operation was refused; the message is what the
/// API shows.
#[derive(Debug, thiserror::Error)]
pub enum DialectError {
    /// The body is not what the route takes.
    #[error("{0}")]
    Body(String),
    /// A secret sent back masked for a new destination.
    #[error(transparent)]
    Moved(#[from] Box<crate::secrets::destination::Moved>),
    /// A field is not usable.
    #[error("`{field}`: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// No project (group) has this id.
    #[error("no project with id {0}")]
    ProjectNotFound(String),
    /// No thing (device) has this id.
    #[error("no thing with id {0}")]
    ThingNotFound(String),
    /// No group has this id.
    #[error("no group with id {0}")]
    GroupNotFound(String),
    /// No webhook of this dialect has this id.
    #[error("no webhook with id {0}")]
    NotFound(String),
    /// The project has as many webhooks as it may.
    #[error("project {project} already has {max} webhooks, the most it may have")]
    Full {
        /// The project.
        project: String,
        /// The limit (`iottly_max_webhooks`).
        max: usize,
    },
    /// The data directory could not be written or the plugin not loaded.
    #[error("{0}")]
    Internal(String),
}

/// What a dialect tells [`Book`].
pub trait Dialect: std::fmt::Debug + Send + Sync + 'static {
    /// The built-in plugin; its name is also the store's directory.
    const KIND: Kind;
    /// A checked definition, as stored.
    type Definition: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync;
    /// The events that run it (the device or group scope is here).
    fn filter(definition: &Self::Definition) -> Filter;
    /// The plugin's configuration.
    fn config(definition: &Self::Definition) -> Value;
    /// What the API shows of webhook `id`, secrets masked.
    fn view(id: &str, definition: &Self::Definition) -> Value;
}

#[derive(Debug)]
struct Entry<D: Dialect> {
    definition: D::Definition,
    created_at: String,
    /// The shared store's revision it came from (0 in files).
    revision: u64,
    log: Arc<DeliveryLog>,
}

/// The webhooks of dialect `D`, by id.
#[derive(Debug)]
pub struct Book<D: Dialect> {
    registry: Arc<Registry>,
    store: Store,
    builtin: Arc<Builtin>,
    entries: Mutex<BTreeMap<String, Entry<D>>>,
    /// Serializes changes, so the store, the registry and `entries` agree.
    writer: tokio::sync::Mutex<()>,
}

impl<D: Dialect> Book<D> {
    /// Puts the webhooks of `store` in force; one that no longer reads is
    /// reported and left in the store.
    pub async fn open(
        store: Store,
        registry: Arc<Registry>,
        builtin: Arc<Builtin>,
    ) -> Result<Self, DialectError> {
        let all = store.load_all().await.map_err(internal)?;
        let book = Self {
            registry,
            store,
            builtin,
            entries: Mutex::default(),
            writer: tokio::sync::Mutex::new(()),
        };
        for stored in all {
            book.load(stored, Arc::default()).await;
        }
        Ok(book)
    }

    /// Puts a stored webhook in force, or says why it is not.
    async fn load(&self, stored: Stored, log: Arc<DeliveryLog>) {
        let id = stored.id.clone();
        let parsed = serde_json::from_value(Value::Object(stored.definition))
            .map_err(|e| DialectError::Internal(e.to_string()));
        let activated = match parsed {
            Ok(definition) => {
                let at = (stored.created_at, stored.revision);
                self.activate(id.clone(), definition, at, log).await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = activated {
            tracing::error!(webhook = %id, dialect = D::KIND.name(), "stored webhook not loaded: {err}");
        }
    }

    /// Puts the changes of the shared store in force as any host makes
    /// them, until the store's watch ends; one already in force (by its
    /// revision: this host's own) changes nothing.
    pub async fn follow(&self, mut changes: BoxStream<'static, Remote>) {
        while let Some(Remote {
            id,
            stored,
            revision,
        }) = changes.next().await
        {
            let _writer = self.writer.lock().await;
            let current = self.entries().get(&id).map(|e| (e.revision, e.log.clone()));
            match (stored, current) {
                (_, Some((now, _))) if now >= revision => {}
                (Some(stored), current) => {
                    let log = current.map(|(_, log)| log).unwrap_or_default();
                    self.load(stored, log).await;
                }
                (None, Some(_)) => {
                    self.registry.take(&hook_name(&id), Retired::Deleted);
                    self.entries().remove(&id);
                }
                (None, None) => {}
            }
        }
    }

    /// Creates a webhook once `admit` (given every definition there is)
    /// lets it in; its new id.
    pub async fn create(
        &self,
        definition: D::Definition,
        admit: impl FnOnce(&mut dyn Iterator<Item = &D::Definition>) -> Result<(), DialectError>,
    ) -> Result<String, DialectError> {
        let _writer = self.writer.lock().await;
        admit(&mut self.entries().values().map(|e| &e.definition))?;
        let id = new_id();
        self.save_and_activate(id.clone(), definition, now(), Arc::default())
            .await?;
        Ok(id)
    }

    /// Replaces the definition of webhook `id` with what `change` makes of
    /// it; the new definition.
    pub async fn replace(
        &self,
        id: &str,
        change: impl FnOnce(&D::Definition) -> Result<D::Definition, DialectError>,
    ) -> Result<D::Definition, DialectError> {
        let _writer = self.writer.lock().await;
        let (old, created_at, log) = self
            .entries()
            .get(id)
            .map(|e| (e.definition.clone(), e.created_at.clone(), e.log.clone()))
            .ok_or_else(|| DialectError::NotFound(id.to_owned()))?;
        let new = change(&old)?;
        self.save_and_activate(id.to_owned(), new.clone(), created_at, log)
            .await?;
        Ok(new)
    }

    /// Deletes webhook `id`.
    pub async fn delete(&self, id: &str) -> Result<(), DialectError> {
        let _writer = self.writer.lock().await;
        if !self.entries().contains_key(id) {
            return Err(DialectError::NotFound(id.to_owned()));
        }
        self.store.delete(id).await.map_err(internal)?;
        self.registry.take(&hook_name(id), Retired::Deleted);
        self.entries().remove(id);
        Ok(())
    }

    /// The definition of webhook `id`.
    pub fn get(&self, id: &str) -> Option<D::Definition> {
        self.entries().get(id).map(|e| e.definition.clone())
    }

    /// The webhooks `keep` keeps, oldest first, with their ids.
    pub fn list(&self, keep: impl Fn(&D::Definition) -> bool) -> Vec<(String, D::Definition)> {
        self.oldest_first(|id, e| keep(&e.definition).then(|| (id.clone(), e.definition.clone())))
    }

    /// The views of every webhook, oldest first, each with when it was
    /// made (RFC 3339).
    pub fn dated_views(&self) -> Vec<(String, Value)> {
        self.oldest_first(|id, e| Some((e.created_at.clone(), D::view(id, &e.definition))))
    }

    /// The view of webhook `id`.
    pub fn view(&self, id: &str) -> Option<Value> {
        self.entries().get(id).map(|e| D::view(id, &e.definition))
    }

    /// What `pick` makes of the webhooks, oldest first (ties by id).
    fn oldest_first<T>(&self, pick: impl Fn(&String, &Entry<D>) -> Option<T>) -> Vec<T> {
        let entries = self.entries();
        let mut all: Vec<(&String, &Entry<D>)> = entries.iter().collect();
        all.sort_by(|a, b| a.1.created_at.cmp(&b.1.created_at).then(a.0.cmp(b.0)));
        all.into_iter().filter_map(|(id, e)| pick(id, e)).collect()
    }

    /// The delivery log of webhook `id`.
    pub fn log(&self, id: &str) -> Option<Value> {
        self.entries().get(id).map(|e| e.log.to_json())
    }

    /// Callers hold `writer`.
    async fn save_and_activate(
        &self,
        id: String,
        definition: D::Definition,
        created_at: String,
        log: Arc<DeliveryLog>,
    ) -> Result<(), DialectError> {
        let Value::Object(map) = serde_json::to_value(&definition).map_err(internal)? else {
            return Err(DialectError::Internal(
                "a definition is a JSON object".to_owned(),
            ));
        };
        let stored = Stored {
            id: id.clone(),
            created_at: created_at.clone(),
            definition: map,
            revision: 0,
        };
        let revision = self.store.save(&stored).await.map_err(internal)?;
        self.activate(id, definition, (created_at, revision), log)
            .await
    }

    /// Puts a webhook in force; `(created_at, revision)` say when it was
    /// made and which revision of the shared store it is.
    async fn activate(
        &self,
        id: String,
        definition: D::Definition,
        (created_at, revision): (String, u64),
        log: Arc<DeliveryLog>,
    ) -> Result<(), DialectError> {
        let name = hook_name(&id);
        let plugin = self
            .builtin
            .plugin(D::KIND)
            .await
            .map_err(DialectError::Internal)?;
        self.registry.replace(Hook {
            plugin: plugin.configured(&name, &D::config(&definition)),
            name: name.into(),
            filter: D::filter(&definition),
            // The URL is checked as http(s) when it is created; the
            // private-network guard still applies to it.
            allowed_hosts: vec![HostPattern::Any],
            send: SendOptions::default(),
            log: log.clone(),
            failures: Streak::default(),
            one_way: true,
            retirement: Retirement::default(),
        });
        self.entries().insert(
            id,
            Entry {
                definition,
                created_at,
                revision,
                log,
            },
        );
        Ok(())
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry<D>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn internal(err: impl std::fmt::Display) -> DialectError {
    DialectError::Internal(err.to_string())
}

/// Checks `url`: an absolute http(s) URL of at most [`MAX_URL_LEN`] bytes.
pub fn http_url(url: &str) -> Result<(), DialectError> {
    let invalid = |reason: String| DialectError::Invalid {
        field: "url",
        reason,
    };
    if url.len() > MAX_URL_LEN {
        return Err(invalid(format!("longer than {MAX_URL_LEN} bytes")));
    }
    // Shown as the views show it: it may hold credentials.
    let shown = || crate::secrets::url(url);
    let parsed =
        url::Url::parse(url).map_err(|e| invalid(format!("{:?} is not a URL: {e}", shown())))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(format!("{:?} is not an http(s) URL", shown())));
    }
    Ok(())
}

/// Checks custom request headers: valid HTTP names and values, each at
/// most [`MAX_HEADER_LEN`] bytes.
pub fn headers(headers: &BTreeMap<String, String>) -> Result<(), DialectError> {
    let invalid = |reason: String| DialectError::Invalid {
        field: "headers",
        reason,
    };
    for (name, value) in headers {
        if name.len() + value.len() > MAX_HEADER_LEN {
            return Err(invalid(format!(
                "{name:?} is longer than {MAX_HEADER_LEN} bytes"
            )));
        }
        http::HeaderName::try_from(name.as_str())
            .map_err(|_| invalid(format!("{name:?} is not a header name")))?;
        http::HeaderValue::try_from(value.as_str())
            .map_err(|_| invalid(format!("the value of {name:?} is not a header value")))?;
    }
    Ok(())
}

/// Checks a free-text field against [`MAX_TEXT_LEN`].
pub fn text(field: &'static str, value: &str) -> Result<(), DialectError> {
    if value.len() > MAX_TEXT_LEN {
        return Err(DialectError::Invalid {
            field,
            reason: format!("longer than {MAX_TEXT_LEN} bytes"),
        });
    }
    Ok(())
}

/// Longest webhook URL taken, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Longest custom header (name and value) taken, in bytes.
pub const MAX_HEADER_LEN: usize = 4096;
/// Longest description, name or channel taken, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
