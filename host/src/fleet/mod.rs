//! The device registry: groups (Particle products, Iottly projects,
//! Mainflux groups) and devices (Mainflux things) with their MQTT keys,
//! kept in `data/registry.redb` and read lock-free from a snapshot.
//!
//! - `model`: ids, names and metadata checked once; the JSON views.
//! - `key`: device keys, made by a CSPRNG and kept only as a hash.
//! - `store`: the redb file and the [`Fleet`] in front of it.

mod key;
mod model;
mod store;

pub use key::{DeviceKey, KeyHash};
pub use model::{Device, DeviceInput, FleetError, Group, GroupId, GroupInput, parse};
pub use store::{Fleet, Half, Snapshot};
