//! The HTTP client that sends webhook requests: hyper with rustls, pooled
//! connections, a whole-request timeout, a capped response body, address
//! checks at connect time, no redirects followed, and, per webhook, an
//! opt-out of certificate checks and a Standard Webhooks signature.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::resolve::{GuardedResolver, Refused, Unresolved};
use super::sign;
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

/// How one webhook's requests are sent (per webhook, from its definition).
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Skip verifying the server's certificate (Particle's `rejectUnauthorized: false`).
    pub insecure_tls: bool,
    /// Standard Webhooks signing key (the decoded bytes of `whsec_...`), when set.
    pub signing_key: Option<Arc<[u8]>>,
    /// The auth the host does for the webhook (`auth` with a `type`).
    pub auth: Option<Arc<crate::auth::Authorizer>>,
    /// Its own retry schedule (`retry.schedule`), in place of the host's.
    pub retry: Option<crate::throttle::RetrySchedule>,
}

impl SendOptions {
    /// Whether its requests depend on the clock being set (a signature,
    /// a token), and wait for it: see [`crate::auth::clock`].
    pub fn needs_clock(&self) -> bool {
        self.signing_key.is_some() || self.auth.as_ref().is_some_and(|a| a.needs_clock())
    }

    /// Whether an attempt may first have to wait: for the clock, or for
    /// an access token. (Checked before anything is allocated for it: most
    /// webhooks have neither.)
    pub fn may_wait(&self) -> bool {
        self.needs_clock() || self.auth.as_ref().is_some_and(|a| a.uses_token())
    }
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
    /// The server's certificate was refused. The webhook can accept it with
    /// `rejectUnauthorized: false`, and the message says so, since the
    /// device's owner is the one who can decide that.
    #[error(
        "request to {host} failed: {reason} ({hint}; set \"rejectUnauthorized\": false to accept it)"
    )]
    Certificate {
        /// The destination host.
        host: String,
        /// rustls's error, e.g. "invalid peer certificate: UnknownIssuer".
        reason: String,
        /// What that means, in words, e.g. "the certificate is not trusted".
        hint: &'static str,
    },
    /// The access token could not be had: its endpoint failed or did not
    /// answer with a token. Retried like the request it was for.
    #[error("token request to {host} failed: {reason}")]
    Token {
        /// The token endpoint's host.
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// Connecting, TLS or the exchange failed.
    #[error("request to {host} failed: {reason}")]
    Transport {
        /// The destination host.
        host: String,
        /// The deepest cause, e.g. "connection refused" or a TLS error.
        reason: String,
    },
}

/// A pooled client over the guarded resolver.
type Pooled = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// Sends webhook requests.
#[derive(Debug, Clone)]
pub struct HttpSender {
    /// Verifies certificates against the webpki roots.
    verified: Pooled,
    /// Accepts any certificate, for webhooks with `insecure_tls`. A pool
    /// of its own, so that a connection opened without checks is never
    /// reused by a webhook that wants them.
    unverified: Pooled,
    resolver: GuardedResolver,
    opts: ClientOptions,
}

impl HttpSender {
    /// A client with the webpki roots as trust anchors (and one without,
    /// for the webhooks that opt out).
    pub fn new(opts: ClientOptions) -> Result<Self, crate::tls::TlsError> {
        let resolver = GuardedResolver {
            allow_private: opts.allow_private,
        };
        Ok(Self {
            verified: pooled(&opts, resolver, crate::tls::client_config(None)?),
            unverified: pooled(&opts, resolver, crate::tls::insecure_client_config()?),
            resolver,
            opts,
        })
    }

    /// Sends `request`, with `event_id` as its `webhook-id` header so that
    /// receivers can deduplicate; over the pool that skips certificate
    /// checks if `opts.insecure_tls`, and signed if `opts.signing_key`.
    pub async fn send(
        &self,
        request: &HookRequest,
        event_id: &str,
        opts: &SendOptions,
    ) -> Result<HookResponse, DeliveryError> {
        self.send_with_auth(request, event_id, opts, &[]).await
    }

