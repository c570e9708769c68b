//! Publishing the host's answers to a device: `hook-sent`, then each reply
//! in chunks on its topic.

use bytes::Bytes;

use super::chunk::chunks;
use crate::event::Event;
use crate::exchange::{Reply, ReplyKind};
use crate::ingress::Publisher;
use crate::stream::EventStream;
use crate::topic::{hook_sent_topic, reply_topic};

/// The MQTT messages (topic, payload) that carry `replies` to the device
/// that sent `event`, in publishing order.
pub fn messages(event: &Event, replies: &[Reply], chunk_size: usize) -> Vec<(String, Bytes)> {
    let mut out = Vec::with_capacity(replies.len());
    for reply in replies {
        let suffix = match (&reply.topic, reply.kind) {
            (Some(topic), _) => topic.clone(),
            (None, ReplyKind::Response) => format!("hook-response/{}", event.name),
            (None, ReplyKind::Error) => format!("hook-error/{}", event.name),
        };
        if reply.unchunked {
            out.push((
                reply_topic(&event.device, &suffix, 0),
                reply.payload.clone(),
            ));
            continue;
        }
        for (index, chunk) in chunks(&reply.payload, chunk_size).enumerate() {
            out.push((reply_topic(&event.device, &suffix, index), chunk));
        }
    }
    out
}

/// Publishes device messages through whichever broker is in use, and shows
/// them on the event stream.
#[derive(Debug, Clone)]
pub struct Responder {
    publisher: Publisher,
    stream: EventStream,
    chunk_size: usize,
}

impl Responder {
    /// A responder that splits messages into `chunk_size`-byte chunks.
    pub fn new(publisher: Publisher, stream: EventStream, chunk_size: usize) -> Self {
        Self {
            publisher,
            stream,
            chunk_size,
        }
    }

    /// `devices/{id}/hook-sent/{event}`, empty.
    pub async fn hook_sent(&self, event: &Event) {
        self.send(
            event,
            hook_sent_topic(&event.device, &event.name),
            Bytes::new(),
        )
        .await;
    }

    /// Each reply, chunked unless it asks not to be, on its topic.
    pub async fn replies(&self, event: &Event, replies: &[Reply]) {
        for (topic, payload) in messages(event, replies, self.chunk_size) {
            self.send(event, topic, payload).await;
        }
    }

    /// Waits until the broker has every message sent so far.
    pub async fn confirmed(&self) {
        self.publisher.confirmed().await;
    }

    async fn send(&self, event: &Event, topic: String, payload: Bytes) {
        // `devices/{id}/` is the device's; the rest is the event's name.
        let name = &topic["devices/".len() + event.device.as_str().len() + 1..];
        self.stream.device_message(&event.device, name, &payload);
        if let Err(err) = self.publisher.publish(topic, payload).await {
            tracing::warn!("{err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::{DeviceId, EventName};

    fn event() -> Event {
        Event::received(
            DeviceId::try_from("d1").unwrap(),
            EventName::try_from("temp/in").unwrap(),
            Bytes::new(),
        )
    }

    #[test]
    fn replies_go_to_their_default_or_chosen_topics_in_chunks() {
        let replies = [
            Reply {
                kind: ReplyKind::Response,
                topic: None,
                payload: Bytes::from(vec![b'a'; 600]),
                unchunked: false,
            },
            Reply::error("error status 404 from example.com"),
            Reply {
                kind: ReplyKind::Response,
                topic: Some("weather/today".into()),
                payload: Bytes::from(vec![b'b'; 600]),
                unchunked: true,
            },
        ];
        let got: Vec<(String, usize)> = messages(&event(), &replies, 512)
            .into_iter()
            .map(|(t, p)| (t, p.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("devices/d1/hook-response/temp/in/0".into(), 512),
                ("devices/d1/hook-response/temp/in/1".into(), 88),
                ("devices/d1/hook-error/temp/in/0".into(), 33),
                ("devices/d1/weather/today/0".into(), 600),
            ]
        );
    }
}
