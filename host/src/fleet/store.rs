//! The registry's file, `data/registry.redb`, and the [`Fleet`] in front of
//! it: every change is one redb transaction (durable when it returns, so a
//! kill -9 keeps it), and readers (the API, broker logins, the pipeline)
//! see an immutable [`Snapshot`] swapped in after each commit.
//!
//! With `--nats-url` the registry bucket every host shares is the truth
//! ([`Fleet::shared`]): a change is written there first, and the file is
//! this host's copy, kept up to date with everyone's changes
//! ([`Fleet::follow`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use redb::backends::FileBackend;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::key::{DeviceKey, KeyHash};
use super::model::{
    self, Device, DeviceInput, FleetError, Group, GroupId, GroupInput, device_id, group_id,
};
use crate::stores::{Change, Records};
use crate::topic::DeviceId;

const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
const DEVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("devices");

/// Revocations a slow listener may fall behind by (a thousand rotations
/// at once); one that falls further behind is told, and logs it.
const REVOKED_BACKLOG: usize = 1024;

/// The registry as it stands after a commit.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Groups by id.
    pub groups: BTreeMap<String, Group>,
    /// Devices by id.
    pub devices: BTreeMap<String, Device>,
}

impl Snapshot {
    /// The devices of `group`, in id order.
    pub fn members<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Device> + 'a {
        self.devices
            .values()
            .filter(move |d| d.group.as_ref().is_some_and(|g| g.as_str() == group))
    }
}

/// A device as the file keeps it.
#[derive(Serialize, Deserialize)]
struct StoredDevice {
    id: String,
    name: String,
    group: Option<GroupId>,
    metadata: Map<String, Value>,
    created_at: String,
    key_sha256: String,
}

/// One change written in one transaction.
#[derive(Clone)]
enum Write {
    Group(Group),
    RemoveGroup(String),
    Device(Device),
    RemoveDevice(String),
}

/// The device registry.
#[derive(Debug)]
pub struct Fleet {
    db: Arc<Database>,
    path: String,
    snapshot: ArcSwap<Snapshot>,
    /// One writer at a time: each change starts from the last snapshot.
    writer: tokio::sync::Mutex<()>,
    /// Devices whose key stopped working (rotated or removed): the broker
    /// closes their sessions.
    revoked: tokio::sync::broadcast::Sender<String>,
    /// The buckets every host shares, with `--nats-url`.
    shared: Option<Buckets>,
}

