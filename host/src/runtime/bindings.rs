//! The one place where Rust bindings for the WIT world are generated.
//!
//! Everything else in the host uses these types through [`super`]; no other
//! module runs `bindgen!`.

wasmtime::component::bindgen!({
    world: "webhook",
    path: "../wit",
    exports: { default: async },
});
