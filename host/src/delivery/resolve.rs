//! DNS resolution that checks every resolved address at connect time, so a
//! name that resolves (or re-resolves, DNS rebinding) to a private address
//! is refused before any byte is sent.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

use super::guard::{NonPublic, non_public_reason};

/// A destination the host refuses to connect to.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "destination {host} refused: it resolves to {ip}, a {kind} address (start with --allow-private-networks to allow it)"
)]
pub struct Refused {
    /// The host name of the URL.
    pub host: String,
    /// The offending address.
    pub ip: std::net::IpAddr,
    /// Which range it is in.
    pub kind: NonPublic,
}

/// A name that did not resolve to any address.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot resolve {host}: {reason}")]
pub struct Unresolved {
    /// The host name.
    pub host: String,
    /// The resolver's message.
    pub reason: String,
}

/// The resolver of the HTTP client.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Whether loopback and private destinations are allowed.
    pub allow_private: bool,
}

impl GuardedResolver {
    /// Checks one address against the policy.
    pub fn check(&self, host: &str, ip: std::net::IpAddr) -> Result<(), Refused> {
        match non_public_reason(ip) {
            Some(kind) if !self.allow_private => Err(Refused {
                host: host.to_owned(),
                ip,
                kind,
            }),
            _ => Ok(()),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let this = *self;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Unresolved {
                    host: host.clone(),
                    reason: e.to_string(),
                })?
                .collect();
            if addrs.is_empty() {
                return Err(Unresolved {
                    host,
                    reason: "no addresses".into(),
                }
                .into());
            }
            for addr in &addrs {
                this.check(&host, addr.ip())?;
            }
            Ok(addrs.into_iter())
        })
    }
}
