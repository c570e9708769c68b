//! Where the devices connect: a broker's address and credentials, and
//! clearing a client's persistent session there.

use std::time::Duration;

use anyhow::{Context, bail};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet};

/// How long the devices may take to connect and subscribe.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the devices connect.
#[derive(Debug, Clone)]
pub struct Broker {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) credentials: Option<(String, String)>,
}

impl Broker {
    /// A broker at `HOST:PORT`.
    pub fn from_addr(addr: &str) -> anyhow::Result<Self> {
        let (host, port) = addr
            .rsplit_once(':')
            .with_context(|| format!("broker address {addr:?} is not HOST:PORT"))?;
        let port = port
            .parse()
            .with_context(|| format!("broker address {addr:?}: bad port"))?;
        Ok(Self {
            host: host.trim_matches(['[', ']']).to_owned(),
            port,
            credentials: None,
        })
    }

    /// Its socket address, resolved.
    pub async fn socket_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .next()
            .with_context(|| format!("{}:{} does not resolve", self.host, self.port))
    }

    /// The broker of an `mqtt://[user:pass@]host[:port]` URL, with its
    /// credentials.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        let Some(rest) = url.strip_prefix("mqtt://") else {
            bail!("{url}: edgehook-bench speaks plain MQTT only (mqtt://HOST:PORT)");
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let (credentials, address) = match authority.rsplit_once('@') {
            Some((user_info, address)) => {
                let (user, pass) = user_info.split_once(':').unwrap_or((user_info, ""));
                (Some((user.to_owned(), pass.to_owned())), address)
            }
            None => (None, authority),
        };
        let with_port = if address.ends_with(']') || !address.contains(':') {
            format!("{address}:1883")
        } else {
            address.to_owned()
        };
        Ok(Self {
            credentials,
            ..Self::from_addr(&with_port)?
        })
    }
}

impl Broker {
    /// Client options for `client_id` on this broker, with a clean session.
    pub(super) fn options(&self, client_id: &str) -> MqttOptions {
        let mut options = MqttOptions::new(client_id, &self.host, self.port);
        options.set_keep_alive(Duration::from_secs(30));
        if let Some((user, pass)) = &self.credentials {
            options.set_credentials(user, pass);
        }
        options
    }

    /// Connects as `client_id` with a clean session and leaves: the broker
    /// drops whatever persistent session that id had, with the messages
    /// queued for it.
    pub async fn clear_session(&self, client_id: &str) -> anyhow::Result<()> {
        let (_client, mut connection) = AsyncClient::new(self.options(client_id), 1);
        let connected = async {
            loop {
                if let Event::Incoming(Packet::ConnAck(_)) = connection.poll().await? {
                    return anyhow::Ok(());
                }
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connected).await {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow::anyhow!("no CONNACK within {CONNECT_TIMEOUT:?}")),
        }
        .with_context(|| format!("clearing the session of {client_id} on {self}"))
    }
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}
