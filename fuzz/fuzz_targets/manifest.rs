//! The plugin manifest: any text is parsed as `NAME.toml`; for one that is
//! accepted, its host patterns are matched against every line of the input
//! (any text, not only host names) and its filter against a few events.
#![no_main]

use edgehook::plugins::Manifest;
use edgehook::runtime::Limits;
use edgehook::topic::DeviceId;
use libfuzzer_sys::fuzz_target;

/// The host's default ceiling for `limits.memory`.
const MAX_MEMORY: usize = 256 << 20;

fuzz_target!(|text: &str| {
    let env = |var: &str| (var == "EDGEHOOK_PLUGIN_KEY").then(|| "s3cret".to_owned());
    let Ok(manifest) = Manifest::parse(text, &Limits::default(), MAX_MEMORY, env) else {
        return;
    };
    assert!(manifest.limits.memory <= MAX_MEMORY);
    for pattern in &manifest.allowed_hosts {
        for host in text.lines().chain(["api.example.com", "[::1]", ""]) {
            pattern.matches(host);
        }
    }
    let device = DeviceId::try_from("dev-1").unwrap();
    for name in ["temp", "", text] {
        manifest.filter.matches(&device, name);
    }
});
