//! The device registry: groups (Particle products, Iottly projects,
//! Mainflux groups) and devices (Mainflux things) with their MQTT keys,
//! kept in `data/registry.redb` and read lock-free from a snapshot.
//!
//! - `model`: ids, names and metadata checked once; the JSON views.
//! - `key`: device keys, made by a CSPRNG and kept only as a hash.
//! - `snapshot`: the registry as readers see it.
//! - `file`: the redb file.
//! - `store`: the [`Fleet`] in front of it, and its changes.
//! - `shared`: the registry every host shares (`--nats-url`).

mod file;
mod key;
mod model;
mod shared;
mod snapshot;
mod store;

pub use key::{DeviceKey, KeyHash};
pub use model::{Device, DeviceInput, FleetError, Group, GroupId, GroupInput, parse};
pub use shared::Half;
pub use snapshot::Snapshot;
pub use store::Fleet;
