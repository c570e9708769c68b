//! `edgehook-bench`: a load tool run against any edgehook. Simulated
//! devices publish events over MQTT, one Particle-style webhook sends each
//! to a loopback sink, and every hook-response is matched back to its event:
//! throughput, latency percentiles, losses, duplicates, wrong topics, and
//! the host's CPU and peak memory.

mod api;
mod args;
mod devices;
mod host;
mod idle;
mod report;
mod sink;
mod watchers;

use std::pin::pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

use crate::api::Api;
use crate::args::Args;
use crate::devices::{Broker, Fleet, Plan};
use crate::host::{Proc, Spawned};
use crate::idle::Idle;
use crate::report::{HostUsage, IdleUsage, Latency, Report, Restart, round2};
use crate::sink::Sink;
use crate::watchers::Watchers;

/// Where the devices connect when neither --mqtt nor --spawn says.
const DEFAULT_BROKER: &str = "127.0.0.1:1883";

/// How often the wait looks at the run's progress.
const POLL: Duration = Duration::from_millis(20);

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{report}");
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("edgehook-bench: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The host under test: its API, the broker its devices use, its process.
#[derive(Debug)]
struct Target {
    api: Api,
    broker: Broker,
    pid: Option<u32>,
    spawned: Option<Spawned>,
}

impl Target {
    /// Starts the host with --spawn, or finds the one the options name.
    async fn open(args: &Args, sink: &Sink) -> anyhow::Result<Self> {
        let broker = match (&args.mqtt, &args.host_mqtt_url) {
            (Some(addr), _) => Some(Broker::from_addr(addr)?),
            (None, Some(url)) => Some(Broker::from_url(url)?),
            (None, None) => None,
        };
        let Some(binary) = &args.spawn else {
            let token = match &args.token {
                Some(token) => token.clone(),
                None => Api::read_token(&args.data)?,
            };
            return Ok(Self {
                api: Api::new(&args.api, token),
                broker: broker.map_or_else(|| Broker::from_addr(DEFAULT_BROKER), Ok)?,
                pid: args.host_pid,
                spawned: None,
            });
        };
        let mut extra = args.host_arg.clone();
        if args.otlp {
            extra.extend(["--otlp-endpoint".to_owned(), sink.otlp_url()]);
        }
        let spawned = Spawned::start(
            binary,
            args.host_mqtt_url.as_deref(),
            args.device_logins,
            &extra,
        )
        .await?;
        let broker = match (broker, spawned.mqtt) {
            (Some(broker), _) => broker,
            (None, Some(embedded)) => Broker::from_addr(&embedded.to_string())?,
            (None, None) => unreachable!("a host without --mqtt-url has an embedded broker"),
        };
        Ok(Self {
            api: Api::new(&spawned.api, spawned.token.clone()),
            broker,
            pid: Some(spawned.pid),
            spawned: Some(spawned),
        })
    }
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    let sink = Sink::start().await?;
    let mut target = Target::open(args, &sink).await?;
    let others = args.webhooks as usize - 1;
    if others > 0 {
        eprintln!("edgehook-bench: creating {} webhooks", args.webhooks);
    }
    let plan = Plan {
        devices: args.devices as usize,
        events: args.events as usize,
        size: args.size,
        pace: args.pace(),
    };
    let devices: Vec<String> = match args.device_logins {
        true => (0..plan.devices).map(|i| plan.device_id(i)).collect(),
        false => Vec::new(),
    };
    let keys = match args.device_logins {
        true => Some(target.api.register_devices(&devices).await?),
        false => None,
    };
    if let Some(wasm) = &args.plugin {
        let config = &args.plugin_config;
        target
            .api
            .install_plugin(wasm, &sink.plain_url(), config)
            .await?;
    }
    let load = args.plugin.is_none().then_some(args.auth);
    let webhooks = target.api.create_webhooks(&sink, load, others).await?;
    let (idle, idle_usage) = match args.idle {
        0 => (None, None),
        count => {
            let (idle, usage) = connect_idle(count, &target).await?;
            (Some(idle), Some(usage))
        }
    };
    let ready_seconds = match (&idle, args.restart) {
        (Some(_), true) => Some(restart(&mut target).await?),
        _ => None,
    };
    let back = async {
        match (&idle, ready_seconds) {
            (Some(idle), Some(_)) => idle.all_back(args.timeout().max(RECONNECT_LIMIT)).await,
            _ => None,
        }
    };
    let (report, back) = tokio::join!(
        measure(args, plan, keys.as_deref(), &mut target, &sink),
        back
    );
    let idle_usage = idle_usage.map(|usage| IdleUsage {
        restart: ready_seconds.map(|ready_seconds| Restart {
            ready_seconds,
            reconnect_seconds: back.map(|d| round2(d.as_secs_f64())),
        }),
        ..usage
    });
    let report = report.map(|report| Report {
        idle: idle_usage,
        ..report
    });
    drop(idle);
    let cleanup = match target.spawned {
        Some(spawned) => spawned.stop().await,
        None => match target.api.delete_webhooks(&webhooks).await {
            Ok(()) if args.plugin.is_some() => match target.api.remove_plugin().await {
                Ok(()) => target.api.remove_devices(&devices).await,
                Err(err) => Err(err),
            },
            Ok(()) => target.api.remove_devices(&devices).await,
            Err(err) => Err(err),
        },
    };
    if let Err(err) = cleanup {
        eprintln!("edgehook-bench: warning: after the run: {err:#}");
    }
    report
}

/// How long the idle devices have to come back after a restart, at least.
const RECONNECT_LIMIT: Duration = Duration::from_secs(120);

/// Kills the spawned host and starts it again (`--restart`): the seconds
/// until it was ready.
async fn restart(target: &mut Target) -> anyhow::Result<f64> {
    let spawned = target
        .spawned
        .as_mut()
        .context("--restart needs a host started with --spawn")?;
    eprintln!("edgehook-bench: restarting the host");
    let start = Instant::now();
    spawned.restart().await?;
    target.pid = Some(spawned.pid);
    Ok(round2(start.elapsed().as_secs_f64()))
}

/// How long the host is watched with only the idle devices connected.
const IDLE_WINDOW: Duration = Duration::from_secs(5);

/// Connects `count` idle devices and measures what they cost the host: its
/// resident set before and after, and its CPU over [`IDLE_WINDOW`] with
/// nothing else going on.
async fn connect_idle(count: usize, target: &Target) -> anyhow::Result<(Idle, IdleUsage)> {
    let host = target.pid.map(Proc::pid);
    let before = host.as_ref().and_then(Proc::rss);
    eprintln!("edgehook-bench: connecting {count} idle devices");
    let idle = Idle::connect(target.broker.socket_addr().await?, count).await?;
    // Let the sessions settle before the resident set is read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = host.as_ref().and_then(Proc::rss);
    let cpu_before = host.as_ref().and_then(Proc::cpu_time);
    tokio::time::sleep(IDLE_WINDOW).await;
    let cpu_after = host.as_ref().and_then(Proc::cpu_time);
    let mib = |bytes: u64| round2(bytes as f64 / (1024.0 * 1024.0));
    let usage = IdleUsage {
        devices: count,
        connect_seconds: round2(idle.connect_time.as_secs_f64()),
        rss_mib: before.zip(after).map(|(b, a)| (mib(b), mib(a))),
        kib_per_device: before
            .zip(after)
            .map(|(b, a)| round2(a.saturating_sub(b) as f64 / 1024.0 / count as f64)),
        idle_cpu_percent: cpu_before
            .zip(cpu_after)
            .map(|(b, a)| round2(100.0 * (a - b).as_secs_f64() / IDLE_WINDOW.as_secs_f64())),
        restart: None,
    };
    Ok((idle, usage))
}

/// Connects the devices (each with its key, when given), runs the plan,
/// and reports.
async fn measure(
    args: &Args,
    plan: Plan,
    keys: Option<&[String]>,
    target: &mut Target,
    sink: &Sink,
) -> anyhow::Result<Report> {
    let mut fleet = Fleet::connect(&target.broker, plan, keys).await?;
    let watchers = if args.ws_clients > 0 {
        let url = target.api.stream_url();
        Some(Watchers::connect(&url, args.ws_clients, &fleet.ids()).await?)
    } else {
        None
    };
    announce(plan, &target.broker, keys.is_some());
    let cpu = CpuClock::start(target.pid);

    let start = Instant::now();
    fleet.start(start);
    let ending = wait(&fleet, args.timeout()).await;
    let (ws_frames, ws_closed) = match watchers {
        Some(watchers) => watchers.settle(Duration::from_secs(5)).await,
        None => (0, 0),
    };

    let wall = start.elapsed().as_secs_f64();
    let (host_cpu, my_cpu) = cpu.read();
    let host_peak_rss = cpu.host.as_ref().and_then(Proc::peak_rss);
    let exited = target.spawned.as_mut().and_then(Spawned::exited);
    let sink_requests = sink.requests();
    let token_requests = sink.tokens();
    let trace_exports = sink.trace_exports();
    let mut tally = fleet.finish();

    let seconds = tally
        .last_answer
        .map_or(0.0, |at| at.duration_since(start).as_secs_f64());
    let publish_seconds = tally
        .last_publish
        .map_or(0.0, |at| at.duration_since(start).as_secs_f64());
    let per_second = |count: usize, seconds: f64| {
        if seconds > 0.0 {
            round2(count as f64 / seconds)
        } else {
            0.0
        }
    };
    if let Some(why) = ending.note(args.timeout) {
        tally.notes.insert(0, why);
    }
    if let Some(status) = exited {
        tally
            .notes
            .insert(0, format!("the host exited during the run: {status}"));
    }
    Ok(Report {
        mode: plan.pace.to_string(),
        devices: plan.devices,
        events: plan.events,
        size: plan.size,
        webhooks: args.webhooks as usize,
        broker: target.broker.to_string(),
        sent: tally.sent,
        responses: tally.responses,
        hook_errors: tally.hook_errors,
        losses: tally.losses,
        duplicates: tally.duplicates,
        wrong_topics: tally.wrong_topics,
        seconds: round2(seconds),
        throughput: per_second(tally.responses, seconds),
        publish_rate: per_second(tally.sent, publish_seconds),
        latency_ms: Latency::of(&tally.latencies),
        host: target.pid.map(|pid| HostUsage {
            pid,
            cpu_seconds: host_cpu.map(round2),
            cpu_percent: host_cpu.map(|cpu| round2(100.0 * cpu / wall)),
            peak_rss_mib: host_peak_rss.map(|bytes| round2(bytes as f64 / (1024.0 * 1024.0))),
        }),
        bench_cpu_seconds: my_cpu.map(round2),
        sink_requests,
        token_requests,
        trace_exports,
        idle: None,
        ws_clients: args.ws_clients,
        ws_frames,
        ws_frames_per_s: per_second(ws_frames as usize, wall),
        ws_closed,
        notes: tally.notes,
    })
}

/// Says on standard error what the run is about to do.
fn announce(plan: Plan, broker: &Broker, logged_in: bool) {
    let logins = if logged_in {
        ", each logged in with its key,"
    } else {
        ""
    };
    eprintln!(
        "edgehook-bench: {} devices on {broker}{logins} publish {} events ({})",
        plan.devices, plan.events, plan.pace
    );
}

/// The CPU time the host and this tool used since the run started.
struct CpuClock {
    host: Option<Proc>,
    me: Proc,
    host_before: Option<Duration>,
    me_before: Option<Duration>,
}

impl CpuClock {
    /// Starts counting for the host `pid` (if known) and this process.
    fn start(pid: Option<u32>) -> Self {
        let host = pid.map(Proc::pid);
        let me = Proc::current();
        Self {
            host_before: host.as_ref().and_then(Proc::cpu_time),
            me_before: me.cpu_time(),
            host,
            me,
        }
    }

    /// Seconds of CPU the host and this tool used so far, where known.
    fn read(&self) -> (Option<f64>, Option<f64>) {
        let since = |proc: &Proc, before: Option<Duration>| {
            Some(proc.cpu_time()?.saturating_sub(before?).as_secs_f64())
        };
        let host = self
            .host
            .as_ref()
            .and_then(|host| since(host, self.host_before));
        (host, since(&self.me, self.me_before))
    }
}

/// Why the wait ended.
#[derive(Debug, PartialEq)]
enum Ending {
    /// Every event was answered.
    Answered,
    /// Nothing was published or answered for the timeout.
    Stalled,
    /// Ctrl-C.
    Interrupted,
}

impl Ending {
    fn note(&self, timeout: u64) -> Option<String> {
        match self {
            Self::Answered => None,
            Self::Stalled => Some(format!(
                "stopped waiting: nothing published or answered for {timeout} s (--timeout)"
            )),
            Self::Interrupted => Some("interrupted: the counts are those so far".to_owned()),
        }
    }
}

/// Waits until every event is answered, nothing moves for `timeout`, or
/// Ctrl-C.
async fn wait(fleet: &Fleet, timeout: Duration) -> Ending {
    let mut interrupt = pin!(tokio::signal::ctrl_c());
    let mut last = (0, 0);
    let mut moved = Instant::now();
    loop {
        tokio::select! {
            _ = &mut interrupt => return Ending::Interrupted,
            () = tokio::time::sleep(POLL) => {}
        }
        let progress = fleet.progress();
        let now = (progress.published(), progress.answered());
        if now.1 == fleet.events() {
            return Ending::Answered;
        }
        if now != last {
            last = now;
            moved = Instant::now();
        } else if moved.elapsed() >= timeout {
            return Ending::Stalled;
        }
    }
}
