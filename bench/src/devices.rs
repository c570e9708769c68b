//! The simulated devices: one MQTT client each, subscribed to its own
//! hook-response and hook-error topics, publishing `load` events with QoS 1
//! and matching every answer back to the event it answers.
//!
//! Events are numbered across the fleet: device `i` of `D` sends the
//! sequence numbers `i`, `i + D`, `i + 2D`, … below `--events`, so an answer
//! names its event and the device that must receive it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

/// The event every device publishes; the webhook's prefix.
pub const EVENT: &str = "load";

/// How long the devices may take to connect and subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Outgoing QoS 1 messages a client keeps awaiting their PUBACK, and
/// requests queued in its channel before `publish` waits.
const CLIENT_INFLIGHT: u16 = 1024;

/// Answers not matched to an event, and hook-error texts, shown in the report.
const NOTES_KEPT: usize = 5;

/// The longest latency the histogram tells apart: an hour, in
/// microseconds; longer ones count as an hour.
const LONGEST_LATENCY: u64 = 3_600_000_000;

/// A fresh latency histogram: microseconds, 3 significant figures.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LONGEST_LATENCY, 3).expect("valid histogram bounds")
}

/// Locks `mutex`, also after a panic elsewhere (the counts stay usable).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How the devices pace their events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// This many events per second in all, evenly spread over the devices.
    Rate(f64),
    /// As fast as answers come, with at most this many events unanswered.
    Window(usize),
    /// All at once.
    Flood,
}

impl std::fmt::Display for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rate(rate) => write!(f, "rate {rate} events/s"),
            Self::Window(window) => write!(f, "window {window}"),
            Self::Flood => f.write_str("flood"),
        }
    }
}

/// What the fleet publishes.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Devices, each one client.
    pub devices: usize,
    /// Events in all.
    pub events: usize,
    /// Bytes of each event's data.
    pub size: usize,
    /// How they are paced.
    pub pace: Pace,
}

impl Plan {
    /// The local index, in its device's list, of event `seq` sent by device
    /// `device`; `None` when that device does not send it.
    fn local(&self, device: usize, seq: usize) -> Option<usize> {
        (seq < self.events && seq % self.devices == device).then_some(seq / self.devices)
    }

    /// How many events device `device` sends.
    fn share(&self, device: usize) -> usize {
        self.events.saturating_sub(device).div_ceil(self.devices)
    }

    /// The id of device `index`: `bench-000`, `bench-001`, …
    pub fn device_id(&self, index: usize) -> String {
        let width = (self.devices - 1).to_string().len().max(3);
        format!("bench-{index:0width$}")
    }
}

/// The event data of `seq`: `{"seq":N,"value":"xx…"}`, padded to `size`
/// bytes when that is more than the JSON needs.
pub fn event_data(seq: usize, size: usize) -> Bytes {
    let mut data = format!("{{\"seq\":{seq},\"value\":\"");
    let padding = size.saturating_sub(data.len() + 2);
    data.extend(std::iter::repeat_n('x', padding));
    data.push_str("\"}");
    data.into()
}

/// Where the devices connect.
#[derive(Debug, Clone)]
pub struct Broker {
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl Broker {
    /// A broker at `HOST:PORT`.
    pub fn from_addr(addr: &str) -> anyhow::Result<Self> {
        let (host, port) = addr
            .rsplit_once(':')
            .with_context(|| format!("broker address {addr:?} is not HOST:PORT"))?;
        let port = port
            .parse()
            .with_context(|| format!("broker address {addr:?}: bad port"))?;
        Ok(Self {
            host: host.trim_matches(['[', ']']).to_owned(),
            port,
            credentials: None,
        })
    }

    /// The broker of an `mqtt://[user:pass@]host[:port]` URL, with its
    /// credentials.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        let Some(rest) = url.strip_prefix("mqtt://") else {
            bail!("{url}: edgehook-bench speaks plain MQTT only (mqtt://HOST:PORT)");
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let (credentials, address) = match authority.rsplit_once('@') {
            Some((user_info, address)) => {
                let (user, pass) = user_info.split_once(':').unwrap_or((user_info, ""));
                (Some((user.to_owned(), pass.to_owned())), address)
            }
            None => (None, authority),
        };
        let with_port = if address.ends_with(']') || !address.contains(':') {
            format!("{address}:1883")
        } else {
            address.to_owned()
        };
        Ok(Self {
            credentials,
            ..Self::from_addr(&with_port)?
        })
    }
}

