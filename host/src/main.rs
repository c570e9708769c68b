//! The `edgehook` command line: parse, load the configuration, run.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use edgehook::config::{Config, Settings};
use edgehook::remote::deliveries::{DeliveriesCommand, deliveries};
use edgehook::remote::fleet::{self, DeviceCommand, GroupCommand};
use edgehook::remote::plugins;
use edgehook::remote::{ApiArgs, ApiClient};

#[derive(Debug, Parser)]
#[command(
    name = "edgehook",
    version = edgehook::VERSION,
    about = "A webhook engine for IoT fleets: MQTT in, sandboxed wasm transform, HTTP out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the host: embedded MQTT broker (or an external one), plugins, API
    Serve {
        /// TOML configuration file; its keys are the flags' names with `_` for `-`
        #[arg(long, env = "EDGEHOOK_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Write, try, install and remove plugins
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Manage the Particle-style webhooks of a running host
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Manage the registered devices of a running host
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Manage the device groups of a running host
    Group {
        #[command(subcommand)]
        command: GroupCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The delivery history of a running host: list, show and replay attempts
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print the live event stream of a running host, one JSON object a line
    Subscribe {
        /// Only events whose name starts with this
        prefix: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Create a webhook from a Particle-style JSON file
    Create {
        /// The webhook definition
        file: PathBuf,
    },
    /// List the webhooks
    List,
    /// Delete a webhook
    Delete {
        /// The webhook's id (see `list`)
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Scaffold a plugin crate that builds for wasm32-wasip2 against the guest SDK
    New {
        /// Plugin name: lowercase letters, digits, '-' and '_'
        name: String,
        /// Where to create the crate
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Path of the guest SDK crate [default: the SDK of this edgehook's source tree]
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
    },
    /// Run a plugin on one event, offline, and print what it would do
    Test(edgehook::offline::TestRun),
    /// Install or replace a plugin on a running host (on a cluster, on every host)
    Push {
        /// The plugin module, NAME.wasm: the plugin is named NAME
        wasm: PathBuf,
        /// Its manifest
        manifest: PathBuf,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove a plugin from a running host (on a cluster, from every host)
    Remove {
        /// The plugin's name
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `serve` reads its file first: the log format may be set there.
    let serve = match &cli.command {
        Command::Serve { config, settings } => {
            let file = match config {
                Some(path) => Config::read_file(path)?,
                None => Settings::default(),
            };
            Some((**settings).clone().or(file))
        }
        _ => None,
    };
    edgehook::logging::init(
        serve
            .as_ref()
            .and_then(|s| s.log_level.as_deref())
            .unwrap_or(edgehook::logging::DEFAULT_LEVEL),
        serve
            .as_ref()
            .and_then(|s| s.log_format)
            .unwrap_or_default(),
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve {
                config: file,
                settings: given,
            } => {
                let settings = serve.expect("read above for serve");
                // Both handlers before the host starts.
                let stop = shutdown_signal();
                let reloads = reloads(file, *given);
                edgehook::server::run(Config::build(settings)?, stop, reloads).await
            }
            Command::Plugin { command } => plugin(command).await,
            Command::Webhook { command, api } => webhook(command, &ApiClient::new(&api)?).await,
            Command::Device { command, api } => {
                print!("{}", fleet::device(command, &ApiClient::new(&api)?).await?);
                Ok(())
            }
            Command::Deliveries { command, api } => {
                print!("{}", deliveries(command, &ApiClient::new(&api)?).await?);
                Ok(())
            }
            Command::Group { command, api } => {
                print!("{}", fleet::group(command, &ApiClient::new(&api)?).await?);
                Ok(())
            }
            Command::Subscribe { prefix, api } => subscribe(prefix, &ApiClient::new(&api)?).await,
        }
    })
}

async fn plugin(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::New { name, dir, sdk } => {
            let sdk = sdk.unwrap_or_else(|| {
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk"))
            });
            let sdk = std::fs::canonicalize(&sdk).with_context(|| {
                format!("guest SDK not found at {} (give --sdk DIR)", sdk.display())
            })?;
            let path = edgehook::scaffold::new_plugin(
                &dir,
                &name,
                edgehook::scaffold::SdkSource::Path(sdk),
            )?;
            println!("created {}", path.display());
            if let Some(missing) = edgehook::scaffold::missing_wasm_target(&path) {
                eprintln!("note: {missing}");
            }
        }
        PluginCommand::Test(run) => {
            print!("{}", edgehook::offline::run(run, Path::new("")).await?);
        }
        PluginCommand::Push {
            wasm,
            manifest,
            api,
        } => {
            let client = ApiClient::new(&api)?;
            print!("{}", plugins::push(&client, &wasm, &manifest).await?);
        }
        PluginCommand::Remove { name, api } => {
            print!("{}", plugins::remove(&ApiClient::new(&api)?, &name).await?);
        }
    }
    Ok(())
}

/// Prints the live event stream, one JSON object a line.
async fn subscribe(prefix: Option<String>, client: &ApiClient) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    client
        .subscribe(prefix.as_deref(), |json| {
            let _ = writeln!(out, "{json}");
            let _ = out.flush();
        })
        .await?;
    Ok(())
}

async fn webhook(command: WebhookCommand, client: &ApiClient) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Create { file } => {
            let text =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            println!("Using settings from the file {}", file.display());
            let created = client
                .call(http::Method::POST, "/v1/webhooks", Some(text.into()))
                .await
                .with_context(|| format!("webhook {} not created", file.display()))?;
            println!(
                "Created webhook {} watching for {}",
                created["id"].as_str().unwrap_or_default(),
                created
                    .get("event")
                    .or_else(|| created.get("eventName"))
                    .unwrap_or(&serde_json::Value::Null)
            );
        }
        WebhookCommand::List => {
            let all = client.call(http::Method::GET, "/v1/webhooks", None).await?;
            let hooks = all.as_array().map(Vec::as_slice).unwrap_or_default();
            print!("{}", edgehook::remote::describe_list(hooks));
        }
        WebhookCommand::Delete { id } => {
            let path = format!("/v1/webhooks/{id}");
            client.call(http::Method::DELETE, &path, None).await?;
            println!("Deleted webhook {id}");
        }
    }
    Ok(())
}

