//! The one place where Rust bindings for the WIT worlds are generated.
//!
//! The host runs plugins of three versions of the world: 0.3.0, the
//! current one in `wit/`, is 0.2.0 ([`v0_2`], `wit/deps/webhook-0.2.0/`)
//! with the key-value state of [`v0_3`]; [`v0_1`] is the first release in
//! `wit/deps/webhook-0.1.0/`. Everything else in the host uses these types
//! through [`super`]; no other module runs `bindgen!`.

/// `edgehook:webhook/webhook@0.2.0`.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        world: "edgehook:webhook/webhook@0.2.0",
        path: "../wit/deps/webhook-0.2.0/webhook.wit",
        exports: { default: async },
    });
}

/// What 0.3.0 adds, `edgehook:webhook/state@0.3.0`: `wasi:keyvalue` and
/// `kv-ttl`, async (a write waits for the disk), their resources the
/// host's own types.
pub mod v0_3 {
    wasmtime::component::bindgen!({
        world: "edgehook:webhook/state@0.3.0",
        path: "../wit",
        imports: { default: async },
        with: {
            "wasi:keyvalue/store.bucket": crate::runtime::keyvalue::KvBucket,
            "wasi:keyvalue/atomics.cas": crate::runtime::keyvalue::KvCas,
        },
    });
}

/// `edgehook:webhook/webhook@0.1.0`.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "edgehook:webhook/webhook@0.1.0",
        path: "../wit/deps/webhook-0.1.0/webhook.wit",
        exports: { default: async },
    });
}