impl Broker {
    /// Client options for `client_id` on this broker, with a clean session.
    fn options(&self, client_id: &str) -> MqttOptions {
        let mut options = MqttOptions::new(client_id, &self.host, self.port);
        options.set_keep_alive(Duration::from_secs(30));
        if let Some((user, pass)) = &self.credentials {
            options.set_credentials(user, pass);
        }
        options
    }

    /// Connects as `client_id` with a clean session and leaves: the broker
    /// drops whatever persistent session that id had, with the messages
    /// queued for it.
    pub async fn clear_session(&self, client_id: &str) -> anyhow::Result<()> {
        let (_client, mut connection) = AsyncClient::new(self.options(client_id), 1);
        let connected = async {
            loop {
                if let Event::Incoming(Packet::ConnAck(_)) = connection.poll().await? {
                    return anyhow::Ok(());
                }
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connected).await {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow::anyhow!("no CONNACK within {CONNECT_TIMEOUT:?}")),
        }
        .with_context(|| format!("clearing the session of {client_id} on {self}"))
    }
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Counts shared by every device, read while the run is under way.
#[derive(Debug, Default)]
pub struct Progress {
    published: AtomicUsize,
    answered: AtomicUsize,
}

impl Progress {
    /// Events published so far.
    pub fn published(&self) -> usize {
        self.published.load(Ordering::Relaxed)
    }

    /// Events answered so far, each counted once.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }
}

/// What one device saw.
#[derive(Debug, Default)]
struct Ledger {
    /// When each of its events was published, by local index.
    sent: Vec<Option<Instant>>,
    /// Which of them were answered.
    answered: Vec<bool>,
    responses: usize,
    hook_errors: usize,
    duplicates: usize,
    wrong_topics: usize,
    last_publish: Option<Instant>,
    last_answer: Option<Instant>,
    notes: Vec<String>,
    connection_lost: Option<String>,
}

impl Ledger {
    fn new(share: usize) -> Self {
        Self {
            sent: vec![None; share],
            answered: vec![false; share],
            ..Self::default()
        }
    }

    fn note(&mut self, note: String) {
        if self.notes.len() < NOTES_KEPT {
            self.notes.push(note);
        }
    }
}

/// An answer a device received: to which event, and how.
#[derive(Debug, PartialEq)]
enum Answer<'a> {
    /// A hook-response naming event `seq`.
    Response(usize),
    /// A hook-error for event `seq`, with its text.
    Error(usize, &'a [u8]),
}

impl Answer<'_> {
    fn seq(&self) -> usize {
        match *self {
            Self::Response(seq) | Self::Error(seq, _) => seq,
        }
    }
}

/// The topics a device publishes and subscribes to, and how it reads what
/// comes on them.
#[derive(Debug)]
struct Topics {
    events: String,
    responses: String,
    errors: String,
}

impl Topics {
    fn new(device: &str) -> Self {
        Self {
            events: format!("devices/{device}/events/{EVENT}"),
            responses: format!("devices/{device}/hook-response/{EVENT}/"),
            errors: format!("devices/{device}/hook-error/{EVENT}/"),
        }
    }

    fn filters(&self) -> [SubscribeFilter; 2] {
        [&self.responses, &self.errors]
            .map(|prefix| SubscribeFilter::new(format!("{prefix}#"), QoS::AtLeastOnce))
    }

    /// Reads one message: a response is the first chunk with the event's
    /// sequence number as its payload (the sink echoes it); an error comes
    /// on `hook-error/load/{seq}/{index}` (the webhook's
    /// `errorResponseTopic`). `None` for anything else.
    fn read<'a>(&self, topic: &str, payload: &'a [u8]) -> Option<Answer<'a>> {
        if topic.strip_prefix(&self.responses) == Some("0") {
            let seq = std::str::from_utf8(payload).ok()?.parse().ok()?;
            return Some(Answer::Response(seq));
        }
        let seq = topic.strip_prefix(&self.errors)?.strip_suffix("/0")?;
        Some(Answer::Error(seq.parse().ok()?, payload))
    }
}

