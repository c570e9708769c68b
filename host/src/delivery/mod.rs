//! HTTP delivery: the client that sends what plugins ask for, and the
//! policy of which destinations it may reach.

pub mod client;
pub mod guard;
pub mod resolve;

pub use client::{ClientOptions, DeliveryError, HttpSender, USER_AGENT};
