//! The Particle-style webhooks: created through the API (kept in the store)
//! or read from the webhooks directory. Each definition is validated once,
//! when it arrives, then configured on the built-in particle plugin and put
//! in force in the registry under the name `webhook/{id}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt as _;
use futures::stream::BoxStream;
use serde_json::{Map, Value};

use super::builtin::Builtin;
use super::log::DeliveryLog;
use super::masked;
use super::store::{Remote, Store, Stored};
use crate::delivery::SendOptions;
use crate::plugins::hook::Retirement;
use crate::plugins::{Filter, Hook, HostPattern, Registry, Retired};
use crate::streak::Streak;
use crate::topic::DeviceId;

/// Why a webhook operation was refused; the message is what the API and
/// the log show.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The definition is not usable; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// No webhook has this id.
    #[error("no webhook with id {0}")]
    NotFound(String),
    /// The webhook comes from a file, which is where it is changed.
    #[error("webhook {id} is defined by the file {file}: edit or delete the file instead")]
    FromFile {
        /// The webhook's id.
        id: String,
        /// Its file.
        file: String,
    },
    /// The webhook is of another dialect, changed through its own routes.
    #[error(
        "webhook {id} is {dialect}-style: `PUT /v1/webhooks/{id}` takes Particle-style \
         webhooks only; replace it through the {dialect} routes"
    )]
    OtherDialect {
        /// The webhook's id.
        id: String,
        /// `Iottly` or `Mainflux`.
        dialect: &'static str,
    },
    /// The data directory could not be written.
    #[error("keeping webhook {id} in the data directory: {source}")]
    Store {
        /// The webhook's id.
        id: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The built-in plugin could not be made ready.
    #[error("{0}")]
    Plugin(String),
}

/// Where a webhook came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Api,
    File(PathBuf),
}

#[derive(Debug)]
struct Entry {
    stored: Stored,
    source: Source,
    log: Arc<DeliveryLog>,
    /// Why the latest version of its file was not loaded, while the
    /// previous version keeps running.
    file_error: Option<String>,
}

impl Entry {
    /// The definition's view, with `file_error` when the latest version of
    /// its file was refused.
    fn view(&self) -> Value {
        let mut view = masked::view(&self.stored);
        if let (Some(err), Value::Object(fields)) = (&self.file_error, &mut view) {
            fields.insert("file_error".into(), Value::String(err.clone()));
        }
        view
    }
}

/// What a definition says about running it, checked.
#[derive(Debug)]
struct Checked {
    filter: Filter,
    send: SendOptions,
    disabled: bool,
}

/// Every Particle-style webhook, by id.
#[derive(Debug)]
pub struct Catalog {
    registry: Arc<Registry>,
    store: Store,
    builtin: Arc<Builtin>,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Serializes changes, so the store, the registry and `entries` agree.
    writer: tokio::sync::Mutex<()>,
}

impl Catalog {
    /// A catalog over `store`; [`Self::load_stored`] puts its webhooks in force.
    pub fn new(registry: Arc<Registry>, store: Store, builtin: Arc<Builtin>) -> Self {
        Self {
            registry,
            store,
            builtin,
            entries: Mutex::default(),
            writer: tokio::sync::Mutex::new(()),
        }
    }

    /// Puts every webhook of the store in force. One that no longer
    /// validates is reported and left in the store.
    pub async fn load_stored(&self) -> std::io::Result<usize> {
        let all = self.store.load_all().await?;
        let _writer = self.writer.lock().await;
        let mut loaded = 0;
        for stored in all {
            let id = stored.id.clone();
            let activated = match check(&stored.definition) {
                Ok(checked) => {
                    self.activate(stored, checked, Source::Api, Arc::default())
                        .await
                }
                Err(err) => Err(err),
            };
            match activated {
                Ok(()) => loaded += 1,
                Err(err) => tracing::error!(webhook = %id, "stored webhook not loaded: {err}"),
            }
        }
        Ok(loaded)
    }

