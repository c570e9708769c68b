//! The report of a run: a table for people, one JSON object for scripts,
//! and whether the run passed.

use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

/// What a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// How the events were paced: `window 1000`, `rate 1000 events/s`, `flood`.
    pub mode: String,
    /// Simulated devices.
    pub devices: usize,
    /// Events meant to be published.
    pub events: usize,
    /// Bytes of each event's data.
    pub size: usize,
    /// Webhooks registered during the run.
    pub webhooks: usize,
    /// The broker the devices used.
    pub broker: String,
    /// Events published.
    pub sent: usize,
    /// Events answered with a hook-response.
    pub responses: usize,
    /// Events answered with a hook-error.
    pub hook_errors: usize,
    /// Published events with no answer.
    pub losses: usize,
    /// Answers to an event already answered.
    pub duplicates: usize,
    /// Messages that answer no event their device published.
    pub wrong_topics: usize,
    /// Seconds from the first publish to the last answer.
    pub seconds: f64,
    /// Responses per second over `seconds`.
    pub throughput: f64,
    /// Events published per second, from the first publish to the last.
    pub publish_rate: f64,
    /// Publish-to-response latency, when there were responses.
    pub latency_ms: Option<Latency>,
    /// The host's CPU and memory, when its process could be seen.
    pub host: Option<HostUsage>,
    /// CPU seconds the tool itself used during the run.
    pub bench_cpu_seconds: Option<f64>,
    /// Requests the webhook sink received.
    pub sink_requests: u64,
    /// Tokens its token endpoint gave (`--auth oauth2`).
    pub token_requests: u64,
    /// Trace exports its OTLP endpoint took (`--otlp`).
    pub trace_exports: u64,
    /// The idle devices (`--idle`), when there were any.
    pub idle: Option<IdleUsage>,
    /// WebSocket API clients subscribed to every device.
    pub ws_clients: usize,
    /// Telemetry frames they received in all.
    pub ws_frames: u64,
    /// The same per second of the run's wall time.
    pub ws_frames_per_s: f64,
    /// Clients the host closed during the run (too slow).
    pub ws_closed: u64,
    /// Why waiting stopped early, the first hook-errors and unexpected
    /// messages, lost connections.
    pub notes: Vec<String>,
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// The percentiles of a histogram of microseconds; `None` when empty.
    pub fn of(micros: &Histogram<u64>) -> Option<Self> {
        let ms = |us: u64| round2(us as f64 / 1000.0);
        (!micros.is_empty()).then(|| Self {
            p50: ms(micros.value_at_quantile(0.50)),
            p90: ms(micros.value_at_quantile(0.90)),
            p99: ms(micros.value_at_quantile(0.99)),
            max: ms(micros.max()),
        })
    }
}

/// What the host process used.
#[derive(Debug, Serialize)]
pub struct HostUsage {
    /// Its process id.
    pub pid: u32,
    /// CPU seconds (user + system) it used during the run.
    pub cpu_seconds: Option<f64>,
    /// The same as a share of one core over the run's wall time.
    pub cpu_percent: Option<f64>,
    /// Its peak resident set size (`VmHWM`), since it started.
    pub peak_rss_mib: Option<f64>,
}

/// What `--idle` devices cost the host.
#[derive(Debug, Clone, Serialize)]
pub struct IdleUsage {
    /// Idle devices connected.
    pub devices: usize,
    /// Seconds to connect them all.
    pub connect_seconds: f64,
    /// The host's resident set (`VmRSS`) before and after, MiB.
    pub rss_mib: Option<(f64, f64)>,
    /// The growth of the resident set per idle device, KiB.
    pub kib_per_device: Option<f64>,
    /// The host's CPU, as a share of one core, over a quiet window with
    /// only the idle devices connected.
    pub idle_cpu_percent: Option<f64>,
    /// With `--restart`: what the restart cost.
    pub restart: Option<Restart>,
}

/// A restart of the host under its idle devices (`--restart`).
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    /// Seconds from the kill until the host was ready again.
    pub ready_seconds: f64,
    /// Seconds from then until every idle device was connected again;
    /// `None` when not all of them were back within the run's timeout.
    pub reconnect_seconds: Option<f64>,
}

