//! Particle-style webhooks (skeleton).
