//! `edgehook device add|list|remove|key` and `edgehook group
//! add|list|remove`: the device registry of a running host, through its API.

use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{ApiClient, RemoteError};

/// What to do with devices.
#[derive(Debug, clap::Subcommand)]
pub enum DeviceCommand {
    /// Register a device and print its key (shown this once)
    Add {
        /// The device id (its MQTT username) [default: generated]
        id: Option<String>,
        /// A label for people
        #[arg(long)]
        name: Option<String>,
        /// The group it belongs to
        #[arg(long)]
        group: Option<String>,
        /// Metadata, a JSON object
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
    },
    /// List the devices
    List {
        /// Only the devices of this group
        #[arg(long)]
        group: Option<String>,
    },
    /// Remove a device: its key stops working
    Remove {
        /// The device id
        id: String,
    },
    /// Give a device a new key and print it; the old key stops working
    Key {
        /// The device id
        id: String,
    },
}

/// What to do with groups.
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Create a group
    Add {
        /// The group id [default: generated]
        id: Option<String>,
        /// A label for people
        #[arg(long)]
        name: Option<String>,
        /// Metadata, a JSON object
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
    },
    /// List the groups
    List,
    /// Remove a group that no device belongs to
    Remove {
        /// The group id
        id: String,
    },
}

/// Why a registry command failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetCommandError {
    /// `--metadata` is not a JSON object.
    #[error("--metadata is not a JSON object: {0}")]
    Metadata(String),
    /// The API refused or could not be reached.
    #[error(transparent)]
    Api(#[from] RemoteError),
}

/// Runs a device command; what to print.
pub async fn device(command: DeviceCommand, api: &ApiClient) -> Result<String, FleetCommandError> {
    Ok(match command {
        DeviceCommand::Add {
            id,
            name,
            group,
            metadata,
        } => {
            let body = body(json!({ "id": id, "name": name, "group": group }), metadata)?;
            let device = api
                .call(http::Method::POST, "/v1/devices", Some(body))
                .await?;
            let mut out = format!("Registered device {}", text(&device["id"]));
            if let Some(group) = device["group"].as_str() {
                let _ = write!(out, " in group {group}");
            }
            let _ = write!(
                out,
                "\nKey: {}\n(shown only now: the device logs in with username {} and this key)\n",
                text(&device["key"]),
                text(&device["id"])
            );
            out
        }
        DeviceCommand::List { group } => {
            let path = match group {
                Some(g) => format!("/v1/devices?group={}", encode(&g)),
                None => "/v1/devices".to_owned(),
            };
            let devices = api.call(http::Method::GET, &path, None).await?;
            let mut out = String::new();
            for d in devices.as_array().map(Vec::as_slice).unwrap_or_default() {
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}",
                    text(&d["id"]),
                    d["group"].as_str().unwrap_or("-"),
                    text(&d["name"])
                );
            }
            if out.is_empty() {
                out.push_str("No devices registered\n");
            }
            out
        }
        DeviceCommand::Remove { id } => {
            let path = format!("/v1/devices/{}", encode(&id));
            api.call(http::Method::DELETE, &path, None).await?;
            format!("Removed device {id}\n")
        }
        DeviceCommand::Key { id } => {
            let path = format!("/v1/devices/{}/key", encode(&id));
            let answer = api.call(http::Method::POST, &path, None).await?;
            format!(
                "New key of device {id}: {}\n(shown only now; the old key no longer works)\n",
                text(&answer["key"])
            )
        }
    })
}

/// Runs a group command; what to print.
pub async fn group(command: GroupCommand, api: &ApiClient) -> Result<String, FleetCommandError> {
    Ok(match command {
        GroupCommand::Add { id, name, metadata } => {
            let body = body(json!({ "id": id, "name": name }), metadata)?;
            let group = api
                .call(http::Method::POST, "/v1/groups", Some(body))
                .await?;
            format!("Created group {}\n", text(&group["id"]))
        }
        GroupCommand::List => {
            let groups = api.call(http::Method::GET, "/v1/groups", None).await?;
            let mut out = String::new();
            for g in groups.as_array().map(Vec::as_slice).unwrap_or_default() {
                let _ = writeln!(out, "{}\t{}", text(&g["id"]), text(&g["name"]));
            }
            if out.is_empty() {
                out.push_str("No groups\n");
            }
            out
        }
        GroupCommand::Remove { id } => {
            let path = format!("/v1/groups/{}", encode(&id));
            api.call(http::Method::DELETE, &path, None).await?;
            format!("Removed group {id}\n")
        }
    })
}

/// The JSON body: the fields given (nulls dropped) and the metadata.
fn body(fields: Value, metadata: Option<String>) -> Result<Bytes, FleetCommandError> {
    let mut object: Map<String, Value> = fields
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(metadata) = metadata {
        let value: Value = serde_json::from_str(&metadata)
            .map_err(|e| FleetCommandError::Metadata(e.to_string()))?;
        if !value.is_object() {
            return Err(FleetCommandError::Metadata(format!("{value}")));
        }
        object.insert("metadata".into(), value);
    }
    Ok(serde_json::to_vec(&object).expect("JSON serializes").into())
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