    /// Creates a webhook from a definition; its view, with the new id.
    pub async fn create(&self, definition: Value) -> Result<Value, WebhookError> {
        let definition = object(definition)?;
        let stored = Stored {
            id: new_id(),
            created_at: now(),
            definition,
            revision: 0,
        };
        self.save_and_activate(stored).await
    }

    /// Replaces the definition of webhook `id`; its new view. A value sent
    /// exactly as the view showed it in place of a secret (`***`,
    /// `Bearer ***`, `https://u:***@host/`) keeps the stored secret, so a
    /// client can send back what it read — unless the URL now goes to
    /// another scheme, host or port: then the secret must be sent again.
    pub async fn replace(&self, id: &str, definition: Value) -> Result<Value, WebhookError> {
        let mut definition = object(definition)?;
        let (created_at, old) = self.api_entry(id, |e| {
            (e.stored.created_at.clone(), e.stored.definition.clone())
        })?;
        masked::restore(&mut definition, &old)
            .map_err(|moved| WebhookError::Invalid(moved.to_string()))?;
        let stored = Stored {
            id: id.to_owned(),
            created_at,
            definition,
            revision: 0,
        };
        self.save_and_activate(stored).await
    }

    /// Deletes webhook `id`.
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
        self.registry.take(&hook_name(id), Retired::Deleted);
        self.entries().remove(id);
        Ok(())
    }

    /// The view of webhook `id`.
    pub fn get(&self, id: &str) -> Option<Value> {
        self.entries().get(id).map(Entry::view)
    }

    /// The views of every webhook, oldest first.
    pub fn list(&self) -> Vec<Value> {
        let entries = self.entries();
        let mut all: Vec<&Entry> = entries.values().collect();
        all.sort_by(|a, b| a.stored.created_at.cmp(&b.stored.created_at));
        all.into_iter().map(Entry::view).collect()
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
        let definition = serde_json::from_slice(bytes)
            .map_err(|e| WebhookError::Invalid(format!("not valid JSON: {e}")))
            .and_then(object)?;
        let _writer = self.writer.lock().await;
        let (created_at, log) = match self.entries().get(id) {
            Some(e) if e.source == Source::Api => {
                return Err(WebhookError::Invalid(format!(
                    "webhook id {id} is taken by a webhook created through the API"
                )));
            }
            Some(e) => (e.stored.created_at.clone(), e.log.clone()),
            None => (now(), Arc::default()),
        };
        let stored = Stored {
            id: id.to_owned(),
            created_at,
            definition,
            revision: 0,
        };
        let checked = check(&stored.definition)?;
        self.activate(stored, checked, Source::File(path.to_owned()), log)
            .await
    }

    /// Puts the changes of the shared store in force, as other hosts (and
    /// this one) make them, until the store's watch ends; a change already
    /// in force (this host's own, by its revision) changes nothing, and
    /// any later one takes effect even when it reads the same (a replace
    /// enables a disabled webhook again).
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
                .map(|e| (&e.source, e.stored.revision, e.log.clone()))
                .map(|(source, now, log)| (matches!(source, Source::File(_)), now, log));
            match (stored, current) {
                (_, Some((true, _, _))) => {}
                (_, Some((_, now, _))) if now >= revision => {}
                (Some(stored), current) => {
                    let log = current.map(|(_, _, log)| log).unwrap_or_default();
                    let activated = match check(&stored.definition) {
                        Ok(checked) => self.activate(stored, checked, Source::Api, log).await,
                        Err(err) => Err(err),
                    };
                    if let Err(err) = activated {
                        tracing::error!(webhook = %id, "shared webhook not loaded: {err}");
                    }
                }
                (None, Some(_)) => {
                    self.registry.take(&hook_name(&id), Retired::Deleted);
                    self.entries().remove(&id);
                }
                (None, None) => {}
            }
        }
    }

    /// Takes the webhook of a removed file out of service.
    pub fn remove_file(&self, id: &str) {
        let mut entries = self.entries();
        if entries
            .get(id)
            .is_some_and(|e| matches!(e.source, Source::File(_)))
        {
            entries.remove(id);
            self.registry.take(&hook_name(id), Retired::Deleted);
        }
    }

    async fn save_and_activate(&self, stored: Stored) -> Result<Value, WebhookError> {
        let _writer = self.writer.lock().await;
        let checked = check(&stored.definition)?;
        let log = self
            .entries()
            .get(&stored.id)
            .map(|e| e.log.clone())
            .unwrap_or_default();
        let revision = self
            .store
            .save(&stored)
            .await
            .map_err(|source| WebhookError::Store {
                id: stored.id.clone(),
                source,
            })?;
        let stored = Stored { revision, ..stored };
        let view = masked::view(&stored);
        self.activate(stored, checked, Source::Api, log).await?;
        Ok(view)
    }

    /// Puts `stored` in force (or out, when disabled) and records it.
    /// Callers hold `writer`.
    async fn activate(
        &self,
        stored: Stored,
        checked: Checked,
        source: Source,
        log: Arc<DeliveryLog>,
    ) -> Result<(), WebhookError> {
        let name = hook_name(&stored.id);
        if checked.disabled {
            self.registry.take(&name, Retired::Disabled);
        } else {
            let particle = self
                .builtin
                .particle()
                .await
                .map_err(WebhookError::Plugin)?;
            let config = Value::Object(stored.definition.clone());
            self.registry.replace(Hook {
                plugin: particle.configured(&name, &config),
                name: name.into(),
                filter: checked.filter,
                // The URL is a template: the destination is known per event,
                // and the private-network guard still applies to it.
                allowed_hosts: vec![HostPattern::Any],
                send: checked.send,
                log: log.clone(),
                failures: Streak::default(),
                one_way: false,
                retirement: Retirement::default(),
            });
        }
        let id = stored.id.clone();
        self.entries().insert(
            id,
            Entry {
                stored,
                source,
                log,
                file_error: None,
            },
        );
        Ok(())
    }

    /// Runs `f` on the API-created webhook `id`.
    fn api_entry<T>(&self, id: &str, f: impl FnOnce(&Entry) -> T) -> Result<T, WebhookError> {
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

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Validates a definition with the particle plugin's own parser (the one
/// that will render it), and derives how the host runs it.
fn check(definition: &Map<String, Value>) -> Result<Checked, WebhookError> {
    let webhook = edgehook_particle::Webhook::from_json(&Value::Object(definition.clone()))
        .map_err(|e| WebhookError::Invalid(e.to_string()))?;
    let devices = webhook
        .device_id()
        .map(|d| {
            DeviceId::try_from(d)
                .map(|d| vec![d])
                .map_err(|e| WebhookError::Invalid(format!("`deviceID`: {e}")))
        })
        .transpose()?;
    Ok(Checked {
        filter: Filter {
            event: webhook.event().to_owned(),
            devices,
            ..Filter::default()
        },
        send: SendOptions {
            insecure_tls: !webhook.reject_unauthorized(),
            signing_key: webhook.secret().map(Arc::from),
        },
        disabled: webhook.disabled(),
    })
}

/// The definition as an object, without the `id`, `created_at` and
/// `dialect` a client may have sent back from a view: the host gives those.
fn object(definition: Value) -> Result<Map<String, Value>, WebhookError> {
    match definition {
        Value::Object(mut map) => {
            map.remove("id");
            map.remove("created_at");
            map.remove("dialect");
            Ok(map)
        }
        _ => Err(WebhookError::Invalid(
            "a webhook definition is a JSON object".to_owned(),
        )),
    }
}

/// The registry name of webhook `id`.
pub fn hook_name(id: &str) -> String {
    format!("webhook/{id}")
}

/// 96 random bits as 24 hex digits, the shape of a Particle webhook id;
/// every dialect's ids are made here, so they never collide in practice.
pub fn new_id() -> String {
    format!("{:024x}", rand::random::<u128>() >> 32)
}

/// The time now, RFC 3339 with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
