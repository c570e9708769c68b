//! HTTP delivery: the client that sends what plugins ask for, the policy
//! of which destinations it may reach, and the Standard Webhooks signature.

pub mod client;
pub mod guard;
pub mod resolve;
pub mod sign;

pub use client::{ClientOptions, DeliveryError, HttpSender, SendOptions, USER_AGENT};
