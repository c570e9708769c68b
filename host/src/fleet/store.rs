//! The [`Fleet`]: the device registry every reader sees through a
//! [`Snapshot`], and its changes. Every change is written to the shared
//! buckets first when the registry is shared ([`super::shared`]), then to
//! this host's file ([`mod@super::file`]), then shown to readers in a new
//! snapshot.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use redb::Database;

use super::file;
use super::key::DeviceKey;
use super::model::{
    self, Device, DeviceInput, FleetError, Group, GroupId, GroupInput, device_id, group_id,
};
use super::shared::Buckets;
use super::snapshot::Snapshot;

/// Revocations a slow listener may fall behind by (a thousand rotations
/// at once); one that falls further behind is told, and logs it.
const REVOKED_BACKLOG: usize = 1024;

/// One change written in one transaction.
#[derive(Clone)]
pub(super) enum Write {
    /// Create or replace a group.
    Group(Group),
    /// Delete the group of this id.
    RemoveGroup(String),
    /// Create or replace a device.
    Device(Device),
    /// Delete the device of this id.
    RemoveDevice(String),
}

/// The device registry.
#[derive(Debug)]
pub struct Fleet {
    pub(super) db: Arc<Database>,
    pub(super) path: String,
    pub(super) snapshot: ArcSwap<Snapshot>,
    /// One writer at a time: each change starts from the last snapshot.
    pub(super) writer: tokio::sync::Mutex<()>,
    /// Devices whose key stopped working (rotated or removed): the broker
    /// closes their sessions.
    pub(super) revoked: tokio::sync::broadcast::Sender<String>,
    /// The buckets every host shares, with `--nats-url`.
    pub(super) shared: Option<Buckets>,
}

impl Fleet {
    /// Opens (or creates) `registry.redb` in `data_dir` and reads it.
    pub fn open(data_dir: &Path) -> Result<Self, FleetError> {
        let file = data_dir.join("registry.redb");
        let path = file.display().to_string();
        let (db, snapshot) = file::open(&file, &path)?;
        Ok(Self {
            db: Arc::new(db),
            path,
            snapshot: ArcSwap::from_pointee(snapshot),
            writer: tokio::sync::Mutex::new(()),
            revoked: tokio::sync::broadcast::channel(REVOKED_BACKLOG).0,
            shared: None,
        })
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
            buckets.write(&change).await?;
        }
        self.keep(change).await
    }

    /// Writes `change` to this host's file, then shows it to readers.
    pub(super) async fn keep(&self, change: Write) -> Result<(), FleetError> {
        let db = self.db.clone();
        let (written, change) =
            tokio::task::spawn_blocking(move || (file::write(&db, &change), change))
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