/// On each SIGHUP, the configuration read again: the config `file` (if
/// any) under the command line and environment's settings, `given`. The
/// handler is installed when this is called, before the host starts (a
/// SIGHUP then no longer ends the process).
#[cfg(unix)]
fn reloads(
    file: Option<PathBuf>,
    given: Settings,
) -> impl futures::Stream<Item = anyhow::Result<Config>> {
    use tokio::signal::unix::{SignalKind, signal};
    let hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => Some(hangups),
        Err(err) => {
            tracing::error!("cannot listen for SIGHUP: {err}");
            None
        }
    };
    futures::stream::unfold(hangups, move |hangups| {
        let (file, given) = (file.clone(), given.clone());
        async move {
            let mut hangups = hangups?;
            hangups.recv().await?;
            tracing::info!("SIGHUP: reading the configuration again");
            let read = match &file {
                Some(path) => Config::read_file(path),
                None => Ok(Settings::default()),
            };
            let built = read
                .and_then(|from_file| Config::build(given.or(from_file)))
                .map_err(anyhow::Error::from);
            Some((built, Some(hangups)))
        }
    })
}

/// No SIGHUP: nothing to reload on.
#[cfg(not(unix))]
fn reloads(
    _file: Option<PathBuf>,
    _given: Settings,
) -> impl futures::Stream<Item = anyhow::Result<Config>> {
    futures::stream::pending()
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed
/// when this is called, before the host starts: a stop asked for right
/// after the ready line (a service manager's) is a clean stop too.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let (mut interrupt, mut terminate) = match (interrupt, terminate) {
            (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
            (Err(err), _) | (_, Err(err)) => {
                tracing::error!("cannot listen for SIGINT and SIGTERM: {err}");
                return std::future::pending().await;
            }
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    }
}
