//! `edgehook plugin test`: one plugin, one event, no broker and no network.
//! Prints the request the plugin would send and, given a response, the
//! device events the host would publish.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bytes::Bytes;

use crate::event::Event;
use crate::exchange::{HookResponse, Outcome};
use crate::plugins::Manifest;
use crate::respond::publish::messages;
use crate::runtime::{DefaultLimits, EngineOptions, Limits, Plugin, WasmEngine};
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
    let plugin = load(&t, dir).await?;
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
        return Ok(out);
    };
    writeln!(out, "request:\n{} {}", request.method, request.url)?;
    for (k, v) in &request.headers {
        writeln!(out, "{k}: {v}")?;
    }
    writeln!(out, "\n{}", String::from_utf8_lossy(&request.body))?;

    let Some(path) = &t.response else {
        out.push_str("\n(give --response FILE to see the device events for a response)\n");
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
    Ok(out)
}

/// The plugin of `t`, loaded in an engine of its own with its
/// configuration and limits.
async fn load(t: &TestRun, dir: &Path) -> anyhow::Result<Plugin> {
    let (config, limits) = configuration(t, dir)?;
    let wasm = std::fs::read(&t.wasm).with_context(|| format!("reading {}", t.wasm.display()))?;
    let engine = WasmEngine::new(&EngineOptions {
        instances: 4,
        max_memory: limits.memory,
        cache_dir: None,
        kv: Some(std::sync::Arc::new(
            crate::stores::KvFile::in_memory().context("setting up key-value buckets in memory")?,
        )),
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

/// The plugin's configuration and limits: from `--config` (a manifest, or
/// a JSON configuration), else from its [default manifest](default_manifest),
/// else an empty configuration and the default limits.
fn configuration(t: &TestRun, dir: &Path) -> anyhow::Result<(serde_json::Value, Limits)> {
    let Some(path) = t.config.clone().or_else(|| default_manifest(&t.wasm, dir)) else {
        return Ok((serde_json::json!({}), Limits::default()));
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        let json = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        return Ok((json, Limits::default()));
    }
    let defaults = DefaultLimits::new(Limits::default());
    let m = Manifest::parse(&text, &defaults, 4 << 30, |v| std::env::var(v).ok())
        .with_context(|| format!("manifest {}", path.display()))?;
    Ok((m.config, m.limits.current()))
}

/// The manifest `plugin test` reads when `--config` is not given: the one
/// installed beside the `.wasm` (`NAME.wasm` + `NAME.toml`), or, as in a
/// plugin crate's directory, `NAME.toml` in the current directory.
fn default_manifest(wasm: &Path, dir: &Path) -> Option<PathBuf> {
    let beside = wasm.with_extension("toml");
    let here = dir.join(wasm.file_stem()?).with_extension("toml");
    [beside, here].into_iter().find(|p| p.is_file())
}
