//! What the host keeps of commands sent through `POST
//! /v1/devices/{id}/commands`, for `GET /v1/commands/{request_id}`: a
//! backend that cannot hold a socket reads the output later.
//!
//! Bounded in every direction: at most [`KEPT_COMMANDS`] commands, at most
//! [`KEPT_OUTPUT_BYTES`] of output each (the rest is counted, not kept),
//! and a finished command for [`KEPT_FOR`]. A pure state machine: the
//! caller passes the time.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::topic::{DeviceId, RequestId};

/// Commands kept at once; the oldest goes first when a new one comes.
pub const KEPT_COMMANDS: usize = 1000;

/// Output bytes (chunk text) kept per command.
pub const KEPT_OUTPUT_BYTES: usize = 256 << 10;

/// How long a finished command stays readable.
pub const KEPT_FOR: Duration = Duration::from_secs(600);

/// Where a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Sent; the device has not said it is done.
    Running,
    /// The device published `command-done`.
    Done,
    /// The device said nothing for the command timeout.
    TimedOut,
}

/// One kept command, as `GET /v1/commands/{request_id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Its id.
    pub request_id: RequestId,
    /// The device it was sent to.
    pub device_id: DeviceId,
    /// The command as sent.
    pub command: String,
    /// Where it is.
    pub state: State,
    /// The output chunks so far, each `{"chunk", "fd"}` as the device sent it.
    pub output: Vec<serde_json::Value>,
    /// Whether output was left out for [`KEPT_OUTPUT_BYTES`].
    pub truncated: bool,
    /// The device's `command-done` payload, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done: Option<serde_json::Value>,
    #[serde(skip)]
    output_bytes: usize,
    #[serde(skip)]
    finished_at: Option<Instant>,
}

/// The kept commands, oldest first.
#[derive(Debug, Default)]
pub struct KeptCommands {
    records: HashMap<RequestId, Record>,
    order: VecDeque<RequestId>,
}

impl KeptCommands {
    /// Starts keeping a command, forgetting the oldest one when full.
    pub fn start(&mut self, request_id: RequestId, device_id: DeviceId, command: String) {
        while self.records.len() >= KEPT_COMMANDS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.records.remove(&oldest);
        }
        self.order.push_back(request_id.clone());
        self.records.insert(
            request_id.clone(),
            Record {
                request_id,
                device_id,
                command,
                state: State::Running,
                output: Vec::new(),
                truncated: false,
                done: None,
                output_bytes: 0,
                finished_at: None,
            },
        );
    }

    /// A chunk of output, kept while the command's budget lasts.
    pub fn output(&mut self, id: &RequestId, chunk: serde_json::Value) {
        let Some(record) = self.records.get_mut(id) else {
            return;
        };
        let size = chunk
            .get("chunk")
            .and_then(|c| c.as_str())
            .map_or(0, str::len);
        if record.truncated || record.output_bytes + size > KEPT_OUTPUT_BYTES {
            record.truncated = true;
            return;
        }
        record.output_bytes += size;
        record.output.push(chunk);
    }

    /// The command ended: done (with the device's payload) or timed out.
    pub fn finish(&mut self, id: &RequestId, done: Option<serde_json::Value>, now: Instant) {
        if let Some(record) = self.records.get_mut(id) {
            record.state = if done.is_some() {
                State::Done
            } else {
                State::TimedOut
            };
            record.done = done;
            record.finished_at = Some(now);
        }
    }

    /// The command, unless forgotten.
    pub fn get(&self, id: &RequestId, now: Instant) -> Option<Record> {
        self.records.get(id).filter(|r| !expired(r, now)).cloned()
    }

    /// Forgets the commands finished longer than [`KEPT_FOR`] ago.
    pub fn expire(&mut self, now: Instant) {
        self.records.retain(|_, r| !expired(r, now));
        let records = &self.records;
        self.order.retain(|id| records.contains_key(id));
    }
}

fn expired(record: &Record, now: Instant) -> bool {
    record
        .finished_at
        .is_some_and(|at| now.duration_since(at) > KEPT_FOR)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn id(s: &str) -> RequestId {
        RequestId::try_from(s).unwrap()
    }

    fn start(kept: &mut KeptCommands, s: &str) {
        kept.start(id(s), DeviceId::try_from("d1").unwrap(), "uptime".into());
    }

    #[test]
    fn keeps_output_then_the_end_until_it_expires() {
        let mut kept = KeptCommands::default();
        let t0 = Instant::now();
        start(&mut kept, "r1");
        kept.output(&id("r1"), json!({"chunk": "a", "fd": "stdout"}));
        assert_eq!(kept.get(&id("r1"), t0).unwrap().state, State::Running);
        kept.finish(&id("r1"), Some(json!({"exit_code": 0})), t0);
        let record = kept.get(&id("r1"), t0).unwrap();
        assert_eq!(record.state, State::Done);
        assert_eq!(record.output, vec![json!({"chunk": "a", "fd": "stdout"})]);
        let later = t0 + KEPT_FOR + Duration::from_secs(1);
        assert!(kept.get(&id("r1"), later).is_none());
        kept.expire(later);
        assert!(kept.records.is_empty() && kept.order.is_empty());
    }

    #[test]
    fn output_beyond_the_budget_is_counted_as_truncated() {
        let mut kept = KeptCommands::default();
        start(&mut kept, "r1");
        let big = "x".repeat(KEPT_OUTPUT_BYTES - 1);
        kept.output(&id("r1"), json!({"chunk": big, "fd": "stdout"}));
        kept.output(&id("r1"), json!({"chunk": "yy", "fd": "stdout"}));
        kept.output(&id("r1"), json!({"chunk": "", "fd": "stdout"}));
        let record = kept.get(&id("r1"), Instant::now()).unwrap();
        assert_eq!(record.output.len(), 1);
        assert!(record.truncated);
    }

    #[test]
    fn the_oldest_goes_when_full_and_a_silent_device_times_out() {
        let mut kept = KeptCommands::default();
        for i in 0..=KEPT_COMMANDS {
            start(&mut kept, &format!("r{i}"));
        }
        let now = Instant::now();
        assert!(kept.get(&id("r0"), now).is_none());
        assert!(kept.get(&id("r1"), now).is_some());
        kept.finish(&id("r1"), None, now);
        assert_eq!(kept.get(&id("r1"), now).unwrap().state, State::TimedOut);
    }
}
