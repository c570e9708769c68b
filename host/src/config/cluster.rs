//! The cluster's settings: the NATS servers a host shares the work
//! through, how long an event it took stays with it, and how it logs in to
//! NATS and checks the servers (README "Logins and TLS to the cluster").
//! The files are read when the host connects, not here.

use std::path::PathBuf;
use std::time::Duration;

use super::Settings;
use super::error::{ConfigError, invalid, list, within};

/// Several hosts on a NATS cluster with JetStream, each with its embedded
/// broker: events stored in the cluster's stream, shared by the hosts.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `nats://` URLs of the cluster's servers.
    pub urls: Vec<String>,
    /// How long an event taken and not finished stays with this host.
    pub ack_wait: Duration,
    /// The hosts' login to NATS and the servers' CA.
    pub auth: NatsAuth,
}

/// How the host logs in to NATS: one of these, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// A NATS credentials file: a user JWT and its nkey seed.
    Creds(PathBuf),
    /// A file holding a user nkey seed (`SU…`).
    Nkey(PathBuf),
    /// A user and the file holding its password.
    Password {
        /// The user name.
        user: String,
        /// The file holding the password.
        file: PathBuf,
    },
    /// A file holding a token.
    Token(PathBuf),
}

/// A client certificate for mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
}

/// The hosts' side of the cluster's authentication, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsAuth {
    /// How to log in; `None` logs in with the URL's user information, if
    /// any, or as nobody.
    pub login: Option<Login>,
    /// The CA that signed the servers' certificates; TLS is then required.
    pub ca_file: Option<PathBuf>,
    /// The host's own certificate, for servers that verify clients.
    pub client_cert: Option<ClientCert>,
}

impl Cluster {
    /// The cluster `s` names with `nats_url`, if any.
    pub(super) fn build(s: &Settings) -> Result<Option<Self>, ConfigError> {
        let auth = nats_auth(s)?;
        let auth_key = nats_auth_key(s);
        let Some(urls) = &s.nats_url else {
            if auth != NatsAuth::default() {
                return Err(invalid(auth_key, "applies only with nats_url".into()));
            }
            if s.nats_ack_wait.is_some() {
                return Err(invalid(
                    "nats_ack_wait",
                    "applies only with nats_url".into(),
                ));
            }
            return Ok(None);
        };
        if s.mqtt_url.is_some() {
            return Err(invalid(
                "mqtt_url",
                "does not apply with nats_url: devices log in to the hosts' embedded brokers (mqtt_listen), whose events are stored in JetStream".into(),
            ));
        }
        let ack_wait = within(
            "nats_ack_wait",
            s.nats_ack_wait,
            Duration::from_secs(30),
            Duration::from_secs(1)..=Duration::from_secs(3600),
            "1s..=1h",
        )?;
        let urls = list("nats_url", urls)?;
        if auth.login.is_some() && urls.iter().any(|u| carries_login(u)) {
            return Err(invalid(
                "nats_url",
                format!(
                    "carries a login (user:password@) and `{auth_key}` gives another: keep one"
                ),
            ));
        }
        Ok(Some(Self {
            urls,
            ack_wait,
            auth,
        }))
    }
}

/// Whether `url` has user information (`user:password@`) before its host.
fn carries_login(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

/// The hosts' login to NATS and TLS from the `nats_*` keys: at most one
/// way to log in, and every file with its partner.
fn nats_auth(s: &Settings) -> Result<NatsAuth, ConfigError> {
    let ways: Vec<&str> = [
        ("nats_creds", s.nats_creds.is_some()),
        ("nats_nkey", s.nats_nkey.is_some()),
        (
            "nats_user",
            s.nats_user.is_some() || s.nats_password_file.is_some(),
        ),
        ("nats_token_file", s.nats_token_file.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, given)| given.then_some(key))
    .collect();
    if let [_, second, ..] = ways.as_slice() {
        return Err(invalid(
            second,
            format!(
                "{} are each a way to log in to NATS: give at most one of nats_creds, nats_nkey, nats_user + nats_password_file, nats_token_file",
                ways.join(" and ")
            ),
        ));
    }
    let login = match (&s.nats_user, &s.nats_password_file) {
        (Some(user), Some(file)) => Some(Login::Password {
            user: user.clone(),
            file: file.clone(),
        }),
        (Some(_), None) => return Err(invalid("nats_user", "needs nats_password_file".into())),
        (None, Some(_)) => return Err(invalid("nats_password_file", "needs nats_user".into())),
        (None, None) => s
            .nats_creds
            .clone()
            .map(Login::Creds)
            .or_else(|| s.nats_nkey.clone().map(Login::Nkey))
            .or_else(|| s.nats_token_file.clone().map(Login::Token)),
    };
    let client_cert = match (&s.nats_tls_cert, &s.nats_tls_key) {
        (Some(cert), Some(key)) => Some(ClientCert {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (Some(_), None) => return Err(invalid("nats_tls_cert", "needs nats_tls_key".into())),
        (None, Some(_)) => return Err(invalid("nats_tls_key", "needs nats_tls_cert".into())),
        (None, None) => None,
    };
    Ok(NatsAuth {
        login,
        ca_file: s.nats_ca_file.clone(),
        client_cert,
    })
}

/// The first `nats_*` key of the login or TLS that is given, for messages.
fn nats_auth_key(s: &Settings) -> &'static str {
    [
        ("nats_creds", s.nats_creds.is_some()),
        ("nats_nkey", s.nats_nkey.is_some()),
        ("nats_user", s.nats_user.is_some()),
        ("nats_password_file", s.nats_password_file.is_some()),
        ("nats_token_file", s.nats_token_file.is_some()),
        ("nats_ca_file", s.nats_ca_file.is_some()),
        ("nats_tls_cert", s.nats_tls_cert.is_some()),
        ("nats_tls_key", s.nats_tls_key.is_some()),
    ]
    .into_iter()
    .find_map(|(key, given)| given.then_some(key))
    .unwrap_or("nats_url")
}
