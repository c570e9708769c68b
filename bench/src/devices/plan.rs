//! What the fleet publishes: how many devices, how many events, their
//! size and pace, and each event's data.

use bytes::Bytes;

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
    pub(super) fn local(&self, device: usize, seq: usize) -> Option<usize> {
        (seq < self.events && seq % self.devices == device).then_some(seq / self.devices)
    }

    /// How many events device `device` sends.
    pub(super) fn share(&self, device: usize) -> usize {
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
