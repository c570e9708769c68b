//! [`Nats`]: the connection to the NATS cluster, made once at start-up,
//! which moves to another server when its server goes away.

use std::time::Duration;

use async_nats::jetstream;

use super::NatsError;
use super::auth::{self, NatsAuth};

/// How long start-up waits for the first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the NATS cluster, cheap to clone.
#[derive(Debug, Clone)]
pub struct Nats {
    pub(super) client: async_nats::Client,
    pub(super) js: jetstream::Context,
}

impl Nats {
    /// Connects to any server of `urls` as `auth` says; the client moves
    /// to another one when its server goes away. Servers that cannot be
    /// reached are tried again for `CONNECT_TIMEOUT`; a refused login or
    /// an untrusted certificate fails at once.
    pub async fn connect(urls: &[String], auth: &NatsAuth) -> Result<Self, NatsError> {
        let mut userinfo = None;
        let bare: Vec<String> = urls
            .iter()
            .map(|u| {
                let (bare, info) = auth::split_userinfo(u);
                userinfo = userinfo.take().or(info);
                bare
            })
            .collect();
        let shown = urls
            .iter()
            .map(|u| crate::secrets::url(u).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        let loaded = auth.load(userinfo)?;
        let fail = |reason: String| NatsError::Connect {
            urls: shown.clone(),
            reason,
        };
        let addrs = bare
            .iter()
            .map(|u| u.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        let client = loop {
            let options = async_nats::ConnectOptions::new()
                .name("edgehook")
                .connection_timeout(CONNECT_TIMEOUT)
                .event_callback(|event| async move {
                    match event {
                        async_nats::Event::Disconnected => tracing::warn!("NATS: disconnected"),
                        async_nats::Event::Connected => tracing::info!("NATS: connected"),
                        other => tracing::debug!("NATS: {other}"),
                    }
                });
            let options = loaded.apply(options).map_err(|e| fail(e.to_string()))?;
            let err = match options.connect(addrs.clone()).await {
                Ok(client) => break client,
                Err(err) => err,
            };
            if let Some(reason) = refusal(&err) {
                return Err(NatsError::Refused {
                    urls: shown,
                    reason,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(fail(format!(
                    "no server answered within {} s ({err})",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let js = jetstream::new(client.clone());
        Ok(Self { client, js })
    }

    /// Whether the connection to a server is up, for `/healthz`.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// What to say when `err` will not go away by trying again: the login was
/// refused, or TLS failed (the server's certificate not trusted, TLS
/// required by one side only); `None` for a server that could not be
/// reached.
fn refusal(err: &async_nats::ConnectError) -> Option<String> {
    use async_nats::ConnectErrorKind as Kind;
    if err.to_string().contains("CertificateRequired") {
        return Some(format!(
            "{err}: TLS failed: the server asks for a client certificate: give nats_tls_cert and nats_tls_key"
        ));
    }
    let hint = match err.kind() {
        Kind::AuthorizationViolation => {
            "the server refused the login: check the user and password of nats_url, or nats_user and nats_password_file, nats_token_file, nats_nkey, nats_creds"
        }
        Kind::Authentication => "the nkey or credentials could not sign the server's challenge",
        Kind::Tls => {
            "TLS failed: nats_ca_file must be the CA that signed the servers' certificates"
        }
        Kind::Io if tls_refused(err) => {
            "TLS failed: nats_ca_file must be the CA that signed the servers' certificates"
        }
        _ => return None,
    };
    Some(format!("{err}: {hint}"))
}

/// Whether the I/O error under `err` is one of rustls (a handshake that
/// failed, e.g. an unknown issuer).
fn tls_refused(err: &async_nats::ConnectError) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| inner.is::<async_nats::rustls::Error>())
}
