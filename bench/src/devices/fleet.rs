//! The connected, subscribed devices: connecting them, starting them,
//! stopping them, and adding up what each saw.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use rumqttc::AsyncClient;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

use super::broker::{Broker, CONNECT_TIMEOUT};
use super::counts::{Ledger, Progress, Tally, latency_histogram, lock};
use super::device::{Device, Pacer, drive};
use super::plan::{Pace, Plan};
use super::topics::Topics;

/// Outgoing QoS 1 messages a client keeps awaiting their PUBACK, and
/// requests queued in its channel before `publish` waits.
const CLIENT_INFLIGHT: u16 = 1024;

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