/// Rounds to 2 decimals.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Report {
    /// Every event published and answered once by a hook-response, and
    /// nothing else received.
    pub fn passed(&self) -> bool {
        let all_back = self
            .idle
            .as_ref()
            .and_then(|idle| idle.restart.as_ref())
            .is_none_or(|restart| restart.reconnect_seconds.is_some());
        all_back
            && self.sent == self.events
            && self.losses == 0
            && self.duplicates == 0
            && self.wrong_topics == 0
            && self.hook_errors == 0
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }
}

fn or_na(value: Option<f64>, unit: &str) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}{unit}"))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} devices, {} events of {} bytes, {}, {} webhook(s), broker {}",
            self.devices, self.events, self.size, self.mode, self.webhooks, self.broker
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, value: &dyn fmt::Display| {
            writeln!(f, "  {name:<16}{value}")
        };
        row(f, "sent", &self.sent)?;
        row(f, "responses", &self.responses)?;
        let throughput = format!(
            "{:.0} responses/s over {:.2} s (published at {:.0} events/s)",
            self.throughput, self.seconds, self.publish_rate
        );
        row(f, "throughput", &throughput)?;
        match &self.latency_ms {
            Some(latency) => {
                row(f, "latency p50", &format!("{:.2} ms", latency.p50))?;
                row(f, "latency p90", &format!("{:.2} ms", latency.p90))?;
                row(f, "latency p99", &format!("{:.2} ms", latency.p99))?;
                row(f, "latency max", &format!("{:.2} ms", latency.max))?;
            }
            None => row(f, "latency", &"n/a (no response)")?,
        }
        row(f, "losses", &self.losses)?;
        row(f, "duplicates", &self.duplicates)?;
        row(f, "wrong topics", &self.wrong_topics)?;
        row(f, "hook-errors", &self.hook_errors)?;
        match &self.host {
            Some(host) => {
                let cpu = format!(
                    "{} ({} of one core), pid {}",
                    or_na(host.cpu_seconds, " s"),
                    or_na(host.cpu_percent, "%"),
                    host.pid
                );
                row(f, "host CPU", &cpu)?;
                row(f, "host peak RSS", &or_na(host.peak_rss_mib, " MiB"))?;
            }
            None => row(f, "host", &"not measured (give --spawn or --host-pid)")?,
        }
        if let Some(idle) = &self.idle {
            let rss = match (idle.rss_mib, idle.kib_per_device) {
                (Some((before, after)), Some(per)) => {
                    format!("RSS {before} → {after} MiB, {per} KiB per device")
                }
                _ => "RSS not measured".to_owned(),
            };
            let line = format!(
                "{} connected in {} s, {rss}, host CPU idle {}",
                idle.devices,
                idle.connect_seconds,
                or_na(idle.idle_cpu_percent, "% of one core")
            );
            row(f, "idle devices", &line)?;
            if let Some(restart) = &idle.restart {
                let back = restart.reconnect_seconds.map_or_else(
                    || "not all back within the timeout".to_owned(),
                    |s| format!("all back {s} s later"),
                );
                let line = format!(
                    "ready again in {} s, idle devices {back}",
                    restart.ready_seconds
                );
                row(f, "restart", &line)?;
            }
        }
        row(f, "bench CPU", &or_na(self.bench_cpu_seconds, " s"))?;
        row(f, "sink requests", &self.sink_requests)?;
        if self.token_requests > 0 {
            row(f, "token requests", &self.token_requests)?;
        }
        if self.trace_exports > 0 {
            row(f, "trace exports", &self.trace_exports)?;
        }
        if self.ws_clients > 0 {
            let fan_out = format!(
                "{} frames to {} clients, {:.0} frames/s, {} closed by the host",
                self.ws_frames, self.ws_clients, self.ws_frames_per_s, self.ws_closed
            );
            row(f, "ws telemetry", &fan_out)?;
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        writeln!(f, "{}", if self.passed() { "PASS" } else { "FAIL" })
    }
}
