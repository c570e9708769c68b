//! MQTT 5 for the external broker, with rumqttc's codec: a session expiry
//! of a day, a receive maximum of [`RECEIVE_MAXIMUM`], the packet size the
//! host takes, and No Local subscriptions.

use bytes::BytesMut;
use rumqttc::v5::mqttbytes::v5::{
    ConnectProperties, ConnectReturnCode, Disconnect, DisconnectReasonCode, Filter, Login, Packet,
    PingReq, PubAck, PubAckReason, Publish, Subscribe, SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::{Error, QoS};

use super::RECEIVE_MAXIMUM;
use super::client::Connect;
use super::wire::{ConnAck, In, Out, written};

/// How long the broker keeps the session (and its QoS 1 messages) while the
/// host is away: a day.
const SESSION_EXPIRY_SECS: u32 = 24 * 60 * 60;

/// Adds the CONNECT for `c` to `buf`.
pub fn connect(c: &Connect, buf: &mut BytesMut) -> Result<(), String> {
    let mut properties = ConnectProperties::new();
    properties.session_expiry_interval = (!c.clean_session).then_some(SESSION_EXPIRY_SECS);
    properties.receive_maximum = Some(RECEIVE_MAXIMUM);
    properties.max_packet_size = Some(u32::try_from(c.max_packet_bytes).unwrap_or(u32::MAX));
    let connect = rumqttc::v5::mqttbytes::v5::Connect {
        keep_alive: Connect::keep_alive_secs(),
        client_id: c.client_id.clone(),
        clean_start: c.clean_session,
        properties: Some(properties),
    };
    let login = c.credentials.as_ref().map(|(user, password)| Login {
        username: user.clone(),
        password: password.clone(),
    });
    written(Packet::Connect(connect, None, login).write(buf, None))
}

/// Adds `packet` to `buf`. A subscription has No Local, so that the host
/// never gets its own publishes back, except through a shared subscription
/// (`$share/…`), where MQTT 5 forbids it (MQTT-3.8.3-4) and a strict broker
/// refuses the SUBSCRIBE: there the host relies on what 3.1.1 relies on
/// (see [`super::v311`]): it never publishes on the events it subscribes to.
pub fn encode(packet: &Out<'_>, buf: &mut BytesMut) -> Result<(), String> {
    written(match *packet {
        Out::Publish { message, dup } => {
            let mut publish = Publish::new(
                message.topic.as_str(),
                QoS::AtLeastOnce,
                message.payload.clone(),
                None,
            );
            publish.pkid = message.pkid;
            publish.dup = dup;
            publish.write(buf)
        }
        Out::PubAck(pkid) => PubAck::new(pkid, None).write(buf),
        Out::Subscribe { pkid, filter } => {
            let mut subscription = Filter::new(filter.to_owned(), QoS::AtLeastOnce);
            subscription.nolocal = !filter.starts_with("$share/");
            let mut subscribe = Subscribe::new(subscription, None);
            subscribe.pkid = pkid;
            subscribe.write(buf)
        }
        Out::PingReq => PingReq::write(buf),
        Out::Disconnect => Disconnect::new(DisconnectReasonCode::NormalDisconnection).write(buf),
    })
}

/// The next whole packet in `buf`, if there is one.
pub fn decode(buf: &mut BytesMut, max_packet: usize) -> Result<Option<In>, String> {
    let max = u32::try_from(max_packet).unwrap_or(u32::MAX);
    let packet = match Packet::read(buf, Some(max)) {
        Ok(packet) => packet,
        Err(Error::InsufficientBytes(_)) => return Ok(None),
        Err(err) => return Err(format!("cannot read a packet from the broker: {err}")),
    };
    Ok(Some(match packet {
        Packet::ConnAck(connack) => In::ConnAck(ConnAck {
            session_present: connack.session_present,
            refused: (connack.code != ConnectReturnCode::Success)
                .then(|| format!("{:?}", connack.code)),
            receive_maximum: connack.properties.and_then(|p| p.receive_max),
        }),
        Packet::Publish(publish) if publish.qos != QoS::ExactlyOnce => In::Publish {
            pkid: (publish.qos == QoS::AtLeastOnce).then_some(publish.pkid),
            dup: publish.dup,
            topic: String::from_utf8_lossy(&publish.topic).into_owned(),
            payload: publish.payload,
        },
        Packet::PubAck(puback) => In::PubAck {
            pkid: puback.pkid,
            refused: (!matches!(
                puback.reason,
                PubAckReason::Success | PubAckReason::NoMatchingSubscribers
            ))
            .then(|| format!("{:?}", puback.reason)),
        },
        Packet::SubAck(suback) => In::SubAck {
            pkid: suback.pkid,
            granted: suback
                .return_codes
                .iter()
                .all(|code| matches!(code, SubscribeReasonCode::Success(_))),
        },
        Packet::PingResp(_) => In::PingResp,
        Packet::Disconnect(disconnect) => {
            In::Unexpected(format!("a DISCONNECT ({:?})", disconnect.reason_code))
        }
        other => In::Unexpected(format!("{other:?}")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connack_gives_the_brokers_receive_maximum() {
        // As a broker sends it: session present, success, Receive Maximum 20.
        let mut buf = BytesMut::from(&[0x20, 0x06, 0x01, 0x00, 0x03, 0x21, 0x00, 0x14][..]);
        let Some(In::ConnAck(connack)) = decode(&mut buf, 1 << 10).unwrap() else {
            panic!("not a CONNACK");
        };
        assert_eq!(
            (
                connack.session_present,
                connack.refused,
                connack.receive_maximum
            ),
            (true, None, Some(20))
        );
    }
}
