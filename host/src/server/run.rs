//! Running a host as the `serve` command does: start, the ready line (for
//! people, or one JSON object for tools: README "Configuration reference",
//! `ready_format`), systemd's notifications, reloads until the shutdown
//! signal, stop.

use std::path::PathBuf;
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;

use super::Host;
use crate::config::{Broker, Config, MqttAuth, ReadyFormat};
use crate::secrets;

/// Runs a host until `shutdown` resolves, printing the ready line; each
/// configuration `reloads` gives (SIGHUP's) is applied as far as it can be
/// live, and one that could not be read or checked changes nothing.
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()>,
    reloads: impl Stream<Item = anyhow::Result<Config>>,
) -> anyhow::Result<()> {
    let ready = Ready::of(&cfg);
    let host = Host::start(cfg).await?;
    println!("API token: {}", host.api_token);
    println!("{}", ready.line(&host));
    let notifier = crate::service::Notifier::from_env().map(Arc::new);
    let watching = CancellationToken::new();
    if let Some(notifier) = &notifier {
        notifier.notify("READY=1");
        tokio::spawn(
            notifier
                .clone()
                .watch(host.liveness.clone(), watching.clone()),
        );
    }
    tokio::pin!(shutdown, reloads);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(reload) = reloads.next() => match reload {
                Ok(new) => host.reload(&new),
                Err(err) => tracing::error!("config not reloaded, the settings in force stay: {err:#}"),
            },
        }
    }
    tracing::info!("shutting down");
    watching.cancel();
    if let Some(notifier) = &notifier {
        notifier.notify("STOPPING=1");
    }
    host.stop().await;
    Ok(())
}

/// What the ready line says that the settings know before the host starts.
struct Ready {
    format: ReadyFormat,
    /// The external broker's URL, its credentials masked.
    mqtt_url: Option<String>,
    /// Who may log in to the embedded broker.
    auth: Option<MqttAuth>,
    /// Events are stored in the cluster's JetStream.
    cluster: bool,
    plugins_dir: PathBuf,
    webhooks_dir: PathBuf,
}

impl Ready {
    fn of(cfg: &Config) -> Self {
        let (mqtt_url, auth) = match &cfg.broker {
            Broker::Embedded { auth, .. } => (None, Some(*auth)),
            Broker::External { urls, .. } => (Some(secrets::url_list(urls)), None),
        };
        Self {
            format: cfg.ready_format,
            mqtt_url,
            auth,
            cluster: cfg.cluster.is_some(),
            plugins_dir: cfg.plugins_dir.clone(),
            webhooks_dir: cfg.webhooks_dir.clone(),
        }
    }

    /// The line `serve` prints once `host` takes events, in its format.
    fn line(&self, host: &Host) -> String {
        match self.format {
            ReadyFormat::Text => self.text(host),
            ReadyFormat::Json => self.json(host).to_string(),
        }
    }

    /// The line for people (the README shows it; keep it as it is).
    fn text(&self, host: &Host) -> String {
        let mut logins = match self.auth {
            Some(MqttAuth::Devices) => "device logins",
            _ => "open to any client",
        }
        .to_owned();
        if self.cluster {
            logins.push_str(", events in JetStream");
        }
        let mqtt = match host.mqtt_addr {
            Some(addr) => match host.mqtt_tls_addr {
                Some(tls) => format!("MQTT on {addr} and TLS on {tls} (embedded broker, {logins})"),
                None => format!("MQTT on {addr} (embedded broker, {logins})"),
            },
            None => "MQTT via the external broker".to_owned(),
        };
        format!(
            "edgehook ready: {mqtt}, API on http://{}, {} plugin(s) running from {}, {} webhook(s) (files in {})",
            host.api_addr,
            host.registry.running(),
            self.plugins_dir.display(),
            host.webhooks.particle.count(),
            self.webhooks_dir.display()
        )
    }

    /// One JSON object for tools; its keys are the settings' names
    /// (README "Configuration reference"), with the addresses bound.
    fn json(&self, host: &Host) -> serde_json::Value {
        let auth = self.auth.map(|auth| match auth {
            MqttAuth::Devices => "devices",
            MqttAuth::Open => "open",
        });
        serde_json::json!({
            "edgehook": "ready",
            "mqtt_listen": host.mqtt_addr.map(|addr| addr.to_string()),
            "mqtt_tls_listen": host.mqtt_tls_addr.map(|addr| addr.to_string()),
            "mqtt_auth": auth,
            "mqtt_url": self.mqtt_url,
            "nats": self.cluster,
            "api_listen": host.api_addr.to_string(),
            "plugins": self.plugins_dir.display().to_string(),
            "plugins_running": host.registry.running(),
            "webhooks": self.webhooks_dir.display().to_string(),
            "webhooks_count": host.webhooks.particle.count(),
        })
    }
}
