//! The command line: where the host is, how many devices publish how many
//! events, and at what pace.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::devices::Pace;

/// Load tool for edgehook: simulated devices publish events over MQTT, one
/// Particle-style webhook sends each to a loopback sink, and every
/// hook-response is matched back to its event.
///
/// Exit status: 0 when every event got its response (no loss, duplicate,
/// wrong topic or hook-error), 1 when not, 2 when the run could not be made.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// Broker address the devices connect to [default: 127.0.0.1:1883, or
    /// the spawned host's broker]
    #[arg(long, value_name = "ADDR")]
    pub mqtt: Option<String>,
    /// Base URL of the host's API (not used with --spawn)
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    pub api: String,
    /// Bearer token of the API [default: EDGEHOOK_API_TOKEN, or the token
    /// file in --data]
    #[arg(long, env = "EDGEHOOK_API_TOKEN", value_name = "TOKEN")]
    pub token: Option<String>,
    /// Data directory of a local host, to read its generated token from
    #[arg(long, default_value = "data", value_name = "DIR")]
    pub data: PathBuf,
    /// Start this edgehook binary in a temporary directory, measure it, and
    /// stop it at the end
    #[arg(long, value_name = "EDGEHOOK", conflicts_with = "host_pid")]
    pub spawn: Option<PathBuf>,
    /// With --spawn: the host uses this external broker (its --mqtt-url),
    /// and the devices connect to it too
    #[arg(long, value_name = "URL", requires = "spawn")]
    pub host_mqtt_url: Option<String>,
    /// Measure the CPU time and peak memory of this running host
    #[arg(long, value_name = "PID")]
    pub host_pid: Option<u32>,
    /// Simulated devices, each one MQTT client
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub devices: u32,
    /// Events in all, spread evenly over the devices
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub events: u32,
    /// Size of each event's data in bytes: `{"seq":N,"value":"xx…"}`
    /// padded to this size
    #[arg(long, default_value_t = 64, value_name = "BYTES")]
    pub size: usize,
    /// Publish at this total rate, paced evenly across the devices
    #[arg(long, value_name = "EVENTS_PER_S", group = "mode", value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// Publish as fast as responses come back, with at most W events
    /// awaiting their response across all devices [default mode: 1000]
    #[arg(long, value_name = "W", group = "mode", value_parser = clap::value_parser!(u32).range(1..))]
    pub window: Option<u32>,
    /// Every device publishes all its events at once, as fast as its MQTT
    /// client takes them
    #[arg(long, group = "mode")]
    pub flood: bool,
    /// Webhooks registered during the run: the one that answers the
    /// events, and K-1 others whose event prefix matches none
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub webhooks: u32,
    /// Register the devices in the host's registry and log each one in with
    /// its own key, as on a host with `--mqtt-auth devices` (a spawned host
    /// gets that flag); they are removed again at the end
    #[arg(long, conflicts_with = "host_mqtt_url")]
    pub device_logins: bool,
    /// Stop waiting when nothing was published or answered for this long
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub timeout: u64,
    /// WebSocket API clients, each subscribed to the telemetry of every
    /// device (at most 64 devices), counting the frames they get
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub ws_clients: usize,
    /// The auth the host does for the webhook's requests: none, a bearer
    /// token, an OAuth 2 token from the sink's token endpoint (the report
    /// counts the token requests), or an AWS SigV4 signature
    #[arg(long, value_enum, default_value_t = Auth::None)]
    pub auth: Auth,
    /// Run the events through this plugin instead of the Particle-style
    /// webhook: installed over the API for the run (a plugin that posts
    /// `{"seq":N}` for an event `{"seq":N,…}` to `config.url`, as the
    /// tests' `stateful` fixture does with its key-value work)
    #[arg(long, value_name = "WASM", conflicts_with = "auth")]
    pub plugin: Option<PathBuf>,
    /// With --plugin: its configuration besides `url`, as TOML lines
    /// (e.g. `load_op = "count"`)
    #[arg(long, value_name = "TOML", requires = "plugin", default_value = "")]
    pub plugin_config: String,
    /// Idle devices connected before the run and through it, keeping alive
    /// only; the report gives the host's memory per idle device and its CPU
    /// for them (each is a socket of this tool: `ulimit -n` bounds N)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub idle: usize,
    /// With --spawn and --idle: before the run, kill the host (as a crash
    /// would) and start it again on the same ports and data; the idle
    /// devices connect again (each after a random delay of up to 1 s, then
    /// every second until taken) while the run goes on, and the report
    /// gives how long it took until every one was back
    #[arg(long, requires_all = ["spawn", "idle"], conflicts_with = "host_mqtt_url")]
    pub restart: bool,
    /// With --spawn: one more argument of the host's `serve`, e.g.
    /// `--host-arg=--history-max-bytes=0` (repeat for more)
    #[arg(
        long,
        value_name = "ARG",
        requires = "spawn",
        allow_hyphen_values = true
    )]
    pub host_arg: Vec<String>,
    /// With --spawn: the host exports its traces to this tool's OTLP/HTTP
    /// endpoint (`--otlp-endpoint`); the report counts the exports
    #[arg(long, requires = "spawn")]
    pub otlp: bool,
    /// Print the report as one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
}

/// The webhook's `auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Auth {
    /// No auth.
    None,
    /// `bearer`.
    Bearer,
    /// `oauth2-client-credentials`, the sink being the token endpoint.
    Oauth2,
    /// `aws-sigv4`.
    AwsSigv4,
}

/// The window of the default mode.
const DEFAULT_WINDOW: usize = 1000;

impl Args {
    /// How the devices pace their events.
    pub fn pace(&self) -> Pace {
        match (self.rate, self.window, self.flood) {
            (Some(rate), _, _) => Pace::Rate(rate),
            (_, _, true) => Pace::Flood,
            (_, Some(window), _) => Pace::Window(window as usize),
            (None, None, false) => Pace::Window(DEFAULT_WINDOW),
        }
    }

    /// How long to wait without progress before giving up.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("a rate is a positive number of events per second".to_owned()),
    }
}
