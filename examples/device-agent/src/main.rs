//! An example device agent for edgehook's WebSocket API (README: "Live
//! telemetry and commands").
//!
//! It connects to the broker as device `--id`, publishes its load average
//! as the `load` event every `--every`, and answers the commands the host
//! sends on `devices/{id}/commands`: a command runs only when its text is
//! one of the allow-list's names (`--allow NAME=PROGRAM ARG…`, or the
//! defaults below), as that fixed program with fixed arguments — never
//! through a shell. Output goes back as `{"chunk", "fd"}` on
//! `devices/{id}/command-output/{request_id}` (line by line when the
//! command asked for `stream_output`, at the end otherwise), then
//! `{"exit_code"}` on `devices/{id}/command-done/{request_id}`.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};

/// The commands allowed when no `--allow` is given.
const DEFAULT_ALLOW: [(&str, &[&str]); 3] = [
    ("uptime", &["uptime"]),
    ("date", &["date", "-u"]),
    ("disk", &["df", "-h", "/"]),
];

/// Largest output chunk published at once, in bytes.
const CHUNK: usize = 512;

#[derive(Debug, Parser)]
#[command(about = "An example edgehook device: telemetry and allow-listed commands")]
struct Args {
    /// The broker, host:port
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: String,
    /// This device's id
    #[arg(long, default_value = "agent-1")]
    id: String,
    /// This device's key (with `--mqtt-auth devices`)
    #[arg(long, env = "DEVICE_KEY")]
    key: Option<String>,
    /// How often to publish the load average
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// An allowed command: NAME=PROGRAM ARG… (repeatable; replaces the defaults)
    #[arg(long = "allow", value_name = "NAME=PROGRAM ARG…")]
    allow: Vec<String>,
}

/// Command name → the program and arguments it runs.
fn allow_list(args: &[String]) -> anyhow::Result<HashMap<String, Vec<String>>> {
    if args.is_empty() {
        return Ok(DEFAULT_ALLOW
            .iter()
            .map(|(name, argv)| {
                (
                    name.to_string(),
                    argv.iter().map(|a| a.to_string()).collect(),
                )
            })
            .collect());
    }
    args.iter()
        .map(|entry| {
            let (name, program) = entry
                .split_once('=')
                .with_context(|| format!("--allow {entry:?}: write NAME=PROGRAM ARG…"))?;
            let argv: Vec<String> = program.split_whitespace().map(str::to_owned).collect();
            anyhow::ensure!(!argv.is_empty(), "--allow {entry:?}: no program");
            Ok((name.to_owned(), argv))
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let allowed = allow_list(&args.allow)?;
    let (host, port) = args.mqtt.rsplit_once(':').context("--mqtt is host:port")?;
    // The client id is the device id: in `--mqtt-auth devices` mode the broker
    // refuses any other.
    let mut opts = MqttOptions::new(args.id.clone(), host, port.parse()?);
    opts.set_keep_alive(Duration::from_secs(30));
    if let Some(key) = &args.key {
        opts.set_credentials(&args.id, key);
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let commands = format!("devices/{}/commands", args.id);
    client.subscribe(&commands, QoS::AtLeastOnce).await?;
    tokio::spawn(telemetry(client.clone(), args.id.clone(), args.every));
    println!(
        "device {} on {}; commands allowed: {:?}",
        args.id,
        args.mqtt,
        {
            let mut names: Vec<_> = allowed.keys().collect();
            names.sort();
            names
        }
    );
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == commands => {
                match serde_json::from_slice::<Value>(&p.payload) {
                    Ok(command) => {
                        let job = Job {
                            client: client.clone(),
                            device: args.id.clone(),
                            argv: command["command"]
                                .as_str()
                                .and_then(|c| allowed.get(c))
                                .cloned(),
                            command,
                        };
                        tokio::spawn(job.run());
                    }
                    Err(err) => eprintln!("a command that is not JSON: {err}"),
                }
            }
            Ok(_) => {}
            Err(err) => {
                eprintln!("broker: {err}; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Publishes the 1-minute load average as the `load` event.
async fn telemetry(client: AsyncClient, device: String, every: Duration) {
    let topic = format!("devices/{device}/events/load");
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let one_minute = load.split_whitespace().next().unwrap_or("0").to_owned();
        let _ = client
            .publish(&topic, QoS::AtLeastOnce, false, one_minute)
            .await;
    }
}

/// One command from the host.
struct Job {
    client: AsyncClient,
    device: String,
    command: Value,
    /// What it runs, when its name is allowed.
    argv: Option<Vec<String>>,
}

impl Job {
    async fn run(self) {
        let Some(id) = self.command["request_id"].as_str().map(str::to_owned) else {
            return eprintln!("a command without request_id: {}", self.command);
        };
        let output = format!("devices/{}/command-output/{id}", self.device);
        let done = format!("devices/{}/command-done/{id}", self.device);
        let exit_code = match &self.argv {
            None => {
                let refusal = format!("not allowed: {}\n", self.command["command"]);
                self.chunk(&output, &refusal, "stderr").await;
                127
            }
            Some(argv) => self.spawn(argv, &output).await,
        };
        let end = json!({ "exit_code": exit_code }).to_string();
        let _ = self
            .client
            .publish(done, QoS::AtLeastOnce, false, end)
            .await;
    }

    /// Runs `argv` without a shell; its exit code.
    async fn spawn(&self, argv: &[String], output: &str) -> i32 {
        let child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(err) => {
                self.chunk(output, &format!("{}: {err}\n", argv[0]), "stderr")
                    .await;
                return 126;
            }
        };
        let streaming = self.command["stream_output"].as_bool().unwrap_or(false);
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        tokio::join!(
            self.pipe(stdout, output, "stdout", streaming),
            self.pipe(stderr, output, "stderr", streaming),
        );
        child.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1)
    }

    /// Publishes what `from` prints: line by line, or all at the end.
    async fn pipe(&self, from: impl AsyncRead + Unpin, output: &str, fd: &str, streaming: bool) {
        let mut lines = BufReader::new(from).lines();
        let mut all = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if streaming {
                self.chunk(output, &format!("{line}\n"), fd).await;
            } else {
                all.push_str(&line);
                all.push('\n');
            }
        }
        if !all.is_empty() {
            self.chunk(output, &all, fd).await;
        }
    }

    /// Publishes `text` as chunks of at most [`CHUNK`] bytes.
    async fn chunk(&self, output: &str, text: &str, fd: &str) {
        let mut rest = text;
        while !rest.is_empty() {
            let mut end = rest.len().min(CHUNK);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            let (piece, tail) = rest.split_at(end);
            let chunk = json!({ "chunk": piece, "fd": fd }).to_string();
            let _ = self
                .client
                .publish(output, QoS::AtLeastOnce, false, chunk)
                .await;
            rest = tail;
        }
    }
}
