//! MQTT 3.1.1 for the external broker, for brokers that speak no MQTT 5:
//! the host's packets to and from bytes, with rumqttc's codec.
//!
//! What 3.1.1 lacks, and why the host does not need it:
//! - a session expiry: `clean session = 0` keeps the session for as long as
//!   the broker keeps sessions (mosquitto: `persistent_client_expiration`,
//!   never by default);
//! - a receive maximum: the broker's own in-flight limit bounds the events
//!   sent before the host acknowledges them (mosquitto:
//!   `max_inflight_messages`, 20 by default), well under the channels'
//!   room for [`super::RECEIVE_MAXIMUM`];
//! - No Local: the host subscribes only to `devices/+/events/#`, and it
//!   never publishes there (replies go to `hook-*` or a plugin's topic,
//!   which [`crate::topic::check_reply_suffix`] keeps off `events/`), so
//!   its own messages never come back as events.

use bytes::BytesMut;
use rumqttc::mqttbytes::Error;
use rumqttc::mqttbytes::v4::{
    ConnectReturnCode, Login, Packet, PubAck, Publish, Subscribe, SubscribeFilter,
    SubscribeReasonCode,
};
use rumqttc::{PingReq, QoS};

use super::client::Connect;
use super::wire::{ConnAck, In, Out, written};

/// Adds the CONNECT for `c` to `buf`.
pub fn connect(c: &Connect, buf: &mut BytesMut) -> Result<(), String> {
    let mut connect = rumqttc::mqttbytes::v4::Connect::new(c.client_id.clone());
    connect.keep_alive = Connect::keep_alive_secs();
    connect.clean_session = c.clean_session;
    connect.login = c
        .credentials
        .as_ref()
        .map(|(user, password)| Login::new(user.clone(), password.clone()));
    written(connect.write(buf))
}

/// Adds `packet` to `buf`.
pub fn encode(packet: &Out<'_>, buf: &mut BytesMut) -> Result<(), String> {
    written(match *packet {
        Out::Publish { message, dup } => Publish {
            dup,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: message.topic.clone(),
            pkid: message.pkid,
            payload: message.payload.clone(),
        }
        .write(buf),
        Out::PubAck(pkid) => PubAck::new(pkid).write(buf),
        Out::Subscribe { pkid, filter } => Subscribe {
            pkid,
            filters: vec![SubscribeFilter::new(filter.to_owned(), QoS::AtLeastOnce)],
        }
        .write(buf),
        Out::PingReq => PingReq.write(buf),
        Out::Disconnect => rumqttc::mqttbytes::v4::Disconnect.write(buf),
    })
}

/// The next whole packet in `buf`, if there is one.
pub fn decode(buf: &mut BytesMut, max_packet: usize) -> Result<Option<In>, String> {
    let packet = match Packet::read(buf, max_packet) {
        Ok(packet) => packet,
        Err(Error::InsufficientBytes(_)) => return Ok(None),
        Err(err) => return Err(format!("cannot read a packet from the broker: {err}")),
    };
    Ok(Some(match packet {
        Packet::ConnAck(connack) => In::ConnAck(ConnAck {
            session_present: connack.session_present,
            refused: (connack.code != ConnectReturnCode::Success)
                .then(|| format!("{:?}", connack.code)),
            receive_maximum: None,
        }),
        Packet::Publish(publish) if publish.qos != QoS::ExactlyOnce => In::Publish {
            pkid: (publish.qos == QoS::AtLeastOnce).then_some(publish.pkid),
            dup: publish.dup,
            topic: publish.topic,
            payload: publish.payload,
        },
        Packet::PubAck(puback) => In::PubAck {
            pkid: puback.pkid,
            refused: None,
        },
        Packet::SubAck(suback) => In::SubAck {
            pkid: suback.pkid,
            granted: suback
                .return_codes
                .iter()
                .all(|code| matches!(code, SubscribeReasonCode::Success(_))),
        },
        Packet::PingResp => In::PingResp,
        other => In::Unexpected(format!("{other:?}")),
    }))
}
