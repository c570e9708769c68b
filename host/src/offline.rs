//! `edgehook plugin test`: one plugin, one event, no broker and no network.
//! Prints the request the plugin would send (and which auth the host would
//! add, never its secret), given a response the device events the host
//! would publish, and what the plugin keeps in its key-value buckets.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;

use crate::event::Event;
use crate::exchange::{HookResponse, Outcome};
use crate::plugins::Manifest;
use crate::respond::publish::messages;
use crate::runtime::{DefaultLimits, EngineOptions, Limits, Plugin, WasmEngine};
use crate::stores::KvFile;
use crate::stores::kv::{Bucket, KeyValue};
use crate::topic::{DeviceId, EventName, hook_sent_topic};

/// What to run: the arguments of `edgehook plugin test`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestRun {
    /// The plugin's .wasm file
    pub wasm: PathBuf,
    /// Event name
    #[arg(long)]
    pub event: String,
    /// Event data
    #[arg(long, default_value = "")]
    pub data: String,
    /// Device id
    #[arg(long, default_value = "test-device")]
    pub device: String,
    /// The device's group (Particle's `PRODUCT_ID`) [default: none]
    #[arg(long, value_name = "ID")]
    pub group: Option<String>,
    /// The plugin's manifest (.toml) or a JSON configuration (.json)
    /// [default: NAME.toml beside the .wasm, else NAME.toml in the current
    /// directory, else an empty configuration]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A file with the response body to hand back to the plugin
    #[arg(long, value_name = "FILE")]
    pub response: Option<PathBuf>,
    /// The status of that response
    #[arg(long, default_value_t = 200)]
    pub status: u16,
    /// Chunk size of device messages
    #[arg(long, default_value_t = 512)]
    pub chunk_size: usize,
}

/// Runs the plugin and returns the report to print. Relative paths are
/// taken from `dir` (the command's working directory).
pub async fn run(mut t: TestRun, dir: &Path) -> anyhow::Result<String> {
    t.wasm = dir.join(&t.wasm);
    t.config = t.config.map(|c| dir.join(c));
    t.response = t.response.map(|r| dir.join(r));
    let (config, limits, auth) = configuration(&t, dir)?;
    let kv = Arc::new(KvFile::in_memory().context("setting up key-value buckets in memory")?);
    let plugin = load(&t, config, limits, kv.clone()).await?;
    let device = DeviceId::try_from(t.device.as_str())?;
    let event = Event::received(
        device,
        EventName::try_from(t.event.as_str())?,
        Bytes::from(t.data),
    );
    let mut out = String::new();
    let group = t.group.as_deref();
    // One instance for both calls, as the host runs them.
    let (request, kept) = plugin.on_event_keeping(&event, group).await;
    let Some(request) = request? else {
        out.push_str("the plugin skips this event: no request\n");
        state(&*kv, &plugin, &event.device, &mut out).await?;
        return Ok(out);
    };
    writeln!(out, "request:\n{} {}", request.method, request.url)?;
    for (k, v) in &request.headers {
        writeln!(out, "{k}: {v}")?;
    }
    if let Some(kind) = auth {
        writeln!(
            out,
            "(+ the {kind} auth of the manifest's [auth], added by the host)"
        )?;
    }
    writeln!(out, "\n{}", String::from_utf8_lossy(&request.body))?;

    let Some(path) = &t.response else {
        out.push_str("\n(give --response FILE to see the device events for a response)\n");
        state(&*kv, &plugin, &event.device, &mut out).await?;
        return Ok(out);
    };
    let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let outcome = Outcome::Response(HookResponse {
        status: t.status,
        headers: Vec::new(),
        body: body.into(),
    });
    let replies = plugin
        .answer(&event, group, request.answer, &outcome, kept)
        .await?;
    writeln!(out, "device events:")?;
    writeln!(
        out,
        "{} (0 bytes)",
        hook_sent_topic(&event.device, &event.name)
    )?;
    for (topic, payload) in messages(&event, &replies, t.chunk_size) {
        writeln!(
            out,
            "{topic} ({} bytes)\n{}",
            payload.len(),
            String::from_utf8_lossy(&payload)
        )?;
    }
    state(&*kv, &plugin, &event.device, &mut out).await?;
    Ok(out)
}

