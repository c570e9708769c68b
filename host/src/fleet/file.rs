//! The registry's file, `data/registry.redb`: one table of groups and one
//! of devices, each row the JSON of one (a device's key kept as its hash).
//! Every change is one redb transaction, durable when it returns, so a
//! kill -9 keeps it.

use std::path::Path;

use redb::backends::FileBackend;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::key::KeyHash;
use super::model::{Device, FleetError, Group, GroupId};
use super::snapshot::Snapshot;
use super::store::Write;
use crate::topic::DeviceId;

const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
const DEVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("devices");

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

/// Opens (or creates) the registry's `file`, named `path` in errors, and
/// reads what it holds.
pub(super) fn open(file: &Path, path: &str) -> Result<(Database, Snapshot), FleetError> {
    let store = |e: &dyn std::fmt::Display| FleetError::Store {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    // As `Database::create` opens it, but a new file is the host's alone.
    let db = crate::files::private_options()
        .open(file)
        .map_err(|e| store(&e))
        .and_then(|f| {
            FileBackend::new(f)
                .and_then(|backend| Database::builder().create_with_backend(backend))
                .map_err(|e| store(&e))
        })?;
    let mut snapshot = Snapshot::default();
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
    drop(tx);
    Ok((db, snapshot))
}

/// Writes `change` to the file in one transaction (blocking).
pub(super) fn write(db: &Database, change: &Write) -> Result<(), redb::Error> {
    let row = match change {
        Write::Group(g) => Some(serde_json::to_vec(g).expect("a group serializes")),
        Write::Device(d) => Some(encode_device(d)),
        Write::RemoveGroup(_) | Write::RemoveDevice(_) => None,
    };
    let (table, key) = match change {
        Write::Group(g) => (GROUPS, g.id.as_str()),
        Write::RemoveGroup(id) => (GROUPS, id.as_str()),
        Write::Device(d) => (DEVICES, d.id.as_str()),
        Write::RemoveDevice(id) => (DEVICES, id.as_str()),
    };
    let tx = db.begin_write()?;
    {
        let mut t = tx.open_table(table)?;
        match &row {
            Some(row) => t.insert(key, row.as_slice())?,
            None => t.remove(key)?,
        };
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn encode_device(d: &Device) -> Vec<u8> {
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

pub(super) fn decode_device(json: &[u8]) -> Result<Device, String> {
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