/// The registry's groups and devices in the shared bucket.
#[derive(Debug)]
struct Buckets {
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

impl Fleet {
    /// Opens (or creates) `registry.redb` in `data_dir` and reads it.
    pub fn open(data_dir: &Path) -> Result<Self, FleetError> {
        let file = data_dir.join("registry.redb");
        let path = file.display().to_string();
        let store = |e: &dyn std::fmt::Display| FleetError::Store {
            path: path.clone(),
            reason: e.to_string(),
        };
        // As `Database::create` opens it, but a new file is the host's alone.
        let db = crate::files::private_options()
            .open(&file)
            .map_err(|e| store(&e))
            .and_then(|f| {
                FileBackend::new(f)
                    .and_then(|backend| Database::builder().create_with_backend(backend))
                    .map_err(|e| store(&e))
            })?;
        let mut snapshot = Snapshot::default();
        {
            let tx = db.begin_write().map_err(|e| store(&e))?;
            tx.open_table(GROUPS).map_err(|e| store(&e))?;
            tx.open_table(DEVICES).map_err(|e| store(&e))?;
            tx.commit().map_err(|e| store(&e))?;
            let tx = db.begin_read().map_err(|e| store(&e))?;
            for row in tx
                .open_table(GROUPS)
                .map_err(|e| store(&e))?
                .iter()
                .map_err(|e| store(&e))?
            {
                let (id, json) = row.map_err(|e| store(&e))?;
                let group: Group = serde_json::from_slice(json.value())
                    .map_err(|e| store(&format!("group {:?}: {e}", id.value())))?;
                snapshot.groups.insert(id.value().to_owned(), group);
            }
            for row in tx
                .open_table(DEVICES)
                .map_err(|e| store(&e))?
                .iter()
                .map_err(|e| store(&e))?
            {
                let (id, json) = row.map_err(|e| store(&e))?;
                let device = decode_device(json.value())
                    .map_err(|e| store(&format!("device {:?}: {e}", id.value())))?;
                snapshot.devices.insert(id.value().to_owned(), device);
            }
        }
        Ok(Self {
            db: Arc::new(db),
            path,
            snapshot: ArcSwap::from_pointee(snapshot),
            writer: tokio::sync::Mutex::new(()),
            revoked: tokio::sync::broadcast::channel(REVOKED_BACKLOG).0,
            shared: None,
        })
    }

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
    pub async fn follow(&self, half: Half, mut changes: BoxStream<'static, Change>) {
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

    /// The ids of devices whose key stops working from now on.
    pub fn revocations(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.revoked.subscribe()
    }

    /// The registry as it stands.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Creates a group.
    pub async fn create_group(&self, input: GroupInput) -> Result<Group, FleetError> {
        let _writer = self.writer.lock().await;
        let id = group_id(input.id.as_deref())?;
        if self.snapshot.load().groups.contains_key(id.as_str()) {
            return Err(FleetError::GroupExists(id.to_string()));
        }
        let group = Group {
            id,
            name: model::name(input.name)?,
            metadata: model::metadata(input.metadata)?,
            created_at: model::now(),
        };
        self.commit(Write::Group(group.clone())).await?;
        Ok(group)
    }

    /// Replaces a group's name and metadata.
    pub async fn replace_group(&self, id: &str, input: GroupInput) -> Result<Group, FleetError> {
        let _writer = self.writer.lock().await;
        let Some(old) = self.snapshot.load().groups.get(id).cloned() else {
            return Err(FleetError::GroupNotFound(id.to_owned()));
        };
        same_id(input.id.as_deref(), id)?;
        let group = Group {
            name: model::name(input.name)?,
            metadata: model::metadata(input.metadata)?,
            ..old
        };
        self.commit(Write::Group(group.clone())).await?;
        Ok(group)
    }

    /// Deletes a group that no device belongs to.
    pub async fn delete_group(&self, id: &str) -> Result<(), FleetError> {
        let _writer = self.writer.lock().await;
        let snapshot = self.snapshot.load();
        if !snapshot.groups.contains_key(id) {
            return Err(FleetError::GroupNotFound(id.to_owned()));
        }
        let devices = snapshot.members(id).count();
        if devices > 0 {
            return Err(FleetError::GroupInUse {
                id: id.to_owned(),
                devices,
            });
        }
        self.commit(Write::RemoveGroup(id.to_owned())).await
    }

    /// Registers a device; its key is returned here and never again.
    pub async fn create_device(
        &self,
        input: DeviceInput,
    ) -> Result<(Device, DeviceKey), FleetError> {
        let _writer = self.writer.lock().await;
        let id = device_id(input.id.as_deref())?;
        let snapshot = self.snapshot.load();
        if snapshot.devices.contains_key(id.as_str()) {
            return Err(FleetError::DeviceExists(id.to_string()));
        }
        let key = DeviceKey::generate();
        let device = Device {
            id,
            name: model::name(input.name)?,
            group: known_group(&snapshot, input.group)?,
            metadata: model::metadata(input.metadata)?,
            created_at: model::now(),
            key: key.hash(),
        };
        self.commit(Write::Device(device.clone())).await?;
        Ok((device, key))
    }

    /// Replaces a device's name, group and metadata; its key stays.
    pub async fn replace_device(&self, id: &str, input: DeviceInput) -> Result<Device, FleetError> {
        let _writer = self.writer.lock().await;
        let snapshot = self.snapshot.load();
        let Some(old) = snapshot.devices.get(id).cloned() else {
            return Err(FleetError::DeviceNotFound(id.to_owned()));
        };
        same_id(input.id.as_deref(), id)?;
        let device = Device {
            name: model::name(input.name)?,
            group: known_group(&snapshot, input.group)?,
            metadata: model::metadata(input.metadata)?,
            ..old
        };
        self.commit(Write::Device(device.clone())).await?;
        Ok(device)
    }

    /// Removes a device: its key stops working.
    pub async fn delete_device(&self, id: &str) -> Result<(), FleetError> {
        let _writer = self.writer.lock().await;
        if !self.snapshot.load().devices.contains_key(id) {
            return Err(FleetError::DeviceNotFound(id.to_owned()));
        }
        self.commit(Write::RemoveDevice(id.to_owned())).await?;
        let _ = self.revoked.send(id.to_owned());
        Ok(())
    }

    /// Gives a device a new key; the old one stops working.
    pub async fn rotate_key(&self, id: &str) -> Result<DeviceKey, FleetError> {
        let _writer = self.writer.lock().await;
        let Some(old) = self.snapshot.load().devices.get(id).cloned() else {
            return Err(FleetError::DeviceNotFound(id.to_owned()));
        };
        let key = DeviceKey::generate();
        let device = Device {
            key: key.hash(),
            ..old
        };
        self.commit(Write::Device(device)).await?;
        let _ = self.revoked.send(id.to_owned());
        Ok(key)
    }

    /// Writes `change` to the shared buckets (when shared), then to this
    /// host's file, then shows it to readers.
    async fn commit(&self, change: Write) -> Result<(), FleetError> {
        if let Some(buckets) = &self.shared {
            let written = match &change {
                Write::Group(g) => {
                    let json = serde_json::to_vec(g).expect("a group serializes");
                    buckets
                        .groups
                        .put(g.id.as_str(), json.into())
                        .await
                        .map(drop)
                }
                Write::RemoveGroup(id) => buckets.groups.delete(id).await,
                Write::Device(d) => buckets
                    .devices
                    .put(d.id.as_str(), encode_device(d).into())
                    .await
                    .map(drop),
                Write::RemoveDevice(id) => buckets.devices.delete(id).await,
            };
            written.map_err(|e| FleetError::Store {
                path: "the shared registry".to_owned(),
                reason: e.to_string(),
            })?;
        }
        self.keep(change).await
    }

    /// Writes `change` to this host's file, then shows it to readers.
    async fn keep(&self, change: Write) -> Result<(), FleetError> {
        let db = self.db.clone();
        let row = match &change {
            Write::Group(g) => Some(serde_json::to_vec(g).expect("a group serializes")),
            Write::Device(d) => Some(encode_device(d)),
            Write::RemoveGroup(_) | Write::RemoveDevice(_) => None,
        };
        let (table, key) = match &change {
            Write::Group(g) => (GROUPS, g.id.to_string()),
            Write::RemoveGroup(id) => (GROUPS, id.clone()),
            Write::Device(d) => (DEVICES, d.id.to_string()),
            Write::RemoveDevice(id) => (DEVICES, id.clone()),
        };
        let written = tokio::task::spawn_blocking(move || -> Result<(), redb::Error> {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(table)?;
                match &row {
                    Some(row) => t.insert(key.as_str(), row.as_slice())?,
                    None => t.remove(key.as_str())?,
                };
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .expect("the registry write does not panic");
        written.map_err(|e| FleetError::Store {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let mut next = Snapshot {
            groups: self.snapshot.load().groups.clone(),
            devices: self.snapshot.load().devices.clone(),
        };
        match change {
            Write::Group(g) => {
                next.groups.insert(g.id.to_string(), g);
            }
            Write::RemoveGroup(id) => {
                next.groups.remove(&id);
            }
            Write::Device(d) => {
                next.devices.insert(d.id.to_string(), d);
            }
            Write::RemoveDevice(id) => {
                next.devices.remove(&id);
            }
        }
        self.snapshot.store(Arc::new(next));
        Ok(())
    }
}

/// A body's id must be absent or the path's.
fn same_id(body: Option<&str>, path: &str) -> Result<(), FleetError> {
    match body {
        Some(id) if id != path => Err(FleetError::Invalid {
            field: "id",
            reason: format!("{id:?} differs from the path's {path:?}; ids do not change"),
        }),
        _ => Ok(()),
    }
}

/// The group a device names, which must exist.
fn known_group(snapshot: &Snapshot, group: Option<String>) -> Result<Option<GroupId>, FleetError> {
    match group {
        None => Ok(None),
        Some(id) => snapshot
            .groups
            .get(&id)
            .map(|g| Some(g.id.clone()))
            .ok_or(FleetError::UnknownGroup(id)),
    }
}

fn encode_device(d: &Device) -> Vec<u8> {
    serde_json::to_vec(&StoredDevice {
        id: d.id.to_string(),
        name: d.name.clone(),
        group: d.group.clone(),
        metadata: d.metadata.clone(),
        created_at: d.created_at.clone(),
        key_sha256: d.key.to_hex(),
    })
    .expect("a device serializes")
}

fn decode_device(json: &[u8]) -> Result<Device, String> {
    let s: StoredDevice = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    Ok(Device {
        id: DeviceId::try_from(s.id.as_str()).map_err(|e| e.to_string())?,
        name: s.name,
        group: s.group,
        metadata: s.metadata,
        created_at: s.created_at,
        key: KeyHash::from_hex(&s.key_sha256).ok_or("its key hash is not 64 hex digits")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn changes_survive_a_reopen_and_groups_in_use_stay() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(dir.path()).unwrap();
        let group = fleet
            .create_group(GroupInput {
                id: Some("line-1".into()),
                ..GroupInput::default()
            })
            .await
            .unwrap();
        let (device, key) = fleet
            .create_device(DeviceInput {
                id: Some("d1".into()),
                group: Some("line-1".into()),
                ..DeviceInput::default()
            })
            .await
            .unwrap();
        assert_eq!(device.group, Some(group.id.clone()));
        assert!(matches!(
            fleet.delete_group("line-1").await,
            Err(FleetError::GroupInUse { devices: 1, .. })
        ));
        assert!(matches!(
            fleet
                .create_device(DeviceInput {
                    group: Some("nope".into()),
                    ..DeviceInput::default()
                })
                .await,
            Err(FleetError::UnknownGroup(_))
        ));
        let rotated = fleet.rotate_key("d1").await.unwrap();
        drop(fleet);

        let fleet = Fleet::open(dir.path()).unwrap();
        let snapshot = fleet.snapshot();
        let d1 = &snapshot.devices["d1"];
        assert!(d1.key.matches(rotated.reveal().as_bytes()));
        assert!(!d1.key.matches(key.reveal().as_bytes()));
        assert_eq!(snapshot.members("line-1").count(), 1);
        fleet.delete_device("d1").await.unwrap();
        fleet.delete_group("line-1").await.unwrap();
        assert!(fleet.snapshot().groups.is_empty());
    }
}