/// Keys and values shown per bucket, and bytes per value.
const SHOWN_KEYS: usize = 50;
const SHOWN_VALUE_BYTES: usize = 200;

/// What the run left in the plugin's buckets (its own, and the device's),
/// when it used any.
async fn state(
    kv: &dyn KeyValue,
    plugin: &Plugin,
    device: &DeviceId,
    out: &mut String,
) -> anyhow::Result<()> {
    let name: Arc<str> = Arc::from(plugin.name());
    for bucket in [
        Bucket {
            plugin: name.clone(),
            device: None,
        },
        Bucket {
            plugin: name.clone(),
            device: Some(device.clone()),
        },
    ] {
        let keys = kv.keys(&bucket, None).await?;
        if keys.keys.is_empty() {
            continue;
        }
        let which = match &bucket.device {
            None => "its own bucket".to_owned(),
            Some(device) => format!("the bucket of device {device}"),
        };
        writeln!(out, "\nkey-value state, {which}:")?;
        for key in keys.keys.iter().take(SHOWN_KEYS) {
            let Some(entry) = kv.get(&bucket, key).await? else {
                continue;
            };
            let shown = &entry.value[..entry.value.len().min(SHOWN_VALUE_BYTES)];
            let more = if shown.len() < entry.value.len() {
                "…"
            } else {
                ""
            };
            writeln!(out, "{key} = {}{more}", String::from_utf8_lossy(shown))?;
        }
        if keys.keys.len() > SHOWN_KEYS || keys.cursor.is_some() {
            writeln!(out, "(more keys not shown)")?;
        }
    }
    Ok(())
}

/// The plugin of `t`, loaded in an engine of its own with its
/// configuration, limits and key-value store.
async fn load(
    t: &TestRun,
    config: serde_json::Value,
    limits: Limits,
    kv: Arc<KvFile>,
) -> anyhow::Result<Plugin> {
    let wasm = std::fs::read(&t.wasm).with_context(|| format!("reading {}", t.wasm.display()))?;
    let engine = WasmEngine::new(&EngineOptions {
        instances: 4,
        max_memory: limits.memory,
        cache_dir: None,
        kv: Some(kv),
    })
    .context("setting up the wasm engine")?;
    let name = t
        .wasm
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin")
        .to_owned();
    tokio::task::spawn_blocking(move || Plugin::load(&engine, &name, &wasm, &config, limits))
        .await?
        .with_context(|| format!("loading {}", t.wasm.display()))
}

/// What a plugin runs with: its configuration, its limits and the `type`
/// of its manifest's `[auth]`.
type Configured = (serde_json::Value, Limits, Option<&'static str>);

/// The plugin's configuration, limits and auth: from `--config` (a
/// manifest, or a JSON configuration), else from its [default
/// manifest](default_manifest), else an empty configuration and the
/// default limits.
fn configuration(t: &TestRun, dir: &Path) -> anyhow::Result<Configured> {
    let Some(path) = t.config.clone().or_else(|| default_manifest(&t.wasm, dir)) else {
        return Ok((serde_json::json!({}), Limits::default(), None));
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        let json = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        return Ok((json, Limits::default(), None));
    }
    let defaults = DefaultLimits::new(Limits::default());
    let m = Manifest::parse(&text, &defaults, 4 << 30, |v| std::env::var(v).ok())
        .with_context(|| format!("manifest {}", path.display()))?;
    let auth = m.auth.as_ref().map(|a| a.kind());
    Ok((m.config, m.limits.current(), auth))
}

/// The manifest `plugin test` reads when `--config` is not given: the one
/// installed beside the `.wasm` (`NAME.wasm` + `NAME.toml`), or, as in a
/// plugin crate's directory, `NAME.toml` in the current directory.
fn default_manifest(wasm: &Path, dir: &Path) -> Option<PathBuf> {
    let beside = wasm.with_extension("toml");
    let here = dir.join(wasm.file_stem()?).with_extension("toml");
    [beside, here].into_iter().find(|p| p.is_file())
}