/// How a device waits before each event.
#[derive(Debug)]
enum Pacer {
    /// Until its time at this many events per second across the fleet.
    Rate(f64),
    /// For a permit, which the answer gives back.
    Window(Arc<Semaphore>),
    /// Not at all.
    Flood,
}

/// The state one device's publisher and receiver share.
#[derive(Debug)]
struct Device {
    id: String,
    index: usize,
    plan: Plan,
    topics: Topics,
    pacer: Arc<Pacer>,
    ledger: Mutex<Ledger>,
    /// Publish-to-response latencies of the whole fleet, microseconds.
    latencies: Arc<Mutex<Histogram<u64>>>,
    progress: Arc<Progress>,
}

impl Device {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    /// Publishes this device's events at the plan's pace; stops early when
    /// its connection is gone.
    async fn publish(self: Arc<Self>, client: AsyncClient, start: Instant) {
        let plan = self.plan;
        let seqs = (self.index..plan.events).step_by(plan.devices);
        for (local, seq) in seqs.enumerate() {
            match &*self.pacer {
                Pacer::Rate(rate) => {
                    let at = start + Duration::from_secs_f64(seq as f64 / rate);
                    tokio::time::sleep_until(at.into()).await;
                }
                Pacer::Window(window) => match window.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => return,
                },
                Pacer::Flood => {}
            }
            let now = Instant::now();
            {
                let mut ledger = self.ledger();
                ledger.sent[local] = Some(now);
                ledger.last_publish = Some(now);
            }
            let data = event_data(seq, plan.size);
            if client
                .publish(&self.topics.events, QoS::AtLeastOnce, false, data)
                .await
                .is_err()
            {
                self.ledger().sent[local] = None;
                return;
            }
            self.progress.published.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Matches one message to the event it answers.
    fn receive(&self, topic: &str, payload: &[u8], at: Instant) {
        let answer = self.topics.read(topic, payload);
        let mut ledger = self.ledger();
        let matched = answer.and_then(|answer| {
            let local = self.plan.local(self.index, answer.seq())?;
            Some((answer, local, ledger.sent[local]?))
        });
        let Some((answer, local, sent_at)) = matched else {
            ledger.wrong_topics += 1;
            let text = String::from_utf8_lossy(payload);
            ledger.note(format!("unexpected message on {topic}: {text:.80}"));
            return;
        };
        if std::mem::replace(&mut ledger.answered[local], true) {
            ledger.duplicates += 1;
            return;
        }
        let latency = match answer {
            Answer::Response(_) => {
                ledger.responses += 1;
                Some(at.saturating_duration_since(sent_at))
            }
            Answer::Error(seq, text) => {
                ledger.hook_errors += 1;
                let text = String::from_utf8_lossy(text);
                ledger.note(format!("hook-error for event {seq}: {text}"));
                None
            }
        };
        ledger.last_answer = Some(at);
        drop(ledger);
        if let Some(latency) = latency {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            lock(&self.latencies).saturating_record(micros);
        }
        self.progress.answered.fetch_add(1, Ordering::Relaxed);
        if let Pacer::Window(window) = &*self.pacer {
            window.add_permits(1);
        }
    }
}

/// Runs a device's MQTT connection: says when its subscriptions are in
/// place, then hands every message to [`Device::receive`].
async fn drive(
    mut connection: EventLoop,
    device: Arc<Device>,
    ready: oneshot::Sender<Result<(), String>>,
) {
    let mut ready = Some(ready);
    loop {
        match connection.poll().await {
            Ok(Event::Incoming(Packet::Publish(message))) => {
                device.receive(&message.topic, &message.payload, Instant::now());
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if let Some(ready) = ready.take() {
                    let refused = ack.return_codes.contains(&SubscribeReasonCode::Failure);
                    let _ = ready.send(if refused {
                        Err("the broker refused the subscription".to_owned())
                    } else {
                        Ok(())
                    });
                }
            }
            Ok(_) => {}
            Err(err) => {
                match ready.take() {
                    Some(ready) => {
                        let _ = ready.send(Err(err.to_string()));
                    }
                    None => device.ledger().connection_lost = Some(err.to_string()),
                }
                return;
            }
        }
    }
}

/// One device of the fleet with its client and tasks.
#[derive(Debug)]
struct Member {
    device: Arc<Device>,
    client: AsyncClient,
    connection: JoinHandle<()>,
    publisher: Option<JoinHandle<()>>,
}

/// The connected, subscribed devices.
#[derive(Debug)]
pub struct Fleet {
    members: Vec<Member>,
    latencies: Arc<Mutex<Histogram<u64>>>,
    progress: Arc<Progress>,
    plan: Plan,
}

impl Fleet {
    /// Connects every device to `broker` and subscribes it to its answers;
    /// with `keys` (one per device, in order) each logs in as itself.
    pub async fn connect(
        broker: &Broker,
        plan: Plan,
        keys: Option<&[String]>,
    ) -> anyhow::Result<Self> {
        let progress = Arc::new(Progress::default());
        let pacer = Arc::new(match plan.pace {
            Pace::Rate(rate) => Pacer::Rate(rate),
            Pace::Window(window) => Pacer::Window(Arc::new(Semaphore::new(window))),
            Pace::Flood => Pacer::Flood,
        });
        let packet_limit = (plan.size + 1024).max(10 * 1024);
        let mut fleet = Self {
            members: Vec::with_capacity(plan.devices),
            latencies: Arc::new(Mutex::new(latency_histogram())),
            progress,
            plan,
        };
        let mut pending = Vec::with_capacity(plan.devices);
        for index in 0..plan.devices {
            let id = plan.device_id(index);
            let mut options = broker.options(&id);
            if let Some(keys) = keys {
                options.set_credentials(&id, &keys[index]);
            }
            options
                .set_inflight(CLIENT_INFLIGHT)
                .set_max_packet_size(packet_limit, packet_limit);
            let (client, mut connection) = AsyncClient::new(options, CLIENT_INFLIGHT.into());
            let mut network = rumqttc::NetworkOptions::new();
            network.set_tcp_nodelay(true);
            connection.set_network_options(network);
            let device = Arc::new(Device {
                id: id.clone(),
                index,
                plan,
                topics: Topics::new(&id),
                pacer: pacer.clone(),
                ledger: Mutex::new(Ledger::new(plan.share(index))),
                latencies: fleet.latencies.clone(),
                progress: fleet.progress.clone(),
            });
            let (ready, subscribed) = oneshot::channel();
            let connection = tokio::spawn(drive(connection, device.clone(), ready));
            client
                .subscribe_many(device.topics.filters())
                .await
                .context("subscribing a device")?;
            pending.push((id, subscribed));
            fleet.members.push(Member {
                device,
                client,
                connection,
                publisher: None,
            });
        }
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        for (id, subscribed) in pending {
            let outcome = match tokio::time::timeout_at(deadline, subscribed).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err("its connection ended".to_owned()),
                Err(_) => Err(format!("no SUBACK within {CONNECT_TIMEOUT:?}")),
            };
            if let Err(problem) = outcome {
                fleet.stop();
                bail!("device {id} could not connect to {broker} and subscribe: {problem}");
            }
        }
        Ok(fleet)
    }

