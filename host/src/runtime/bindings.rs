//! The one place where Rust bindings for the WIT worlds are generated.
//!
//! The host runs plugins of two versions of the world: [`v0_2`], the
//! current one in `wit/`, and [`v0_1`], the first release in
//! `wit/deps/webhook-0.1.0/`. Everything else in the host uses these types
//! through [`super`]; no other module runs `bindgen!`.

/// `edgehook:webhook/webhook@0.2.0`.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        world: "edgehook:webhook/webhook@0.2.0",
        path: "../wit/webhook.wit",
        exports: { default: async },
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
