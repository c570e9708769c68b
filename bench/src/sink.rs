//! The loopback webhook sink: an HTTP/1.1 server that answers every request
//! `200 {"echo":N}`, N being the `seq` it finds in the request body, so the
//! device's hook-response names the event it answers (on `/plain`, the
//! bare `N`, for a plugin that answers with the body as it came); on
//! `/token`, an OAuth 2 token endpoint that counts the tokens it gives;
//! and on `/v1/traces`, an OTLP/HTTP collector that takes every export and
//! counts them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The running sink.
#[derive(Debug)]
pub struct Sink {
    addr: SocketAddr,
    counts: Arc<Counts>,
}

/// What the sink has answered.
#[derive(Debug, Default)]
struct Counts {
    requests: AtomicU64,
    tokens: AtomicU64,
    trace_exports: AtomicU64,
}

impl Sink {
    /// Starts the sink on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("starting the webhook sink")?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        tokio::spawn(serve(listener, counts.clone()));
        Ok(Self { addr, counts })
    }

    /// The URL the webhooks call.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The URL whose answer is the bare `seq`.
    pub fn plain_url(&self) -> String {
        format!("http://{}/plain", self.addr)
    }

    /// Its token endpoint.
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// Its OTLP/HTTP endpoint.
    pub fn otlp_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Trace exports taken so far.
    pub fn trace_exports(&self) -> u64 {
        self.counts.trace_exports.load(Ordering::Relaxed)
    }

    /// Webhook requests received so far.
    pub fn requests(&self) -> u64 {
        self.counts.requests.load(Ordering::Relaxed)
    }

    /// Tokens given so far.
    pub fn tokens(&self) -> u64 {
        self.counts.tokens.load(Ordering::Relaxed)
    }
}

async fn serve(listener: TcpListener, counts: Arc<Counts>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                // Answers go out at once, as a real service's would.
                let _ = stream.set_nodelay(true);
                stream
            }
            Err(err) => {
                eprintln!("webhook sink: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let counts = counts.clone();
        tokio::spawn(async move {
            let answer = service_fn(move |request| answer(request, counts.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), answer)
                .await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    counts: Arc<Counts>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if request.uri().path() == "/token" {
        counts.tokens.fetch_add(1, Ordering::Relaxed);
        let token = br#"{"access_token":"bench-token","token_type":"Bearer","expires_in":3600}"#;
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(token)));
        return Ok(response.expect("a static header and a body make a response"));
    }
    if request.uri().path() == "/v1/traces" {
        counts.trace_exports.fetch_add(1, Ordering::Relaxed);
        request.into_body().collect().await?;
        return Ok(Response::new(Full::new(Bytes::new())));
    }
    counts.requests.fetch_add(1, Ordering::Relaxed);
    let plain = request.uri().path() == "/plain";
    let body = request.into_body().collect().await?.to_bytes();
    let response = match find_seq(&body) {
        Some(seq) if plain => Response::builder().body(Full::new(seq.to_owned().into())),
        Some(seq) => Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(format!("{{\"echo\":{seq}}}").into())),
        None => Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Full::new(Bytes::from_static(b"no \"seq\" in the body"))),
    };
    Ok(response.expect("a status, a static header and a body make a response"))
}

/// The digits of the first `"seq"` field in a JSON text, quoted or not.
fn find_seq(body: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"seq\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)?;
    let rest = body[at + KEY.len()..].trim_ascii_start();
    let rest = rest.strip_prefix(b":")?.trim_ascii_start();
    let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let seq = std::str::from_utf8(&rest[..digits]).ok()?;
    (!seq.is_empty()).then_some(seq)
}

#[cfg(test)]
mod tests {
    use super::find_seq;

    #[test]
    fn seq_is_found_quoted_or_not() {
        assert_eq!(
            find_seq(br#"{"device":"d","seq":"12","value":"x"}"#),
            Some("12")
        );
        assert_eq!(find_seq(br#"{"seq" : 7}"#), Some("7"));
        assert_eq!(find_seq(br#"{"seq":""}"#), None);
        assert_eq!(find_seq(b"seq=3"), None);
    }
}
