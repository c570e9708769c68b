//! How a host proves to NATS who it is, and checks that the server is the
//! cluster's (README "Logins and TLS to the cluster").
//!
//! [`NatsAuth`] is what the configuration names: at most one [`Login`]
//! (a credentials file, an nkey seed, a user with a password file, a
//! token file, or the user information of `--nats-url`), a CA to verify
//! the servers with, and a client certificate for mutual TLS. The files
//! are read once, when the host connects ([`NatsAuth::load`]): a file that
//! cannot be read stops start-up with a message naming the setting and the
//! file, never its content. What is read is kept in [`Loaded`], whose
//! `Debug` shows no secret.
//!
//! The URLs handed to the NATS client never carry credentials: user
//! information in `--nats-url` is taken out ([`split_userinfo`]) and given
//! as a login, so that no log line of the client can show it.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub use crate::config::{ClientCert, Login, NatsAuth};

/// A file of the NATS settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file cannot be read.
    #[error("config key `{key}`: cannot read {path}: {source}")]
    Read {
        /// The setting that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but holds nothing usable.
    #[error("config key `{key}`: {path}: {reason}")]
    Invalid {
        /// The setting that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never what it holds).
        reason: &'static str,
    },
}

/// A secret read from a file: shown as `***`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the login.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::secrets::MASK)
    }
}

/// What the files of a [`NatsAuth`] hold, ready for each connection
/// attempt.
#[derive(Debug, Clone)]
pub struct Loaded {
    login: Option<LoadedLogin>,
    ca_file: Option<PathBuf>,
    client_cert: Option<ClientCert>,
}

#[derive(Debug, Clone)]
enum LoadedLogin {
    Creds(Secret),
    Nkey(Secret),
    Password { user: String, password: Secret },
    Token(Secret),
}

impl NatsAuth {
    /// Reads every file named, with `userinfo` (taken out of the URLs by
    /// [`split_userinfo`]) as the login when no other is configured.
    pub fn load(&self, userinfo: Option<(String, Secret)>) -> Result<Loaded, AuthError> {
        let login = match &self.login {
            Some(Login::Creds(path)) => {
                let text = read("nats_creds", path)?;
                // Parsed once here, so that a bad file is named at start.
                async_nats::ConnectOptions::new()
                    .credentials(&text)
                    .map_err(|_| {
                        invalid(
                            "nats_creds",
                            path,
                            "not a NATS credentials file (a user JWT and its nkey seed)",
                        )
                    })?;
                Some(LoadedLogin::Creds(Secret(text)))
            }
            Some(Login::Nkey(path)) => {
                let seed = read("nats_nkey", path)?.trim().to_owned();
                nkeys::KeyPair::from_seed(&seed)
                    .map_err(|_| invalid("nats_nkey", path, "holds no nkey seed"))?;
                Some(LoadedLogin::Nkey(Secret(seed)))
            }
            Some(Login::Password { user, file }) => Some(LoadedLogin::Password {
                user: user.clone(),
                password: Secret(first_line("nats_password_file", file)?),
            }),
            Some(Login::Token(path)) => Some(LoadedLogin::Token(Secret(first_line(
                "nats_token_file",
                path,
            )?))),
            None => userinfo.map(|(user, password)| LoadedLogin::Password { user, password }),
        };
        for (key, path) in self
            .ca_file
            .iter()
            .map(|p| ("nats_ca_file", p))
            .chain(self.client_cert.iter().map(|c| ("nats_tls_cert", &c.cert)))
        {
            let pem = std::fs::read(path).map_err(|source| AuthError::Read {
                key,
                path: path.clone(),
                source,
            })?;
            if !CertificateDer::pem_slice_iter(&pem).any(|c| c.is_ok()) {
                return Err(invalid(key, path, "holds no PEM certificate"));
            }
        }
        if let Some(cert) = &self.client_cert {
            let pem = std::fs::read(&cert.key).map_err(|source| AuthError::Read {
                key: "nats_tls_key",
                path: cert.key.clone(),
                source,
            })?;
            rustls::pki_types::PrivateKeyDer::from_pem_slice(&pem)
                .map_err(|_| invalid("nats_tls_key", &cert.key, "holds no PEM private key"))?;
        }
        Ok(Loaded {
            login,
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
        })
    }
}

