//! The webhook dialects, each on its own built-in plugin: Particle-style
//! webhooks (from the API and the webhooks directory), Iottly-style
//! webhooks (per project) and Mainflux-style webhooks (per thing, scoped
//! to its group). Each dialect's module parses its definitions and says how
//! they run; [`Webhooks`] holds the three collections.

pub mod all;
mod auth;
pub mod iottly;
pub mod mainflux;
pub mod particle;
mod retry;
mod secrets;

pub use all::Webhooks;
pub use iottly::Iottly;
pub use mainflux::Mainflux;
pub use particle::Particle;
