//! Certificates and signatures of webhook requests: `HttpSender` against
//! real servers on loopback — a TLS server whose self-signed certificate is
//! made for the test, and a plain recording endpoint.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use edgehook::delivery::{ClientOptions, DeliveryError, HttpSender, SendOptions};
use edgehook::exchange::{Answer, HookRequest};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::support::{Endpoint, HostUnderTest, WAIT, verify_signature as verify};

/// The Standard Webhooks reference secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// An HTTPS server on 127.0.0.1 with a self-signed certificate for
/// `127.0.0.1`: trusted by no root. It answers every request `200` with
/// `body` and records the request's path.
struct TlsServer {
    addr: SocketAddr,
    paths: mpsc::UnboundedReceiver<String>,
}

impl TlsServer {
    async fn start(body: &'static str) -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("a self-signed certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, paths) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |request: hyper::Request<_>| {
                        let _ = tx.send(request.uri().path().to_owned());
                        async move {
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(body.as_bytes()),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self { addr, paths }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

fn sender() -> HttpSender {
    HttpSender::new(ClientOptions {
        timeout: WAIT,
        max_response_bytes: 64 * 1024,
        allow_private: true,
    })
    .expect("the client builds")
}

fn request(method: hyper::Method, url: &str, body: &'static str) -> HookRequest {
    HookRequest {
        method,
        url: url.parse().unwrap(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from_static(body.as_bytes()),
        answer: Answer::Plugin,
    }
}

/// Asserts that `err` is the certificate error with its hint.
fn assert_untrusted(err: &DeliveryError) {
    let msg = err.to_string();
    assert!(matches!(err, DeliveryError::Certificate { .. }), "{msg}");
    assert!(
        msg.starts_with("request to 127.0.0.1 failed: invalid peer certificate: UnknownIssuer"),
        "{msg}"
    );
    assert!(
        msg.ends_with(
            "(the certificate is not trusted; set \"rejectUnauthorized\": false to accept it)"
        ),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_refused_and_the_error_says_how_to_accept_it() {
    let mut server = TlsServer::start("secret").await;

    let err = sender()
        .send(
            &request(hyper::Method::GET, &server.url("/hook"), ""),
            "ev-1",
            &SendOptions::default(),
        )
        .await
        .unwrap_err();

    assert_untrusted(&err);
    assert!(
        server.paths.try_recv().is_err(),
        "a request crossed a refused handshake"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reject_unauthorized_false_accepts_a_self_signed_certificate() {
    let mut server = TlsServer::start("hello over tls").await;
    let insecure = SendOptions {
        insecure_tls: true,
        ..SendOptions::default()
    };

    let response = sender()
        .send(
            &request(hyper::Method::POST, &server.url("/hook"), "{}"),
            "ev-1",
            &insecure,
        )
        .await
        .expect("the certificate is accepted");

    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"hello over tls");
    assert_eq!(server.paths.recv().await.as_deref(), Some("/hook"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_opened_without_checks_is_not_reused_for_a_webhook_with_checks() {
    let server = TlsServer::start("ok").await;
    let sender = sender();
    let url = server.url("/hook");
    let insecure = SendOptions {
        insecure_tls: true,
        ..SendOptions::default()
    };

    let first = sender
        .send(&request(hyper::Method::GET, &url, ""), "ev-1", &insecure)
        .await;
    let second = sender
        .send(
            &request(hyper::Method::GET, &url, ""),
            "ev-2",
            &SendOptions::default(),
        )
        .await;

    assert_eq!(first.expect("insecure is accepted").status, 200);
    assert_untrusted(&second.expect_err("the pooled insecure connection was reused"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_with_a_secret_signs_each_request_the_standard_webhooks_way() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let key = STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let signed = SendOptions {
        signing_key: Some(Arc::from(key.as_slice())),
        ..SendOptions::default()
    };
    let sender = sender();
    let hook = request(
        hyper::Method::POST,
        &endpoint.url("/hook"),
        r#"{"temp": 21.5}"#,
    );

    for _attempt in 0..2 {
        let response = sender.send(&hook, "ev-signed", &signed).await.unwrap();
        assert_eq!(response.status, 200);
        let seen = endpoint.next().await;
        assert_eq!(&seen.body[..], br#"{"temp": 21.5}"#);
        assert_eq!(seen.headers["webhook-id"], "ev-signed");
        let timestamp = verify(&seen, &key);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now.abs_diff(timestamp) < 60, "{timestamp} is not now");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_without_a_secret_sends_no_signature() {
    let mut endpoint = Endpoint::start(200, "ok").await;

    sender()
        .send(
            &request(hyper::Method::POST, &endpoint.url("/hook"), "{}"),
            "ev-plain",
            &SendOptions::default(),
        )
        .await
        .unwrap();

    let seen = endpoint.next().await;
    assert_eq!(seen.headers["webhook-id"], "ev-plain");
    assert!(!seen.headers.contains_key("webhook-signature"));
    assert!(!seen.headers.contains_key("webhook-timestamp"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_particle_webhook_reaches_a_self_signed_server_only_when_told_to() {
    let mut server = TlsServer::start("hello from tls").await;
    let host = crate::support::TestHost::start(&[], edgehook::config::Settings::default()).await;
    host.create_webhook(serde_json::json!({ "event": "strict", "url": server.url("/strict") }))
        .await;
    host.create_webhook(serde_json::json!({
        "event": "lenient",
        "url": server.url("/lenient"),
        "rejectUnauthorized": false
    }))
    .await;
    let mut device = crate::support::Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("strict", "x").await;
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/strict");
    let (topic, error) = device.next_text().await;
    assert_eq!(topic, "devices/d1/hook-error/strict/0");
    assert!(
        error.contains("invalid peer certificate: UnknownIssuer")
            && error.contains("\"rejectUnauthorized\": false"),
        "{error}"
    );

    device.publish("lenient", "x").await;
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/lenient");
    assert_eq!(
        device.next_text().await,
        (
            "devices/d1/hook-response/lenient/0".into(),
            "hello from tls".into()
        )
    );
    assert_eq!(
        server.paths.recv().await.unwrap(),
        "/lenient",
        "only the lenient webhook got through"
    );
    host.host.stop().await;
}
