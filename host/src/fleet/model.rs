//! Groups and devices as the API takes and shows them: raw bodies parsed
//! once into checked values, each refusal naming its field.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::key::KeyHash;
use crate::topic::DeviceId;

/// Longest group id, in bytes.
pub const MAX_GROUP_ID_LEN: usize = 64;
/// Longest name of a group or device, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Largest metadata object of a group or device, serialized, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 << 10;

/// Why a registry change was refused.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The body is not JSON of the right shape.
    #[error("the request body is not valid: {0}")]
    Body(String),
    /// A field's value is out of bounds.
    #[error("field `{field}`: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A device names a group that does not exist.
    #[error("field `group`: no group {0:?}")]
    UnknownGroup(String),
    /// No group with this id.
    #[error("no group {0:?}")]
    GroupNotFound(String),
    /// No device with this id.
    #[error("no device {0:?}")]
    DeviceNotFound(String),
    /// The id is taken.
    #[error("field `id`: a group {0:?} exists already")]
    GroupExists(String),
    /// The id is taken.
    #[error("field `id`: a device {0:?} exists already")]
    DeviceExists(String),
    /// Devices still belong to the group.
    #[error("group {id:?} still has {devices} device(s): move or remove them first")]
    GroupInUse {
        /// The group.
        id: String,
        /// How many devices it has.
        devices: usize,
    },
    /// Iottly-style webhooks still belong to the group (its project).
    #[error("group {id:?} still has {webhooks} Iottly-style webhook(s): delete them first")]
    GroupHasWebhooks {
        /// The group.
        id: String,
        /// How many webhooks it has.
        webhooks: usize,
    },
    /// The registry file failed.
    #[error("device registry {path}: {reason}")]
    Store {
        /// The database file.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// A group id: 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(Arc<str>);

impl GroupId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for GroupId {
    type Error = FleetError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        let ok = !s.is_empty()
            && s.len() <= MAX_GROUP_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Self(s.into()))
        } else {
            Err(FleetError::Invalid {
                field: "id",
                reason: format!(
                    "{s:?} is not a group id: 1 to {MAX_GROUP_ID_LEN} ASCII letters, digits, '-', '_' or '.'"
                ),
            })
        }
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The body of `POST /v1/groups` and `PUT /v1/groups/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    /// The id; generated when absent on creation.
    pub id: Option<String>,
    /// A label for people.
    pub name: Option<String>,
    /// The owner's key-value pairs.
    pub metadata: Option<Map<String, Value>>,
}

/// The body of `POST /v1/devices` and `PUT /v1/devices/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInput {
    /// The id (the MQTT username and the topic level); generated when absent.
    pub id: Option<String>,
    /// A label for people.
    pub name: Option<String>,
    /// The group it belongs to.
    pub group: Option<String>,
    /// The owner's key-value pairs.
    pub metadata: Option<Map<String, Value>>,
}

/// A group of devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Its id.
    pub id: GroupId,
    /// A label for people ("" when none was given).
    pub name: String,
    /// The owner's key-value pairs.
    pub metadata: Map<String, Value>,
    /// When it was created, RFC 3339.
    pub created_at: String,
}

/// A registered device. Its key is kept only as a hash and never shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Its id.
    pub id: DeviceId,
    /// A label for people.
    pub name: String,
    /// The group it belongs to, if any: `PRODUCT_ID` in Particle templates.
    pub group: Option<GroupId>,
    /// The owner's key-value pairs.
    pub metadata: Map<String, Value>,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// The hash of its current key.
    pub key: KeyHash,
}

impl Device {
    /// What the API shows: everything but the key.
    pub fn view(&self) -> Value {
        serde_json::json!({
            "id": self.id.as_str(),
            "name": self.name,
            "group": self.group,
            "metadata": self.metadata,
            "created_at": self.created_at,
        })
    }
}

impl Serialize for GroupId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for GroupId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::try_from(s.as_str()).map_err(serde::de::Error::custom)
    }
}

/// Parses a JSON body into `T`, naming what is wrong.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, FleetError> {
    serde_json::from_slice(body).map_err(|e| FleetError::Body(e.to_string()))
}

/// A name within bounds ("" when absent).
pub fn name(name: Option<String>) -> Result<String, FleetError> {
    let name = name.unwrap_or_default();
    if name.len() > MAX_NAME_LEN {
        return Err(FleetError::Invalid {
            field: "name",
            reason: format!("{} bytes, more than {MAX_NAME_LEN}", name.len()),
        });
    }
    Ok(name)
}

/// Metadata within bounds (empty when absent).
pub fn metadata(metadata: Option<Map<String, Value>>) -> Result<Map<String, Value>, FleetError> {
    let metadata = metadata.unwrap_or_default();
    let size = serde_json::to_vec(&metadata).map_or(usize::MAX, |v| v.len());
    if size > MAX_METADATA_BYTES {
        return Err(FleetError::Invalid {
            field: "metadata",
            reason: format!("{size} bytes, more than {MAX_METADATA_BYTES}"),
        });
    }
    Ok(metadata)
}

/// A device id: the one given, checked as a topic level, or a new one.
pub fn device_id(id: Option<&str>) -> Result<DeviceId, FleetError> {
    let id = id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    DeviceId::try_from(id.as_str()).map_err(|e| FleetError::Invalid {
        field: "id",
        reason: e.to_string(),
    })
}

/// A group id: the one given, checked, or a new one.
pub fn group_id(id: Option<&str>) -> Result<GroupId, FleetError> {
    match id {
        Some(id) => GroupId::try_from(id),
        None => GroupId::try_from(uuid::Uuid::new_v4().to_string().as_str()),
    }
}

/// Now, as the registry writes creation times.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_names_and_metadata_are_bounded() {
        assert!(GroupId::try_from("line-3.a_b").is_ok());
        for bad in ["", "a/b", "a b", "é", &"g".repeat(65)] {
            let err = GroupId::try_from(bad).unwrap_err().to_string();
            assert!(err.starts_with("field `id`"), "{err}");
        }
        assert_eq!(group_id(None).unwrap().as_str().len(), 36);
        assert!(device_id(Some("a/b")).is_err());
        assert!(device_id(Some("dev-1")).is_ok());
        let long = name(Some("n".repeat(MAX_NAME_LEN + 1))).unwrap_err();
        assert!(long.to_string().starts_with("field `name`"), "{long}");
        let mut big = Map::new();
        big.insert("k".into(), Value::String("v".repeat(MAX_METADATA_BYTES)));
        let err = metadata(Some(big)).unwrap_err().to_string();
        assert!(err.starts_with("field `metadata`"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = parse::<DeviceInput>(br#"{"id": "d", "colour": 1}"#).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
