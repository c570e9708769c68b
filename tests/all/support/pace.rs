//! How long the tests wait and how fast their devices may publish.

use std::time::Duration;

/// The publish rate of the tests' devices: the load tests publish as fast
/// as they can, far over a device's default rate; the tests of that limit
/// set their own.
pub const UNPACED: &str = "1000000/s";

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(10);
