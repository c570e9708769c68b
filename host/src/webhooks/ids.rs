//! The names every dialect's webhooks share: ids, their registry names,
//! creation times.

/// The registry name of webhook `id`.
pub fn hook_name(id: &str) -> String {
    format!("webhook/{id}")
}

/// 96 random bits as 24 hex digits, the shape of a Particle webhook id;
/// every dialect's ids are made here, so they never collide in practice.
pub fn new_id() -> String {
    format!("{:024x}", rand::random::<u128>() >> 32)
}

/// The time now, RFC 3339 with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
