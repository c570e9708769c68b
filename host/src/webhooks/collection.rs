//! The webhooks of one dialect, by id: each definition checked once by its
//! dialect when it arrives, kept in its store (or read from a file of the
//! webhooks directory), and put in force in the registry under
//! `webhook/{id}` on the dialect's built-in plugin, with its own delivery
//! log. Particle, Iottly and Mainflux webhooks are each a
//! [`Collection`] of their [`Dialect`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::StreamExt as _;
use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::builtin::{Builtin, BuiltinPlugin};
use super::error::WebhookError;
use super::ids::{hook_name, new_id, now};
use super::store::{Remote, Store, StoredWebhook};
use crate::delivery::SendOptions;
use crate::event::Event;
use crate::exchange::HookRequest;
use crate::hooks::{DeliveryLog, Filter, Hook, HostPattern, Registry, Retired, Retirement};
use crate::stores::Flags;
use crate::streak::Streak;

/// What a dialect tells its [`Collection`].
pub trait Dialect: std::fmt::Debug + Send + Sync + 'static {
    /// The built-in plugin that runs its webhooks.
    const KIND: BuiltinPlugin;
    /// Whether its webhooks send nothing back to the device (the answer is
    /// not published).
    const ONE_WAY: bool;
    /// A definition, as stored.
    type Definition: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync;
    /// How the host runs `definition`, or why it cannot.
    fn running(definition: &Self::Definition) -> Result<Running, WebhookError>;
    /// The plugin's configuration.
    fn config(definition: &Self::Definition) -> Value;
    /// What the API shows of webhook `id`, made at `created_at` (RFC 3339),
    /// secrets masked.
    fn view(id: &str, created_at: &str, definition: &Self::Definition) -> Value;
}

/// How the host runs one definition.
#[derive(Debug, Default)]
pub struct Running {
    /// The events that run it.
    pub filter: Filter,
    /// How its requests are sent.
    pub send: SendOptions,
    /// Taken out of service while kept (`disabled` in Particle's).
    pub disabled: bool,
}

/// Where a webhook came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// The API (or another host, through the shared store).
    Api,
    /// A file of the webhooks directory.
    File(PathBuf),
}

#[derive(Debug)]
struct Entry<D: Dialect> {
    definition: D::Definition,
    created_at: String,
    /// The shared store's revision it came from (0 in files).
    revision: u64,
    source: Source,
    log: Arc<DeliveryLog>,
    /// Why the latest version of its file was not loaded, while the
    /// previous version keeps running.
    file_error: Option<String>,
}

impl<D: Dialect> Entry<D> {
    fn view(&self, id: &str) -> Value {
        let mut view = D::view(id, &self.created_at, &self.definition);
        if let (Some(err), Value::Object(fields)) = (&self.file_error, &mut view) {
            fields.insert("file_error".into(), Value::String(err.clone()));
        }
        view
    }
}

/// A definition on its way in, with what it keeps of its previous version.
struct Incoming<D: Dialect> {
    id: String,
    definition: D::Definition,
    created_at: String,
    revision: u64,
    source: Source,
    log: Arc<DeliveryLog>,
}

/// What puts webhooks in force, for every collection.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The webhooks in force.
    pub registry: Arc<Registry>,
    /// The built-in plugins that run them.
    pub builtin: Arc<Builtin>,
    /// Their auto-disable, as every host sees it.
    pub flags: Arc<dyn Flags>,
}

/// The webhooks of dialect `D`, by id.
#[derive(Debug)]
pub struct Collection<D: Dialect> {
    registry: Arc<Registry>,
    store: Store,
    builtin: Arc<Builtin>,
    flags: Arc<dyn Flags>,
    entries: Mutex<BTreeMap<String, Entry<D>>>,
    /// Serializes changes, so the store, the registry and `entries` agree.
    writer: tokio::sync::Mutex<()>,
}

