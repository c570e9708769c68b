//! `edgehook plugin push FILE.wasm FILE.toml` and `edgehook plugin remove
//! NAME`: plugins of a running host, through its API (`PUT`/`DELETE
//! /v1/plugins/{name}`); on a cluster the host shares them with the others.

use std::path::Path;

use bytes::Bytes;

use super::{ApiClient, RemoteError};
use crate::plugins::PluginName;

/// Why a plugin command failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginCommandError {
    /// A file to send is not usable.
    #[error("{0}")]
    File(String),
    /// The name is not a plugin name.
    #[error("{0}")]
    Name(#[from] crate::plugins::InstallError),
    /// The API refused or could not be reached.
    #[error(transparent)]
    Api(#[from] RemoteError),
}

/// Sends the plugin `wasm` (named by its file stem) with its `manifest`;
/// what to print.
pub async fn push(
    client: &ApiClient,
    wasm: &Path,
    manifest: &Path,
) -> Result<String, PluginCommandError> {
    let stem = match (wasm.extension(), wasm.file_stem()) {
        (Some(ext), Some(stem)) if ext == "wasm" => stem.to_string_lossy().into_owned(),
        _ => {
            return Err(PluginCommandError::File(format!(
                "{} is not a .wasm file (the plugin is named after it)",
                wasm.display()
            )));
        }
    };
    let name = PluginName::try_from(stem.as_str())?;
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|e| PluginCommandError::File(format!("{}: {e}", path.display())))
    };
    let (module, text) = (read(wasm)?, read(manifest)?);
    // Not in either file: it is the digest of both.
    let boundary = format!(
        "edgehook-{}",
        crate::runtime::digest(&[module.as_slice(), &text].concat())
    );
    let body = form(&boundary, &[("wasm", &module), ("manifest", &text)]);
    let path = format!("/v1/plugins/{name}");
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let status = client
        .call_with(http::Method::PUT, &path, Some((body, &content_type)))
        .await?;
    let digest = status["digest"].as_str().unwrap_or_default();
    let state = status["state"].as_str().unwrap_or("installed");
    Ok(format!("Plugin {name} {state} (sha256 {digest})\n"))
}

/// Removes plugin `name`; what to print.
pub async fn remove(client: &ApiClient, name: &str) -> Result<String, PluginCommandError> {
    let name = PluginName::try_from(name)?;
    client
        .call(http::Method::DELETE, &format!("/v1/plugins/{name}"), None)
        .await?;
    Ok(format!("Removed plugin {name}\n"))
}

/// A `multipart/form-data` body of `fields` (name, bytes), with a
/// `boundary` that does not occur in them.
fn form(boundary: &str, fields: &[(&str, &[u8])]) -> Bytes {
    let mut body = Vec::new();
    for (name, bytes) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body.into()
}
