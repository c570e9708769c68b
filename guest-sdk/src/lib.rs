//! The guest SDK of edgehook: write a webhook plugin in Rust.
//!
//! A plugin is a transform. The host hands it a device [`Event`]; the plugin
//! answers with the [`Request`] to send, or `None` to skip the event. The
//! host sends it (TLS, limits, timeouts) and hands back the [`Outcome`];
//! the plugin answers with the [`Reply`] messages for the device, which the
//! host splits into 512-byte chunks and publishes. A request may leave that
//! answer to the host ([`Request::answer`]), and the plugin is then called
//! once per event. Every event gets a fresh sandboxed instance: no files,
//! no network, no state kept from one event to the next. An event's
//! `on-response` runs in the instance of its `on-event` when the host has
//! room, else in a fresh one: a plugin may keep what `on-event` worked out
//! (in a `static`), but must not count on finding it.
//!
//! Implement [`Webhook`] and export it with [`export!`]:
//!
//! ```
//! use edgehook_guest::{Event, Request, Webhook, export};
//! use serde::Deserialize;
//!
//! /// The manifest's `[config]` table.
//! #[derive(Deserialize)]
//! struct Config {
//!     url: String,
//!     token: String,
//! }
//!
//! struct Forward;
//!
//! impl Webhook for Forward {
//!     fn on_event(event: Event) -> edgehook_guest::Result<Option<Request>> {
//!         let config: Config = edgehook_guest::config()?;
//!         let reading: serde_json::Value = event.json()?;
//!         let body = serde_json::json!({ "device": event.device_id, "reading": reading });
//!         Ok(Some(
//!             Request::post(&config.url)
//!                 .header("authorization", format!("Bearer {}", config.token))
//!                 .json(&body)?,
//!         ))
//!     }
//!     // `on_response` keeps its default: a 2xx body goes back to the device
//!     // on `hook-response`, anything else on `hook-error`.
//! }
//!
//! export!(Forward);
//! # fn main() {
//! #     use edgehook_guest::testing;
//! #     testing::set_config(serde_json::json!({ "url": "https://example.com/in", "token": "t" }));
//! #     let request = Forward::on_event(testing::event("dev-1", "temp", br#"{"c": 21}"#)).unwrap().unwrap();
//! #     assert_eq!(request.body, br#"{"device":"dev-1","reading":{"c":21}}"#);
//! # }
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and drop the
//! `.wasm` with its manifest into the host's plugins directory. Unit tests
//! run natively with plain `cargo test`, using [`testing`].
#![deny(missing_docs)]

extern crate self as edgehook_guest;

mod error;
mod event;
pub mod kv;
pub mod log;
mod reply;
mod request;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[doc(hidden)]
pub mod rt {
    //! The generated bindings; not part of the API.
    #![allow(missing_docs, clippy::too_many_arguments, reason = "generated code")]

    pub use wit_bindgen;

    wit_bindgen::generate!({
        path: "../wit",
        world: "edgehook:webhook/webhook@0.3.0",
        generate_all,
        pub_export_macro: true,
        additional_derives: [PartialEq, Eq],
        // A swap's error holds a resource, which has no equality.
        additional_derives_ignore: ["cas-error"],
        export_macro_name: "__export_webhook",
        default_bindings_module: "edgehook_guest::rt",
        runtime_path: "edgehook_guest::rt::wit_bindgen::rt",
    });

    impl<T: crate::Webhook> Guest for T {
        fn on_event(event: crate::Event) -> Result<Option<crate::Request>, String> {
            <T as crate::Webhook>::on_event(event).map_err(|e| e.to_string())
        }

        fn on_response(
            event: crate::Event,
            outcome: crate::Outcome,
        ) -> Result<Vec<crate::Reply>, String> {
            <T as crate::Webhook>::on_response(event, outcome).map_err(|e| e.to_string())
        }
    }
}

pub use error::{Error, Result};
pub use rt::edgehook::webhook0_2_0::types::{
    Answer, Event, Method, Outcome, Reply, ReplyKind, Request, Response,
};

/// A webhook plugin.
pub trait Webhook {
    /// The request to send for `event`, or `None` to skip it. An error
    /// becomes a `hook-error` for the device.
    fn on_event(event: Event) -> Result<Option<Request>>;

    /// The messages for the device, given what became of the request; the
    /// host calls it for a request whose [`answer`](Request::answer) is
    /// [`Answer::Plugin`] (the default).
    ///
    /// The default sends a 2xx response body on `hook-response`, and any
    /// other status (`error status 404`) or a failure (its reason) on
    /// `hook-error`.
    fn on_response(event: Event, outcome: Outcome) -> Result<Vec<Reply>> {
        let _ = event;
        Ok(vec![match outcome {
            Outcome::Response(r) if (200..300).contains(&r.status) => Reply::response(r.body),
            Outcome::Response(r) => Reply::error(format!("error status {}", r.status)),
            Outcome::Failed(why) => Reply::error(why),
        }])
    }
}

/// Exports a [`Webhook`] implementation as the plugin's entry points.
#[macro_export]
macro_rules! export {
    ($ty:ident) => {
        $crate::rt::__export_webhook!($ty);
    };
}

/// The plugin's configuration (the manifest's `[config]` table),
/// deserialized into `T`.
pub fn config<T: serde::de::DeserializeOwned>() -> Result<T> {
    serde_json::from_str(&config_json()).map_err(|e| Error::new(format!("configuration: {e}")))
}

/// The plugin's configuration as JSON text.
pub fn config_json() -> String {
    #[cfg(target_arch = "wasm32")]
    {
        rt::edgehook::webhook0_2_0::host::config()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        testing::config_json()
    }
}