impl<D: Dialect> Collection<D> {
    /// Puts the webhooks of `store` in force; one that no longer reads or
    /// checks is reported and left in the store.
    pub async fn open(store: Store, runner: &Runner) -> Result<Self, WebhookError> {
        let all = store
            .load_all()
            .await
            .map_err(|source| WebhookError::Store {
                id: "*".to_owned(),
                source,
            })?;
        let collection = Self {
            registry: runner.registry.clone(),
            store,
            builtin: runner.builtin.clone(),
            flags: runner.flags.clone(),
            entries: Mutex::default(),
            writer: tokio::sync::Mutex::new(()),
        };
        for stored in all {
            collection.load(stored, Arc::default()).await;
        }
        Ok(collection)
    }

    /// Puts a stored webhook in force, or says why it is not.
    async fn load(&self, stored: StoredWebhook, log: Arc<DeliveryLog>) {
        let id = stored.id.clone();
        let loaded = match checked::<D>(Value::Object(stored.definition)) {
            Ok((definition, running)) => {
                let incoming = Incoming {
                    id: stored.id,
                    definition,
                    created_at: stored.created_at,
                    revision: stored.revision,
                    source: Source::Api,
                    log,
                };
                self.activate(incoming, running).await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = loaded {
            tracing::error!(webhook = %id, dialect = D::KIND.name(), "stored webhook not loaded: {err}");
        }
    }

    /// Puts the changes of the shared store in force as any host makes
    /// them, until the store's watch ends. A change already in force (this
    /// host's own, by its revision) changes nothing, and any later one
    /// takes effect even when it reads the same (a replace enables a
    /// disabled webhook again); a webhook of a file stays as its file says.
    pub async fn follow(&self, mut changes: BoxStream<'static, Remote>) {
        while let Some(Remote {
            id,
            stored,
            revision,
        }) = changes.next().await
        {
            let _writer = self.writer.lock().await;
            let current = self
                .entries()
                .get(&id)
                .map(|e| (e.source == Source::Api, e.revision, e.log.clone()));
            match (stored, current) {
                (_, Some((false, _, _))) => {}
                (_, Some((true, now, _))) if now >= revision => {}
                (Some(stored), current) => {
                    let log = current.map(|(_, _, log)| log).unwrap_or_default();
                    self.load(stored, log).await;
                }
                (None, Some(_)) => self.retire(&id, Retired::Deleted),
                (None, None) => {}
            }
        }
    }

    /// Creates a webhook once `admit` (given every definition there is)
    /// lets it in; its view, with its new id.
    pub async fn create(
        &self,
        definition: D::Definition,
        admit: impl FnOnce(&mut dyn Iterator<Item = &D::Definition>) -> Result<(), WebhookError>,
    ) -> Result<Value, WebhookError> {
        let _writer = self.writer.lock().await;
        admit(&mut self.entries().values().map(|e| &e.definition))?;
        let incoming = Incoming {
            id: new_id(),
            definition,
            created_at: now(),
            revision: 0,
            source: Source::Api,
            log: Arc::default(),
        };
        self.save_and_activate(incoming).await
    }

    /// Replaces the definition of webhook `id` with what `change` makes of
    /// the current one; its new view. A webhook of a file is changed there.
    pub async fn replace(
        &self,
        id: &str,
        change: impl FnOnce(&D::Definition) -> Result<D::Definition, WebhookError>,
    ) -> Result<Value, WebhookError> {
        let _writer = self.writer.lock().await;
        let (old, created_at, log) = self.api_entry(id, |e| {
            (e.definition.clone(), e.created_at.clone(), e.log.clone())
        })?;
        let incoming = Incoming {
            id: id.to_owned(),
            definition: change(&old)?,
            created_at,
            revision: 0,
            source: Source::Api,
            log,
        };
        self.save_and_activate(incoming).await
    }

    /// Deletes webhook `id`; a webhook of a file is deleted there.
    pub async fn delete(&self, id: &str) -> Result<(), WebhookError> {
        let _writer = self.writer.lock().await;
        self.api_entry(id, |_| ())?;
        self.store
            .delete(id)
            .await
            .map_err(|source| WebhookError::Store {
                id: id.to_owned(),
                source,
            })?;
        self.retire(id, Retired::Deleted);
        Ok(())
    }

    /// The definition of webhook `id`.
    pub fn get(&self, id: &str) -> Option<D::Definition> {
        self.entries().get(id).map(|e| e.definition.clone())
    }

    /// The view of webhook `id`.
    pub fn view(&self, id: &str) -> Option<Value> {
        self.entries().get(id).map(|e| e.view(id))
    }

    /// The webhooks `keep` keeps, oldest first, with their ids.
    pub fn list(&self, keep: impl Fn(&D::Definition) -> bool) -> Vec<(String, D::Definition)> {
        self.oldest_first(|id, e| keep(&e.definition).then(|| (id.clone(), e.definition.clone())))
    }

    /// The views of the webhooks `keep` keeps, oldest first.
    pub fn views(&self, keep: impl Fn(&D::Definition) -> bool) -> Vec<Value> {
        self.oldest_first(|id, e| keep(&e.definition).then(|| e.view(id)))
    }

    /// The views of every webhook, oldest first, each with when it was
    /// made (RFC 3339).
    pub fn dated_views(&self) -> Vec<(String, Value)> {
        self.oldest_first(|id, e| Some((e.created_at.clone(), e.view(id))))
    }

    /// How many webhooks there are.
    pub fn count(&self) -> usize {
        self.entries().len()
    }

    /// The delivery log of webhook `id`.
    pub fn log(&self, id: &str) -> Option<Value> {
        self.entries().get(id).map(|e| e.log.to_json())
    }

    /// Puts the webhook of file `path` in force as `id`, replacing its
    /// previous version; on error the previous version keeps running, and
    /// its view shows the error as `file_error`.
    pub async fn put_file(&self, id: &str, path: &Path, bytes: &[u8]) -> Result<(), WebhookError> {
        let result = self.load_file(id, path, bytes).await;
        if let Err(err) = &result
            && let Some(entry) = self.entries().get_mut(id)
            && matches!(entry.source, Source::File(_))
        {
            entry.file_error = Some(err.to_string());
        }
        result
    }

    async fn load_file(&self, id: &str, path: &Path, bytes: &[u8]) -> Result<(), WebhookError> {
        let (definition, running) = serde_json::from_slice(bytes)
            .map_err(|e| WebhookError::Invalid(format!("not valid JSON: {e}")))
            .and_then(checked::<D>)?;
        let _writer = self.writer.lock().await;
        let (created_at, log) = match self.entries().get(id) {
            Some(e) if e.source == Source::Api => {
                return Err(WebhookError::Invalid(format!(
                    "webhook id {id} is taken by a webhook created through the API"
                )));
            }
            Some(e) => (e.created_at.clone(), e.log.clone()),
            None => (now(), Arc::default()),
        };
        let incoming = Incoming {
            id: id.to_owned(),
            definition,
            created_at,
            revision: 0,
            source: Source::File(path.to_owned()),
            log,
        };
        self.activate(incoming, running).await
    }

    /// Takes the webhook of a removed file out of service.
    pub fn remove_file(&self, id: &str) {
        let of_file = self
            .entries()
            .get(id)
            .is_some_and(|e| matches!(e.source, Source::File(_)));
        if of_file {
            self.retire(id, Retired::Deleted);
        }
    }

    /// Callers hold `writer`.
    async fn save_and_activate(&self, incoming: Incoming<D>) -> Result<Value, WebhookError> {
        let store_error = |source| WebhookError::Store {
            id: incoming.id.clone(),
            source,
        };
        // Checked before it is kept: a definition that cannot run is refused.
        let running = D::running(&incoming.definition)?;
        let Value::Object(definition) =
            serde_json::to_value(&incoming.definition).map_err(|e| store_error(e.into()))?
        else {
            return Err(WebhookError::Internal(
                "a definition is a JSON object".to_owned(),
            ));
        };
        let stored = StoredWebhook {
            id: incoming.id.clone(),
            created_at: incoming.created_at.clone(),
            definition,
            revision: 0,
        };
        let revision = self.store.save(&stored).await.map_err(store_error)?;
        // A new definition starts a new run of failures, on every host.
        let name = hook_name(&incoming.id);
        self.flags.renewed(&name).await.map_err(store_error)?;
        let view = D::view(&incoming.id, &incoming.created_at, &incoming.definition);
        self.activate(
            Incoming {
                revision,
                ..incoming
            },
            running,
        )
        .await?;
        Ok(view)
    }

    /// Puts a webhook in force (or out, when disabled) and records it.
    /// Callers hold `writer`, but for the start.
    async fn activate(&self, incoming: Incoming<D>, running: Running) -> Result<(), WebhookError> {
        let name = hook_name(&incoming.id);
        if running.disabled {
            self.registry.take(&name, Retired::Disabled);
        } else {
            let plugin = self
                .builtin
                .plugin(D::KIND)
                .await
                .map_err(WebhookError::Internal)?;
            self.registry.replace(Hook {
                plugin: plugin.configured(&name, &D::config(&incoming.definition)),
                name: name.into(),
                filter: running.filter,
                // The URL is checked or rendered per event; the
                // private-network guard still applies to it.
                allowed_hosts: vec![HostPattern::Any],
                send: running.send,
                log: incoming.log.clone(),
                failures: Streak::default(),
                one_way: D::ONE_WAY,
                retirement: Retirement::default(),
            });
        }
        self.entries().insert(
            incoming.id,
            Entry {
                definition: incoming.definition,
                created_at: incoming.created_at,
                revision: incoming.revision,
                source: incoming.source,
                log: incoming.log,
                file_error: None,
            },
        );
        Ok(())
    }

    /// Takes webhook `id` out of service and out of the collection.
    fn retire(&self, id: &str, why: Retired) {
        self.registry.take(&hook_name(id), why);
        self.entries().remove(id);
    }

    /// Runs `f` on the API-created webhook `id`.
    fn api_entry<T>(&self, id: &str, f: impl FnOnce(&Entry<D>) -> T) -> Result<T, WebhookError> {
        match self.entries().get(id) {
            None => Err(WebhookError::NotFound(id.to_owned())),
            Some(Entry {
                source: Source::File(file),
                ..
            }) => Err(WebhookError::FromFile {
                id: id.to_owned(),
                file: file.display().to_string(),
            }),
            Some(entry) => Ok(f(entry)),
        }
    }

    /// What `pick` makes of the webhooks, oldest first (ties by id).
    fn oldest_first<T>(&self, pick: impl Fn(&String, &Entry<D>) -> Option<T>) -> Vec<T> {
        let entries = self.entries();
        let mut all: Vec<(&String, &Entry<D>)> = entries.iter().collect();
        all.sort_by(|a, b| a.1.created_at.cmp(&b.1.created_at).then(a.0.cmp(b.0)));
        all.into_iter().filter_map(|(id, e)| pick(id, e)).collect()
    }

    /// The request `definition` would send for `event` (of a device in
    /// `group`), rendered by the plugin that runs it live; `None` when it
    /// sends none for that event. Nothing is stored or sent.
    pub async fn preview(
        &self,
        definition: Value,
        event: &Event,
        group: Option<&str>,
    ) -> Result<Option<HookRequest>, WebhookError> {
        let (definition, _) = checked::<D>(definition)?;
        let plugin = self
            .builtin
            .plugin(D::KIND)
            .await
            .map_err(WebhookError::Internal)?;
        plugin
            .configured("preview", &D::config(&definition))
            .on_event(event, group)
            .await
            .map_err(|e| WebhookError::Invalid(e.to_string()))
    }

    fn entries(&self) -> MutexGuard<'_, BTreeMap<String, Entry<D>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A stored or filed definition read as dialect `D`'s, and how it runs.
fn checked<D: Dialect>(definition: Value) -> Result<(D::Definition, Running), WebhookError> {
    let definition =
        serde_json::from_value(definition).map_err(|e| WebhookError::Invalid(e.to_string()))?;
    let running = D::running(&definition)?;
    Ok((definition, running))
}
