//! The clock guard (CONTRACT section 14): a gateway without a real-time
//! clock boots in 1970 or at its image's date until NTP syncs. Signatures
//! and tokens made then are refused (or, worse, expire at once), so signed
//! deliveries wait until the clock reads at least the binary's build date,
//! and `/healthz` says `clock not set` meanwhile.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// What `/healthz` says while the clock is behind.
pub const NOT_SET: &str = "clock not set";

/// How often a waiting delivery looks at the clock again.
pub const POLL: Duration = Duration::from_secs(1);

/// The day this binary was built (the commit's date), midnight UTC.
pub fn build_date() -> SystemTime {
    static DATE: OnceLock<SystemTime> = OnceLock::new();
    *DATE.get_or_init(|| {
        humantime::parse_rfc3339(&format!("{}T00:00:00Z", env!("EDGEHOOK_BUILD_DATE")))
            .unwrap_or(SystemTime::UNIX_EPOCH)
    })
}

/// Whether the clock can be trusted to sign with: it reads at least the
/// build date.
pub fn is_set() -> bool {
    SystemTime::now() >= build_date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_date_is_known_and_past() {
        assert!(build_date() > SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert!(is_set());
    }
}
