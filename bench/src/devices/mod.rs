//! The simulated devices: one MQTT client each, subscribed to its own
//! hook-response and hook-error topics, publishing `load` events with QoS 1
//! and matching every answer back to the event it answers.
//!
//! Events are numbered across the fleet: device `i` of `D` sends the
//! sequence numbers `i`, `i + D`, `i + 2D`, … below `--events`, so an answer
//! names its event and the device that must receive it.
//!
//! Its parts: the [plan](plan) (how many devices, events and at what
//! pace), the [broker](broker) they connect to, the [topics](topics) a
//! device speaks on, one [device](device)'s publisher and receiver, the
//! [counts](counts) they keep, and the [fleet](fleet) that connects them
//! and adds their counts up.

mod broker;
mod counts;
mod device;
mod fleet;
mod plan;
#[cfg(test)]
mod tests;
mod topics;

pub use broker::Broker;
pub use fleet::Fleet;
pub use plan::{Pace, Plan};
pub use topics::EVENT;