    /// Starts publishing; the run's clock starts at `start`.
    pub fn start(&mut self, start: Instant) {
        for member in &mut self.members {
            let publish = member.device.clone().publish(member.client.clone(), start);
            member.publisher = Some(tokio::spawn(publish));
        }
    }

    /// Counts of the run under way.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The devices' ids.
    pub fn ids(&self) -> Vec<String> {
        self.members.iter().map(|m| m.device.id.clone()).collect()
    }

    /// Events in all.
    pub fn events(&self) -> usize {
        self.plan.events
    }

    /// Stops publishing and drops every connection.
    fn stop(&self) {
        for member in &self.members {
            member.connection.abort();
            if let Some(publisher) = &member.publisher {
                publisher.abort();
            }
        }
    }

    /// Ends the run: stops the devices and adds up what each of them saw.
    pub fn finish(self) -> Tally {
        self.stop();
        let mut tally = Tally {
            sent: 0,
            responses: 0,
            hook_errors: 0,
            losses: 0,
            duplicates: 0,
            wrong_topics: 0,
            latencies: lock(&self.latencies).clone(),
            last_publish: None,
            last_answer: None,
            notes: Vec::new(),
        };
        for member in &self.members {
            let ledger = member.device.ledger();
            let sent = ledger.sent.iter().flatten().count();
            let answered = ledger.answered.iter().filter(|&&a| a).count();
            tally.sent += sent;
            tally.losses += sent - answered;
            tally.responses += ledger.responses;
            tally.hook_errors += ledger.hook_errors;
            tally.duplicates += ledger.duplicates;
            tally.wrong_topics += ledger.wrong_topics;
            tally.last_publish = tally.last_publish.max(ledger.last_publish);
            tally.last_answer = tally.last_answer.max(ledger.last_answer);
            for note in &ledger.notes {
                tally.note(note.clone());
            }
            if let Some(lost) = &ledger.connection_lost {
                tally.note(format!("{} lost its connection: {lost}", member.device.id));
            }
        }
        tally
    }
}

