//! The HTTP client that sends webhook requests: hyper with rustls, pooled
//! connections, a whole-request timeout, a capped response body, address
//! checks at connect time, and no redirects followed.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::resolve::{GuardedResolver, Refused, Unresolved};
use crate::exchange::{HookRequest, HookResponse};

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("edgehook/", env!("CARGO_PKG_VERSION"));

/// Settings of the client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Whole request, connect to last body byte.
    pub timeout: Duration,
    /// Response body bytes kept; the rest is cut.
    pub max_response_bytes: usize,
    /// Let webhooks reach loopback and private addresses.
    pub allow_private: bool,
}

/// Why a request got no response. The message names the destination and
/// says what happened; it is what the device sees in its `hook-error`.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The destination address is not allowed.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The request took longer than the timeout.
    #[error("timeout after {secs} s waiting for {host}")]
    Timeout {
        /// The destination host.
        host: String,
        /// The timeout in seconds.
        secs: u64,
    },
    /// The name did not resolve.
    #[error(transparent)]
    Unresolved(#[from] Unresolved),
    /// Connecting, TLS or the exchange failed.
    #[error("request to {host} failed: {reason}")]
    Transport {
        /// The destination host.
        host: String,
        /// The deepest cause, e.g. "connection refused" or a TLS error.
        reason: String,
    },
}

/// Sends webhook requests.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    resolver: GuardedResolver,
    opts: ClientOptions,
}

impl HttpSender {
    /// A client with the webpki roots as trust anchors.
    pub fn new(opts: ClientOptions) -> Result<Self, crate::tls::TlsError> {
        let resolver = GuardedResolver {
            allow_private: opts.allow_private,
        };
        let mut http = HttpConnector::new_with_resolver(resolver);
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(opts.timeout));
        let tls = crate::tls::client_config(None)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(Self {
            client,
            resolver,
            opts,
        })
    }

    /// Sends `request`, with `event_id` as its `webhook-id` header so that
    /// receivers can deduplicate.
    pub async fn send(
        &self,
        request: &HookRequest,
        event_id: &str,
    ) -> Result<HookResponse, DeliveryError> {
        let host = request.url.host_str().unwrap_or_default().to_owned();
        if let Some(ip) = literal_ip(&request.url) {
            self.resolver.check(&host, ip)?;
        }
        let http_request = build(request, event_id).map_err(|reason| DeliveryError::Transport {
            host: host.clone(),
            reason,
        })?;
        let exchange = async {
            let response = self.client.request(http_request).await?;
            let (parts, body) = response.into_parts();
            let body = read_capped(body, self.opts.max_response_bytes).await?;
            Ok::<_, hyper_util::client::legacy::Error>((parts, body))
        };
        let (parts, body) = match tokio::time::timeout(self.opts.timeout, exchange).await {
            Err(_) => {
                return Err(DeliveryError::Timeout {
                    host,
                    secs: self.opts.timeout.as_secs(),
                });
            }
            Ok(Err(err)) => return Err(classify(host, &err)),
            Ok(Ok(done)) => done,
        };
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok(HookResponse {
            status: parts.status.as_u16(),
            headers,
            body,
        })
    }
}

fn literal_ip(url: &url::Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(ip.into()),
        url::Host::Ipv6(ip) => Some(ip.into()),
        url::Host::Domain(_) => None,
    }
}

fn build(request: &HookRequest, event_id: &str) -> Result<http::Request<Full<Bytes>>, String> {
    let mut builder = http::Request::builder()
        .method(request.method.clone())
        .uri(request.url.as_str());
    let has = |name: &str| {
        request
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    if !has("user-agent") {
        builder = builder.header(http::header::USER_AGENT, USER_AGENT);
    }
    if !has("webhook-id") {
        builder = builder.header("webhook-id", event_id);
    }
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(request.body.clone()))
        .map_err(|e| e.to_string())
}

/// Reads at most `cap` bytes of the body; the rest is discarded unread.
async fn read_capped(
    mut body: hyper::body::Incoming,
    cap: usize,
) -> Result<Bytes, hyper_util::client::legacy::Error> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|e| tracing::debug!("response body: {e}")) else {
            break;
        };
        if let Ok(chunk) = data.into_data() {
            let room = cap - buf.len();
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if buf.len() == cap {
                break;
            }
        }
    }
    Ok(buf.freeze())
}

/// Finds the cause worth telling the device in a client error's chain.
fn classify(host: String, err: &hyper_util::client::legacy::Error) -> DeliveryError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut deepest = err.to_string();
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return DeliveryError::Refused(refused.clone());
        }
        if let Some(unresolved) = e.downcast_ref::<Unresolved>() {
            return DeliveryError::Unresolved(unresolved.clone());
        }
        deepest = e.to_string();
        source = e.source();
    }
    DeliveryError::Transport {
        host,
        reason: deepest,
    }
}