impl Loaded {
    /// `options` with this login and TLS.
    pub fn apply(
        &self,
        mut options: async_nats::ConnectOptions,
    ) -> std::io::Result<async_nats::ConnectOptions> {
        options = match &self.login {
            Some(LoadedLogin::Creds(text)) => options.credentials(text.expose())?,
            Some(LoadedLogin::Nkey(seed)) => options.nkey(seed.expose().to_owned()),
            Some(LoadedLogin::Password { user, password }) => {
                options.user_and_password(user.clone(), password.expose().to_owned())
            }
            Some(LoadedLogin::Token(token)) => options.token(token.expose().to_owned()),
            None => options,
        };
        if let Some(ca) = &self.ca_file {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some(ClientCert { cert, key }) = &self.client_cert {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options)
    }
}

/// `url` without its user information, and that information: `user:pass@`
/// as a user and password (percent-decoded). A URL without one is
/// returned as it is.
pub fn split_userinfo(url: &str) -> (String, Option<(String, Secret)>) {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return (url.to_owned(), None);
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_owned(), None);
    };
    let (user, password) = rest[..at].split_once(':').unwrap_or((&rest[..at], ""));
    let bare = format!("{}{}", &url[..scheme_end], &rest[at + 1..]);
    (
        bare,
        Some((percent_decode(user), Secret(percent_decode(password)))),
    )
}

/// `s` with its `%XX` escapes decoded (a `+` stays a `+`).
fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn read(key: &'static str, path: &Path) -> Result<String, AuthError> {
    std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

/// The first line of the file, which must not be empty: a password or a
/// token, with the line end an editor adds taken off.
fn first_line(key: &'static str, path: &Path) -> Result<String, AuthError> {
    let text = read(key, path)?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(invalid(key, path, "is empty"));
    }
    Ok(line.to_owned())
}

fn invalid(key: &'static str, path: &Path, reason: &'static str) -> AuthError {
    AuthError::Invalid {
        key,
        path: path.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_information_is_taken_out_of_the_url() {
        let (bare, login) = split_userinfo("nats://hosts:p%40ss+w@127.0.0.1:4222");
        assert_eq!(bare, "nats://127.0.0.1:4222");
        let (user, password) = login.unwrap();
        assert_eq!((user.as_str(), password.expose()), ("hosts", "p@ss+w"));
        assert_eq!(format!("{password:?}"), "***");
        let (bare, login) = split_userinfo("nats://127.0.0.1:4222");
        assert_eq!(bare, "nats://127.0.0.1:4222");
        assert!(login.is_none());
        let (bare, login) = split_userinfo("nats://tok@h:1/x@y");
        assert_eq!(bare, "nats://h:1/x@y");
        assert_eq!(login.unwrap().0, "tok");
    }

    #[test]
    fn files_that_cannot_be_used_are_named_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed");
        std::fs::write(&seed, "SUnotaseed-but-secret\n").unwrap();
        let missing = dir.path().join("missing");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        for (auth, key, path) in [
            (
                NatsAuth {
                    login: Some(Login::Nkey(seed.clone())),
                    ..NatsAuth::default()
                },
                "nats_nkey",
                &seed,
            ),
            (
                NatsAuth {
                    login: Some(Login::Password {
                        user: "hosts".into(),
                        file: missing.clone(),
                    }),
                    ..NatsAuth::default()
                },
                "nats_password_file",
                &missing,
            ),
            (
                NatsAuth {
                    login: Some(Login::Token(empty.clone())),
                    ..NatsAuth::default()
                },
                "nats_token_file",
                &empty,
            ),
            (
                NatsAuth {
                    ca_file: Some(seed.clone()),
                    ..NatsAuth::default()
                },
                "nats_ca_file",
                &seed,
            ),
        ] {
            let err = auth.load(None).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn a_password_file_gives_its_first_line_and_never_shows_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        let auth = NatsAuth {
            login: Some(Login::Password {
                user: "hosts".into(),
                file,
            }),
            ..NatsAuth::default()
        };
        let loaded = auth.load(None).unwrap();
        let Some(LoadedLogin::Password { user, password }) = &loaded.login else {
            panic!("a password login: {loaded:?}");
        };
        assert_eq!((user.as_str(), password.expose()), ("hosts", "s3cret"));
        assert!(!format!("{loaded:?}").contains("s3cret"));
    }
}
