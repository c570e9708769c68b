//! Delivery policies: which outcomes are retried and after how long
//! ([`retry`]), Particle's adaptive per-host sleep ([`health`]), rate limits
//! ([`rate`]), and the keyed async layer that applies them per destination
//! host and per device ([`gate`]).

pub mod gate;
pub mod health;
pub mod rate;
pub mod retry;

pub use gate::{HostPermit, Throttle, ThrottleConfig};
pub use health::{HealthPolicy, SLEEPING_MESSAGE, Sleeping};
pub use rate::{ParseRateError, Rate};
pub use retry::{Attempt, RetrySchedule, Verdict, classify};
