//! Paths of the wasm plugins built for the tests and benchmarks.
//!
//! `build.rs` compiles every crate under `plugins/` (and the fixture guests
//! under `tests/fixtures/`) for `wasm32-wasip2` once per build; the constants
//! in `plugins.rs` name the results, and [`FIXTURES`] lists the fixtures'
//! constants so that a test can check each one is used.
#![deny(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
