//! Real HTTP servers on loopback that record the requests they get: one
//! that answers as told ([`Endpoint`]) and one that follows a script
//! ([`Scripted`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use tokio::sync::mpsc;

use super::{WAIT, before};

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    /// The value of the header `name`, if the request had it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("a header in ASCII"))
    }
}

/// The `seq` of a JSON request body: the load tests' webhooks send each
/// event's `{device}-{n}` under that name.
pub fn seq_of(body: &[u8]) -> String {
    let body: serde_json::Value = serde_json::from_slice(body).expect("a JSON body");
    body["seq"].as_str().expect("a seq").to_owned()
}

/// How the endpoint answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub delay: Duration,
}

/// A real HTTP server on 127.0.0.1 that records requests and answers as
/// told.
pub struct Endpoint {
    pub addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

type EndpointState = (Arc<Mutex<Answer>>, mpsc::UnboundedSender<Seen>);

impl Endpoint {
    /// Starts answering `status` with `body`.
    pub async fn start(status: u16, body: impl Into<Vec<u8>>) -> Self {
        let answer = Arc::new(Mutex::new(Answer {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }));
        let (tx, seen) = mpsc::unbounded_channel();
        let app = axum::Router::new()
            .fallback(record)
            .with_state((answer.clone(), tx));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, answer, seen }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes the answer.
    pub fn answer(&self, status: u16, body: impl Into<Vec<u8>>, delay: Duration) {
        *self.answer.lock().unwrap() = Answer {
            status,
            body: body.into(),
            delay,
        };
    }

    /// The next request, or panics after [`WAIT`].
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("no request reached the endpoint in time")
            .unwrap()
    }

    /// The requests that have arrived and were not taken yet, without
    /// waiting for more.
    pub fn received(&mut self) -> Vec<Seen> {
        std::iter::from_fn(|| self.seen.try_recv().ok()).collect()
    }

    /// The requests that arrive before the marker, the first one `is_marker`
    /// accepts; panics when no marker comes within [`WAIT`]. A test sends
    /// the marker after what must not reach the endpoint: when nothing came
    /// before the marker, nothing came late either.
    pub async fn before_marker(&mut self, is_marker: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        before(async || self.next().await, is_marker).await
    }
}

async fn record(
    State((answer, tx)): State<EndpointState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let _ = tx.send(Seen {
        method,
        uri,
        headers,
        body,
    });
    let answer = answer.lock().unwrap().clone();
    tokio::time::sleep(answer.delay).await;
    (StatusCode::from_u16(answer.status).unwrap(), answer.body)
}

/// One answer of a [`Scripted`] endpoint.
#[derive(Debug, Clone)]
pub enum Step {
    /// Answers with this status, headers and body after `delay` (and,
    /// when `held`, once [`Scripted::release`] was called).
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        delay: Duration,
        held: bool,
    },
    /// Reads the request, then closes the connection without an answer.
    Close,
}

impl Step {
    /// Answers `status` with `body` at once.
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
            held: false,
        }
    }

    /// This answer with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Self::Answer { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// This answer, given only after `d`.
    pub fn after(mut self, d: Duration) -> Self {
        if let Self::Answer { delay, .. } = &mut self {
            *delay = d;
        }
        self
    }

    /// This answer, given only once the test calls [`Scripted::release`].
    pub fn held(mut self) -> Self {
        if let Self::Answer { held, .. } = &mut self {
            *held = true;
        }
        self
    }
}

/// One request as a [`Scripted`] endpoint saw it, and when.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub seen: Seen,
    pub at: tokio::time::Instant,
}

/// A real HTTP/1.1 server on 127.0.0.1 that gives its script's answers in
/// turn (the last one for ever after), records every request with the
/// time it arrived, and keeps the most requests it ever had in progress.
pub struct Scripted {
    pub addr: SocketAddr,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    peak: Arc<std::sync::atomic::AtomicUsize>,
    released: tokio::sync::watch::Sender<bool>,
}

/// Counts a request in progress until dropped (also when the client
/// gives up on it).
struct InProgress(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Scripted {
    /// Starts answering with `script`, which must not be empty.
    pub async fn start(script: Vec<Step>) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use http_body_util::{BodyExt, Full};
        use hyper::service::service_fn;
        use hyper_util::rt::TokioIo;

        assert!(!script.is_empty(), "a script needs at least one step");
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        let in_progress = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (tx, arrivals) = mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peak_in_server = peak.clone();
        let released = tokio::sync::watch::Sender::new(false);
        let release = released.subscribe();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (script, in_progress, peak, tx, release) = (
                    script.clone(),
                    in_progress.clone(),
                    peak_in_server.clone(),
                    tx.clone(),
                    release.clone(),
                );
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let (script, in_progress, peak, tx, mut release) = (
                        script.clone(),
                        in_progress.clone(),
                        peak.clone(),
                        tx.clone(),
                        release.clone(),
                    );
                    async move {
                        let now = in_progress.fetch_add(1, Ordering::SeqCst) + 1;
                        let _counted = InProgress(in_progress);
                        peak.fetch_max(now, Ordering::SeqCst);
                        let at = tokio::time::Instant::now();
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let _ = tx.send(Arrival {
                            seen: Seen {
                                method: parts.method,
                                uri: parts.uri,
                                headers: parts.headers,
                                body,
                            },
                            at,
                        });
                        let step = {
                            let mut script = script.lock().unwrap();
                            if script.len() > 1 {
                                script.pop_front().unwrap()
                            } else {
                                script[0].clone()
                            }
                        };
                        match step {
                            Step::Close => Err(std::io::Error::other("closed without an answer")),
                            Step::Answer {
                                status,
                                headers,
                                body,
                                delay,
                                held,
                            } => {
                                if held {
                                    // Sender dropped: the test is over.
                                    let _ = release.wait_for(|released| *released).await;
                                }
                                tokio::time::sleep(delay).await;
                                let mut response =
                                    hyper::Response::new(Full::new(Bytes::from(body)));
                                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                                for (name, value) in headers {
                                    response.headers_mut().append(
                                        axum::http::HeaderName::from_bytes(name.as_bytes())
                                            .unwrap(),
                                        value.parse().unwrap(),
                                    );
                                }
                                Ok(response)
                            }
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            arrivals,
            peak,
            released,
        }
    }

    /// Lets the held answers ([`Step::held`]) go, now and from now on.
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://localhost:PORT{path}`: the same server under another host
    /// name, which the host throttles apart from `127.0.0.1`.
    pub fn localhost_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr.port())
    }

    /// The next request, or panics after [`WAIT`].
    pub async fn next(&mut self) -> Arrival {
        tokio::time::timeout(WAIT, self.arrivals.recv())
            .await
            .expect("no request reached the endpoint in time")
            .unwrap()
    }

    /// The requests that arrive before the marker, as
    /// [`Endpoint::before_marker`].
    pub async fn before_marker(&mut self, is_marker: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        before(async || self.next().await.seen, is_marker).await
    }

    /// The most requests the server ever had in progress at once.
    pub fn peak_in_progress(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Checks `seen` the way a Standard Webhooks receiver does, with the key
/// decoded from the secret, and returns the timestamp.
pub fn verify_signature(seen: &Seen, key: &[u8]) -> u64 {
    use base64::Engine as _;
    use hmac::Mac as _;

    let header = |name: &str| {
        seen.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&seen.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(signature, format!("v1,{expected}"));
    timestamp.parse().expect("unix seconds")
}
