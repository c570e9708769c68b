//! Particle-style webhooks (skeleton).
#![deny(missing_docs)]
pub mod template;