    /// [`Self::send`], with the `auth` headers in place of any the plugin
    /// set of the same names.
    pub async fn send_with_auth(
        &self,
        request: &HookRequest,
        event_id: &str,
        opts: &SendOptions,
        auth: &[(&'static str, String)],
    ) -> Result<HookResponse, DeliveryError> {
        let host = request.url.host_str().unwrap_or_default().to_owned();
        if let Some(ip) = literal_ip(&request.url) {
            self.resolver.check(&host, ip)?;
        }
        let signing = opts
            .signing_key
            .as_deref()
            .map(|key| Signing::at(key, SystemTime::now()));
        let http_request =
            build(request, event_id, signing, auth).map_err(|reason| DeliveryError::Transport {
                host: host.clone(),
                reason,
            })?;
        let client = if opts.insecure_tls {
            &self.unverified
        } else {
            &self.verified
        };
        let exchange = async {
            let response = client.request(http_request).await?;
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

/// One pooled client: the guarded resolver, the timeouts, HTTP/1 and
/// HTTP/2, and `tls` for `https` URLs.
fn pooled(opts: &ClientOptions, resolver: GuardedResolver, tls: rustls::ClientConfig) -> Pooled {
    let mut http = HttpConnector::new_with_resolver(resolver);
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(opts.timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https)
}

/// What signing one request takes: the key and the time it is sent.
#[derive(Debug, Clone, Copy)]
struct Signing<'a> {
    key: &'a [u8],
    /// Unix seconds, the `webhook-timestamp`.
    timestamp: u64,
}

impl<'a> Signing<'a> {
    fn at(key: &'a [u8], now: SystemTime) -> Self {
        let timestamp = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        Self { key, timestamp }
    }
}

/// The headers that belong to the host when it signs: a plugin's own are
/// dropped, so that the receiver sees exactly the values that were signed.
const SIGNED_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

fn literal_ip(url: &url::Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(ip.into()),
        url::Host::Ipv6(ip) => Some(ip.into()),
        url::Host::Domain(_) => None,
    }
}

/// The HTTP request: the plugin's, plus `User-Agent` and `webhook-id`
/// unless the plugin set them, plus the Standard Webhooks headers when
/// `signing`, plus the `auth` headers (the plugin's of the same names
/// dropped).
fn build(
    request: &HookRequest,
    event_id: &str,
    signing: Option<Signing<'_>>,
    auth: &[(&'static str, String)],
) -> Result<http::Request<Full<Bytes>>, String> {
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
    if let Some(Signing { key, timestamp }) = signing {
        let signature = sign::signature(key, event_id, timestamp, &request.body);
        builder = builder
            .header("webhook-id", event_id)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature);
    } else if !has("webhook-id") {
        builder = builder.header("webhook-id", event_id);
    }
    for (name, value) in &request.headers {
        let host_owned = (signing.is_some()
            && SIGNED_HEADERS
                .iter()
                .any(|signed| name.eq_ignore_ascii_case(signed)))
            || auth.iter().any(|(own, _)| name.eq_ignore_ascii_case(own));
        if !host_owned {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    for (name, value) in auth {
        builder = builder.header(*name, value.as_str());
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
        if let Some(tls_error @ rustls::Error::InvalidCertificate(certificate)) =
            e.downcast_ref::<rustls::Error>()
        {
            return DeliveryError::Certificate {
                host,
                reason: tls_error.to_string(),
                hint: certificate_hint(certificate),
            };
        }
        deepest = e.to_string();
        source = cause(e);
    }
    DeliveryError::Transport {
        host,
        reason: deepest,
    }
}

/// The cause of `e`. An I/O error's `source()` skips the error it wraps
/// (tokio-rustls wraps rustls's error in one, hyper-rustls wraps that in
/// another), so for those the wrapped error is the cause.
fn cause<'e>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e (dyn std::error::Error + 'static)> {
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(wrapped) => Some(wrapped),
        None => e.source(),
    }
}

/// What a refused certificate means, for the person reading `hook-error`.
fn certificate_hint(error: &rustls::CertificateError) -> &'static str {
    use rustls::CertificateError as E;
    match error {
        E::UnknownIssuer | E::BadSignature => "the certificate is not trusted",
        E::Expired | E::ExpiredContext { .. } => "the certificate has expired",
        E::NotValidYet | E::NotValidYetContext { .. } => "the certificate is not valid yet",
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            "the certificate is for another host"
        }
        E::Revoked => "the certificate is revoked",
        _ => "the certificate was refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Answer;

    fn request(headers: &[(&str, &str)]) -> HookRequest {
        HookRequest {
            method: http::Method::POST,
            url: "http://example.com/hook".parse().unwrap(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: Bytes::from_static(b"{\"t\":1}"),
            answer: Answer::Plugin,
        }
    }

    fn header<'r>(built: &'r http::Request<Full<Bytes>>, name: &str) -> Vec<&'r str> {
        built
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn without_a_key_the_request_is_not_signed() {
        let built = build(&request(&[]), "ev1", None, &[]).unwrap();
        assert_eq!(header(&built, "webhook-id"), ["ev1"]);
        assert!(header(&built, "webhook-timestamp").is_empty());
        assert!(header(&built, "webhook-signature").is_empty());
    }

    #[test]
    fn a_plugin_chooses_its_webhook_id_when_nothing_is_signed() {
        let built = build(&request(&[("Webhook-Id", "mine")]), "ev1", None, &[]).unwrap();
        assert_eq!(header(&built, "webhook-id"), ["mine"]);
    }

    #[test]
    fn a_signed_request_carries_exactly_the_signed_values() {
        let key = [1u8, 2, 3];
        let signing = Signing {
            key: &key,
            timestamp: 1_700_000_000,
        };
        let plugin_headers = [
            ("webhook-id", "forged"),
            ("Webhook-Signature", "v1,forged"),
            ("x-kept", "yes"),
        ];
        let built = build(&request(&plugin_headers), "ev1", Some(signing), &[]).unwrap();
        assert_eq!(header(&built, "webhook-id"), ["ev1"]);
        assert_eq!(header(&built, "webhook-timestamp"), ["1700000000"]);
        assert_eq!(
            header(&built, "webhook-signature"),
            [sign::signature(&key, "ev1", 1_700_000_000, b"{\"t\":1}").as_str()]
        );
        assert_eq!(header(&built, "x-kept"), ["yes"]);
    }

    #[test]
    fn the_host_s_auth_headers_replace_the_plugin_s() {
        let plugin_headers = [("Authorization", "Bearer forged"), ("x-kept", "yes")];
        let auth = [("authorization", "Bearer real".to_owned())];
        let built = build(&request(&plugin_headers), "ev1", None, &auth).unwrap();
        assert_eq!(header(&built, "authorization"), ["Bearer real"]);
        assert_eq!(header(&built, "x-kept"), ["yes"]);
    }

    #[test]
    fn the_timestamp_is_unix_seconds() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_614_265_330_999);
        assert_eq!(Signing::at(&[], at).timestamp, 1_614_265_330);
    }
}
