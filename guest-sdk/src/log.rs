//! Writing to the host's log, tagged with the plugin's name.
//!
//! The host keeps a bounded number of bytes per call (the manifest's
//! `limits.log_bytes`); the rest is dropped and counted.

#[cfg(target_arch = "wasm32")]
use crate::rt::edgehook::webhook0_2_0::host::{Level, log};

#[cfg(target_arch = "wasm32")]
fn write(level: Level, message: &str) {
    log(level, message);
}

#[cfg(not(target_arch = "wasm32"))]
fn write(level: &str, message: &str) {
    eprintln!("[{level}] {message}");
}

macro_rules! levels {
    ($($name:ident => $level:ident),*) => {$(
        #[doc = concat!("Logs `message` at ", stringify!($name), " level.")]
        pub fn $name(message: &str) {
            #[cfg(target_arch = "wasm32")]
            write(Level::$level, message);
            #[cfg(not(target_arch = "wasm32"))]
            write(stringify!($name), message);
        }
    )*};
}

levels!(trace => Trace, debug => Debug, info => Info, warn => Warn, error => Error);
