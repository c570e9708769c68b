//! The particle plugin (skeleton).
