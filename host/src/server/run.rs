//! Running a host as the `serve` command does: start, the ready line,
//! systemd's notifications, reloads until the shutdown signal, stop.

use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;

use super::Host;
use crate::config::{Broker, Config};
use crate::ingress::acl::MqttAuth;

/// Runs a host until `shutdown` resolves, printing the ready line; each
/// configuration `reloads` gives (SIGHUP's) is applied as far as it can be
/// live, and one that could not be read or checked changes nothing.
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()>,
    reloads: impl Stream<Item = anyhow::Result<Config>>,
) -> anyhow::Result<()> {
    let plugins_dir = cfg.plugins_dir.clone();
    let webhooks_dir = cfg.webhooks_dir.clone();
    let shared = cfg.cluster.is_some();
    let mut logins = match cfg.broker {
        Broker::Embedded {
            auth: MqttAuth::Devices,
            ..
        } => "device logins",
        _ => "open to any client",
    }
    .to_owned();
    if shared {
        logins.push_str(", events in JetStream");
    }
    let host = Host::start(cfg).await?;
    let mqtt = match host.mqtt_addr {
        Some(addr) => match host.mqtt_tls_addr {
            Some(tls) => format!("MQTT on {addr} and TLS on {tls} (embedded broker, {logins})"),
            None => format!("MQTT on {addr} (embedded broker, {logins})"),
        },
        None => "MQTT via the external broker".to_owned(),
    };
    println!("API token: {}", host.api_token);
    println!(
        "edgehook ready: {mqtt}, API on http://{}, {} plugin(s) running from {}, {} webhook(s) (files in {})",
        host.api_addr,
        host.registry.running(),
        plugins_dir.display(),
        host.webhooks.particle.count(),
        webhooks_dir.display()
    );
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
