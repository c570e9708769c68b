//! The registry shared by every host (`--nats-url`): the shared buckets
//! are the truth, a change is written there first, and this host's file
//! is its copy, kept up to date with every host's changes
//! ([`Fleet::follow`]; README "Running several hosts").

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;

use super::file::{decode_device, encode_device};
use super::model::{FleetError, Group};
use super::store::{Fleet, Write};
use crate::stores::{RecordChange, Records};

/// The registry's groups and devices in the shared bucket.
#[derive(Debug)]
pub(super) struct Buckets {
    groups: Arc<dyn Records>,
    devices: Arc<dyn Records>,
}

/// Which half of the registry a shared change is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// Groups.
    Groups,
    /// Devices.
    Devices,
}

impl Buckets {
    /// Writes `change` to the bucket of its half.
    pub(super) async fn write(&self, change: &Write) -> Result<(), FleetError> {
        let written = match change {
            Write::Group(g) => {
                let json = serde_json::to_vec(g).expect("a group serializes");
                self.groups.put(g.id.as_str(), json.into()).await.map(drop)
            }
            Write::RemoveGroup(id) => self.groups.delete(id).await,
            Write::Device(d) => self
                .devices
                .put(d.id.as_str(), encode_device(d).into())
                .await
                .map(drop),
            Write::RemoveDevice(id) => self.devices.delete(id).await,
        };
        written.map_err(|e| FleetError::Store {
            path: "the shared registry".to_owned(),
            reason: e.to_string(),
        })
    }
}

impl Fleet {
    /// Makes the shared buckets the truth: this host's file takes what
    /// they hold now (what they lack is dropped), and every change goes to
    /// them first.
    pub async fn shared(
        mut self,
        groups: Arc<dyn Records>,
        devices: Arc<dyn Records>,
    ) -> Result<Self, FleetError> {
        let store = |e: &dyn std::fmt::Display| FleetError::Store {
            path: "the shared registry".to_owned(),
            reason: e.to_string(),
        };
        for (half, bucket) in [(Half::Groups, &groups), (Half::Devices, &devices)] {
            let all = bucket.load_all().await.map_err(|e| store(&e))?;
            let ids: std::collections::BTreeSet<&str> =
                all.iter().map(|(id, _, _)| id.as_str()).collect();
            let snapshot = self.snapshot();
            let local: Vec<String> = match half {
                Half::Groups => snapshot.groups.keys().cloned().collect(),
                Half::Devices => snapshot.devices.keys().cloned().collect(),
            };
            for gone in local.iter().filter(|id| !ids.contains(id.as_str())) {
                self.apply(half, gone.clone(), None).await;
            }
            for (id, value, _) in all {
                self.apply(half, id, Some(value)).await;
            }
        }
        self.shared = Some(Buckets { groups, devices });
        Ok(self)
    }

    /// The shared bucket of `half`, when the registry is shared.
    pub fn bucket(&self, half: Half) -> Option<&Arc<dyn Records>> {
        self.shared.as_ref().map(|b| match half {
            Half::Groups => &b.groups,
            Half::Devices => &b.devices,
        })
    }

    /// Applies the shared changes of `half` as any host makes them, until
    /// the watch ends.
    pub async fn follow(&self, half: Half, mut changes: BoxStream<'static, RecordChange>) {
        while let Some((id, value, _)) = changes.next().await {
            self.apply(half, id, value).await;
        }
    }

    /// Puts one shared change in this host's file and snapshot, unless it
    /// is there already; a device whose key changed or that is gone has
    /// its sessions closed.
    async fn apply(&self, half: Half, id: String, value: Option<Bytes>) {
        let _writer = self.writer.lock().await;
        let snapshot = self.snapshot();
        let change = match (half, value) {
            (Half::Groups, Some(json)) => match serde_json::from_slice::<Group>(&json) {
                Ok(g) if snapshot.groups.get(&id) == Some(&g) => return,
                Ok(g) => Write::Group(g),
                Err(err) => return tracing::error!(group = %id, "shared group not loaded: {err}"),
            },
            (Half::Devices, Some(json)) => match decode_device(&json) {
                Ok(d) if snapshot.devices.get(&id) == Some(&d) => return,
                Ok(d) => Write::Device(d),
                Err(err) => return tracing::error!(device = %id, "shared device not loaded: {err}"),
            },
            (Half::Groups, None) if snapshot.groups.contains_key(&id) => Write::RemoveGroup(id),
            (Half::Devices, None) if snapshot.devices.contains_key(&id) => Write::RemoveDevice(id),
            (_, None) => return,
        };
        let revoked = match &change {
            Write::Device(d) => snapshot
                .devices
                .get(d.id.as_str())
                .is_some_and(|old| old.key != d.key)
                .then(|| d.id.to_string()),
            Write::RemoveDevice(id) => Some(id.clone()),
            _ => None,
        };
        if let Err(err) = self.keep(change).await {
            return tracing::error!("shared registry change not kept: {err}");
        }
        if let Some(id) = revoked {
            let _ = self.revoked.send(id);
        }
    }
}
