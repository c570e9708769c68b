//! A client of the WebSocket API (`GET /v1/stream`) over a real socket,
//! with tokio-tungstenite: sends JSON messages, reads frames as JSON.

use std::net::SocketAddr;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::WAIT;

/// One connection to the WebSocket API.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Connects to the host at `addr` with `?api_key=token`.
    pub async fn connect(addr: SocketAddr, token: &str) -> Self {
        Self::try_connect(addr, Some(token), None)
            .await
            .expect("the WebSocket handshake succeeds")
    }

    /// Connects with an optional `api_key` and an optional bearer token;
    /// the handshake's error (a refusal's status is in `Error::Http`).
    pub async fn try_connect(
        addr: SocketAddr,
        api_key: Option<&str>,
        bearer: Option<&str>,
    ) -> Result<Self, Error> {
        let query = api_key.map(|k| format!("?api_key={k}")).unwrap_or_default();
        let mut request = format!("ws://{addr}/v1/stream{query}").into_client_request()?;
        if let Some(token) = bearer {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { stream })
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("the message is sent");
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    /// The next message of any kind (pings included), or panics after
    /// [`WAIT`]; `None` when the connection ended.
    pub async fn next_message(&mut self) -> Option<Message> {
        match tokio::time::timeout(WAIT, self.stream.next()).await {
            Ok(Some(Ok(message))) => Some(message),
            Ok(Some(Err(err))) => {
                eprintln!("the WebSocket connection failed: {err}");
                None
            }
            Ok(None) => None,
            Err(_) => panic!("no WebSocket message within {WAIT:?}"),
        }
    }

    /// The next text frame as JSON (pings and pongs skipped), or panics.
    pub async fn next(&mut self) -> Value {
        loop {
            match self.next_message().await {
                Some(Message::Text(text)) => return serde_json::from_str(&text).unwrap(),
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Skips everything up to the close frame, or panics when the
    /// connection ends without one or none comes within [`WAIT`].
    pub async fn close_frame(&mut self) -> CloseFrame {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.next_message()).await {
                Ok(Some(Message::Close(Some(frame)))) => return frame,
                Ok(Some(Message::Close(None)) | None) => {
                    panic!("the connection ended without a close frame")
                }
                Ok(Some(_)) => {}
                Err(_) => panic!("no close frame within {WAIT:?}"),
            }
        }
    }

    /// Reads until the connection ends: the text frames read, and the
    /// close frame if the server could send one (a server that gives up on
    /// a client that does not read may not be able to).
    pub async fn read_to_end(&mut self) -> (usize, Option<CloseFrame>) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut frames = 0;
        loop {
            let message = tokio::time::timeout_at(deadline, self.next_message())
                .await
                .unwrap_or_else(|_| panic!("the connection did not end within {WAIT:?}"));
            match message {
                Some(Message::Text(_)) => frames += 1,
                Some(Message::Close(frame)) => return (frames, frame),
                None => return (frames, None),
                Some(_) => {}
            }
        }
    }

    /// Subscribes to `device` (all streams when `streams` is `None`); the
    /// subscription id.
    pub async fn subscribe(&mut self, device: &str, streams: Option<&[&str]>) -> String {
        let mut payload = json!({ "device_id": device });
        if let Some(streams) = streams {
            payload["streams"] = json!(streams);
        }
        self.send(json!({ "type": "subscribe", "request_id": "sub", "payload": payload }))
            .await;
        let reply = self.next().await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        assert_eq!(reply["request_id"], "sub", "{reply}");
        reply["payload"]["subscription_id"]
            .as_str()
            .expect("a subscription id")
            .to_owned()
    }

    /// Closes the connection from the client's side.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