/// What the fleet saw, added up.
#[derive(Debug)]
pub struct Tally {
    /// Events published.
    pub sent: usize,
    /// Events answered with a hook-response.
    pub responses: usize,
    /// Events answered with a hook-error.
    pub hook_errors: usize,
    /// Published events with no answer.
    pub losses: usize,
    /// Answers to an event already answered.
    pub duplicates: usize,
    /// Messages that answer no event this device published.
    pub wrong_topics: usize,
    /// Publish-to-response latencies, microseconds.
    pub latencies: Histogram<u64>,
    /// When the last event was published.
    pub last_publish: Option<Instant>,
    /// When the last answer came.
    pub last_answer: Option<Instant>,
    /// The first hook-errors and unexpected messages, and lost connections.
    pub notes: Vec<String>,
}

impl Tally {
    fn note(&mut self, note: String) {
        if self.notes.len() < NOTES_KEPT {
            self.notes.push(note);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_data_is_json_padded_to_the_size() {
        let data = event_data(42, 64);
        assert_eq!(data.len(), 64);
        let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(json["seq"], 42);
        assert_eq!(&event_data(7, 0)[..], br#"{"seq":7,"value":""}"#);
    }

    #[test]
    fn events_are_dealt_round_robin() {
        let plan = Plan {
            devices: 3,
            events: 10,
            size: 64,
            pace: Pace::Flood,
        };
        assert_eq!((0..3).map(|d| plan.share(d)).collect::<Vec<_>>(), [4, 3, 3]);
        assert_eq!(plan.local(1, 7), Some(2));
        assert_eq!(plan.local(2, 7), None);
        assert_eq!(plan.local(1, 10), None);
    }

    #[test]
    fn answers_are_read_from_topic_and_payload() {
        let topics = Topics::new("bench-001");
        let read = |topic: &str, payload: &'static [u8]| topics.read(topic, payload);
        assert_eq!(
            read("devices/bench-001/hook-response/load/0", b"17"),
            Some(Answer::Response(17))
        );
        assert_eq!(
            read("devices/bench-001/hook-error/load/17/0", b"boom"),
            Some(Answer::Error(17, b"boom"))
        );
        assert_eq!(read("devices/bench-001/hook-response/load/1", b"17"), None);
        assert_eq!(read("devices/bench-001/hook-response/load/0", b"{}"), None);
        assert_eq!(read("devices/bench-002/hook-response/load/0", b"17"), None);
    }

    #[test]
    fn broker_urls_give_address_and_credentials() {
        let broker = Broker::from_url("mqtt://u:p@10.0.0.1").unwrap();
        assert_eq!(broker.to_string(), "10.0.0.1:1883");
        assert_eq!(broker.credentials, Some(("u".into(), "p".into())));
        let broker = Broker::from_url("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!(broker.to_string(), "127.0.0.1:1884");
        assert!(Broker::from_url("mqtts://example.com").is_err());
    }
}
