//! Auto-disable shared by every host: when a webhook's failures in a row
//! disable it on one host, the reason goes to the definitions bucket as
//! `disabled.{webhook name}`, and every host disables its copy too.
//! Replacing the webhook (or pushing a new version of a plugin) deletes
//! the key, as it starts a new run of failures on every host.

use async_nats::jetstream::kv;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::{DEFINITIONS_BUCKET, Nats, NatsError};
use crate::hooks::Registry;
use crate::stores::Flags;

/// The key prefix of disabled webhooks.
const PREFIX: &str = "disabled.";

/// The shared record of disabled webhooks.
#[derive(Clone)]
pub struct Trips {
    kv: async_nats::jetstream::kv::Store,
}

impl std::fmt::Debug for Trips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trips").finish_non_exhaustive()
    }
}

/// The key of webhook `name`.
pub fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

impl Trips {
    /// Opens the record in the definitions bucket.
    pub async fn open(nats: &Nats) -> Result<Self, NatsError> {
        Ok(Self {
            kv: nats.bucket(DEFINITIONS_BUCKET).await?,
        })
    }

    /// Disables in `registry` every webhook another host disabled, now and
    /// as it happens, until `shutdown`.
    pub async fn follow(self, registry: std::sync::Arc<Registry>, shutdown: CancellationToken) {
        loop {
            let watched = async {
                let mut watch = self
                    .kv
                    .watch_with_history(format!("{PREFIX}>"))
                    .await
                    .map_err(|e| e.to_string())?;
                while let Some(entry) = watch.next().await {
                    let entry = entry.map_err(|e| e.to_string())?;
                    if entry.operation != async_nats::jetstream::kv::Operation::Put {
                        continue;
                    }
                    let Some(name) = entry.key.strip_prefix(PREFIX) else {
                        continue;
                    };
                    let reason = String::from_utf8_lossy(&entry.value);
                    if let Some(hook) = registry.hooks().iter().find(|h| &*h.name == name)
                        && hook.failures.trip(&reason)
                    {
                        tracing::warn!("{reason} (on another host)");
                    }
                }
                Err::<(), _>("the watch ended".to_owned())
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                Err(err) = watched => tracing::warn!("shared auto-disable: {err}; watching again"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }
}

#[async_trait::async_trait]
impl Flags for Trips {
    fn disabled(&self, name: &str, reason: &str) {
        let (kv, key, reason) = (self.kv.clone(), key(name), reason.to_owned());
        tokio::spawn(async move {
            let reason = bytes::Bytes::from(reason);
            let put = super::patiently(|| kv.put(key.as_str(), reason.clone()), |_| false);
            if let Err(err) = put.await {
                tracing::warn!("auto-disable of {key} not shared with the other hosts: {err}");
            }
        });
    }

    async fn renewed(&self, name: &str) -> std::io::Result<()> {
        let key = key(name);
        super::patiently(
            || self.kv.delete(key.as_str()),
            |e: &kv::DeleteError| e.kind() == kv::DeleteErrorKind::InvalidKey,
        )
        .await
        .map_err(|e| std::io::Error::other(format!("{DEFINITIONS_BUCKET} {key}: {e}")))
    }
}
