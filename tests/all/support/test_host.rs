//! A host in this test process ([`TestHost`]): started on loopback ports in
//! a temporary directory with its plugins, restarted on the same
//! directories, and read through its API ([`super::HostUnderTest`]).

use std::path::PathBuf;

use edgehook::config::{Config, Settings};
use edgehook::server::Host;

use super::{UNPACED, install};

/// A host running in a temporary directory, on loopback ports.
pub struct TestHost {
    pub host: Host,
    pub dir: tempfile::TempDir,
}

impl TestHost {
    /// A host without plugin files that retries failed requests after
    /// `delays` (e.g. "200ms, 400ms").
    pub async fn retrying(delays: &str) -> Self {
        Self::start(
            &[],
            Settings {
                retry_delays: Some(delays.into()),
                ..Settings::default()
            },
        )
        .await
    }

    /// Starts a host whose plugins directory holds `plugins` (name, wasm
    /// path, manifest text), with private networks allowed (the endpoints
    /// of the tests are on loopback) unless `settings` says otherwise.
    pub async fn start(plugins: &[(&str, &str, &str)], settings: Settings) -> Self {
        init_logging();
        let dir = tempfile::tempdir().expect("temporary directory");
        let plugins_dir = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins_dir).unwrap();
        for (name, wasm, manifest) in plugins {
            install(&plugins_dir, name, wasm, manifest);
        }
        let defaults = Settings {
            mqtt_listen: Some("127.0.0.1:0".parse().unwrap()),
            api_listen: Some("127.0.0.1:0".parse().unwrap()),
            plugins: Some(plugins_dir),
            webhooks: Some(dir.path().join("webhooks")),
            data: Some(dir.path().join("data")),
            allow_private_networks: Some(true),
            plugin_instances: Some(32),
            // The tests of other behaviour want the first failure's
            // hook-error at once; tests of retries set their own.
            retry_delays: Some(String::new()),
            device_publish_rate: Some(UNPACED.into()),
            ..Settings::default()
        };
        let settings = if settings.mqtt_url.is_some() {
            Settings {
                mqtt_listen: None,
                ..settings.or(defaults)
            }
        } else {
            settings.or(defaults)
        };
        let cfg = Config::build(settings).expect("valid test configuration");
        let host = Host::start(cfg).await.expect("host starts");
        Self { host, dir }
    }

    /// Stops this host and starts another on the same plugins, webhooks and
    /// data directories (loopback ports again); the directories live on in
    /// the returned [`TestHost`].
    pub async fn restart(self) -> Self {
        let Self { host, dir } = self;
        host.stop().await;
        let cfg = Config::build(Settings {
            mqtt_listen: Some("127.0.0.1:0".parse().unwrap()),
            api_listen: Some("127.0.0.1:0".parse().unwrap()),
            plugins: Some(dir.path().join("plugins")),
            webhooks: Some(dir.path().join("webhooks")),
            data: Some(dir.path().join("data")),
            allow_private_networks: Some(true),
            retry_delays: Some(String::new()),
            device_publish_rate: Some(UNPACED.into()),
            ..Settings::default()
        })
        .expect("valid test configuration");
        let host = Host::start(cfg).await.expect("host restarts");
        Self { host, dir }
    }

    /// The plugins directory.
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("EDGEHOOK_LOG_LEVEL").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}
