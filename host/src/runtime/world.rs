//! What a plugin's component must be: a component (not a core module) of
//! the `edgehook:webhook` world, exporting `on-event` and `on-response`,
//! and importing only what the host gives it. The linker gives the host
//! interface (of 0.2.0, the current world, and of 0.1.0, the first release)
//! and the few WASI p2 interfaces a Rust `wasm32-wasip2` guest imports in
//! practice ([`GIVEN_WASI`]): no sockets, no HTTP, no files. A plugin that
//! imports anything else fails to load, with a [`LoadError`] that names the
//! interface (README "What a plugin may use").

use wasmtime::Engine;
use wasmtime::component::{Component, HasData, HasSelf, Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::{cli, clocks, io, random};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

use super::bindings::{v0_1, v0_2, v0_3};
use super::plugin::Pre;
use super::state::HostState;

/// The worlds a plugin may implement, as errors name them.
const WORLD: &str = "edgehook:webhook/webhook@0.3.0 (or @0.2.0, @0.1.0)";

/// Why a plugin could not be loaded. The caller puts the file's name in
/// front of the message.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A core module (`wasm32-unknown-unknown`, `wasm32-wasip1`), not a
    /// component.
    #[error(
        "the file is a core wasm module, not a component; build for wasm32-wasip2 \
         (`cargo build --release --target wasm32-wasip2`)"
    )]
    CoreModule,
    /// The bytes are not a valid component (truncated, corrupt, not wasm).
    #[error("not a valid WebAssembly component: {0:#}")]
    Compile(wasmtime::Error),
    /// A valid component of another world: an export of ours is missing or
    /// has another type.
    #[error("does not implement {WORLD}: {missing}")]
    Exports {
        /// What is missing, e.g. "no `on-event` export".
        missing: String,
    },
    /// The component imports an interface the host does not give plugins.
    #[error(
        "the component imports {interface}{others}, which edgehook does not give plugins ({why})",
        others = and_more(*.others)
    )]
    NotGiven {
        /// The first import not given, with its version.
        interface: String,
        /// How many other imports are not given either.
        others: usize,
        /// Why plugins do not get it.
        why: &'static str,
    },
    /// The component does not link for another reason (an import of an
    /// incompatible version, a type that does not match).
    #[error("does not match the {WORLD} world: {0:#}")]
    World(wasmtime::Error),
}

/// The linker every plugin is instantiated with: the WASI interfaces of
/// [`GIVEN_WASI`] and the host interface of both releases of the world.
pub(super) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    for (_, add) in GIVEN_WASI {
        add(&mut linker)?;
    }
    v0_2::Webhook::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    v0_3::State::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    v0_1::Webhook::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Checks `component` against the world and prepares its instantiation:
/// its exports, then its imports against what `linker` gives. A component
/// that imports the first release of the world runs as one of 0.1.0; one
/// that imports key-value state is of 0.3.0.
pub(super) fn instantiate_pre(
    engine: &Engine,
    linker: &Linker<HostState>,
    component: &Component,
) -> Result<Pre, LoadError> {
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    if let Some(missing) = missing_exports(&exports) {
        return Err(LoadError::Exports { missing });
    }
    let imports: Vec<&str> = ty.imports(engine).map(|(name, _)| name).collect();
    let pre = linker
        .instantiate_pre(component)
        .map_err(|err| not_given(&imports).unwrap_or(LoadError::World(err)))?;
    if imports.iter().any(|name| is_first_release(name)) {
        v0_1::WebhookPre::new(pre).map(Pre::V0_1)
    } else if imports.iter().any(|name| STATE_IMPORTS.contains(name)) {
        v0_2::WebhookPre::new(pre).map(Pre::V0_3)
    } else {
        v0_2::WebhookPre::new(pre).map(Pre::V0_2)
    }
    .map_err(LoadError::World)
}

/// Adds one interface to the linker.
type AddToLinker = fn(&mut Linker<HostState>) -> wasmtime::Result<()>;

/// The WASI p2 interfaces plugins are given, by name without version, and
/// how each is added to the linker: exactly those a Rust `wasm32-wasip2`
/// guest imports. Every Rust plugin imports `wasi:io/*` and `wasi:cli/*`
/// (std's streams, environment, exit and terminal checks); `SystemTime`,
/// `Instant` and `HashMap`'s seed bring in `wasi:clocks/*` and
/// `wasi:random/*`. Each call's WASI context is empty: no environment, no
/// arguments, an empty stdin; stdout and stderr go to the plugin's log.
///
/// Not given: `wasi:sockets/*` and `wasi:http/*` (the host sends the
/// requests) and `wasi:filesystem/*` (a plugin reads nothing: only a plugin
/// that calls `std::fs` imports it, and there would be no file to reach).
const GIVEN_WASI: &[(&str, AddToLinker)] = &[
    ("wasi:io/error", |l| {
        io::error::add_to_linker::<_, Table>(l, |s| s.ctx().table)
    }),
    ("wasi:io/poll", |l| {
        io::poll::add_to_linker::<_, Table>(l, |s| s.ctx().table)
    }),
    ("wasi:io/streams", |l| {
        io::streams::add_to_linker::<_, Table>(l, |s| s.ctx().table)
    }),
    ("wasi:clocks/wall-clock", |l| {
        clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, HostState::clocks)
    }),
    ("wasi:clocks/monotonic-clock", |l| {
        clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, HostState::clocks)
    }),
    ("wasi:random/random", |l| {
        random::random::add_to_linker::<_, WasiRandom>(l, HostState::random)
    }),
    ("wasi:random/insecure", |l| {
        random::insecure::add_to_linker::<_, WasiRandom>(l, HostState::random)
    }),
    ("wasi:random/insecure-seed", |l| {
        random::insecure_seed::add_to_linker::<_, WasiRandom>(l, HostState::random)
    }),
    ("wasi:cli/environment", |l| {
        cli::environment::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/exit", |l| {
        cli::exit::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/stdin", |l| {
        cli::stdin::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/stdout", |l| {
        cli::stdout::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/stderr", |l| {
        cli::stderr::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/terminal-input", |l| {
        cli::terminal_input::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/terminal-output", |l| {
        cli::terminal_output::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/terminal-stdin", |l| {
        cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/terminal-stdout", |l| {
        cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/terminal-stderr", |l| {
        cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
];

/// The version line of the WASI interfaces in [`GIVEN_WASI`]: any `0.2.x`
/// links, as wasmtime matches semver-compatible versions.
const WASI_LINE: &str = "0.2.";

/// The interfaces of our own world, and the versions the host implements.
const HOST_INTERFACES: &[&str] = &["edgehook:webhook/host", "edgehook:webhook/types"];
const HOST_VERSIONS: &[&str] = &["0.2.0", "0.1.0"];

/// What 0.3.0 adds to the imports of 0.2.0, by full name.
const STATE_IMPORTS: &[&str] = &[
    "wasi:keyvalue/store@0.2.0-draft2",
    "wasi:keyvalue/atomics@0.2.0-draft2",
    "wasi:keyvalue/batch@0.2.0-draft2",
    "edgehook:webhook/kv-ttl@0.3.0",
];

/// The functions the world exports; a component without them is not a
/// plugin.
const WORLD_EXPORTS: &[&str] = &["on-event", "on-response"];

/// The `wasi:io` interfaces work on the resource table alone.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// Whether `wasm` starts with the header of a core module (version 1)
/// rather than a component's.
pub(super) fn is_core_module(wasm: &[u8]) -> bool {
    wasm.starts_with(b"\0asm\x01\0\0\0")
}

/// What a component exporting `exports` lacks of the world, if anything.
fn missing_exports(exports: &[&str]) -> Option<String> {
    let missing: Vec<String> = WORLD_EXPORTS
        .iter()
        .filter(|name| !exports.contains(name))
        .map(|name| format!("`{name}`"))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let exported = if exports.is_empty() {
        "nothing".to_owned()
    } else {
        exports
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(format!(
        "no {} export (it exports {exported})",
        missing.join(" or ")
    ))
}

/// Whether the linker gives the import `name` (`package/interface@version`).
fn is_given(name: &str) -> bool {
    if STATE_IMPORTS.contains(&name) {
        return true;
    }
    let Some((interface, version)) = name.split_once('@') else {
        return false;
    };
    if HOST_INTERFACES.contains(&interface) {
        return HOST_VERSIONS.contains(&version);
    }
    GIVEN_WASI.iter().any(|(given, _)| *given == interface) && version.starts_with(WASI_LINE)
}

/// Whether the import `name` is of the first release of our world: a
/// plugin built against it runs as one of `edgehook:webhook@0.1.0`.
fn is_first_release(name: &str) -> bool {
    name.split_once('@').is_some_and(|(interface, version)| {
        HOST_INTERFACES.contains(&interface) && version == "0.1.0"
    })
}

/// The error for a component that imports something the linker does not
/// give, naming one such import: the first of the package that matters
/// most (a plugin that opens sockets usually imports `wasi:filesystem` as
/// well, and the sockets are the point); `None` if it imports nothing else.
fn not_given(imports: &[&str]) -> Option<LoadError> {
    let refused: Vec<&str> = imports
        .iter()
        .copied()
        .filter(|name| !is_given(name))
        .collect();
    let (rank, why) = refused.iter().map(|name| refusal(name)).min()?;
    let interface = refused.iter().find(|name| refusal(name).0 == rank)?;
    Some(LoadError::NotGiven {
        interface: (*interface).to_owned(),
        others: refused.len() - 1,
        why,
    })
}

/// Packages plugins do not get, most telling first, and why.
const REFUSED: &[(&str, &str)] = &[
    (
        "wasi:sockets",
        "no network or sockets: the host sends the requests",
    ),
    ("wasi:http", "no network: the host sends the requests"),
    (
        "wasi:filesystem",
        "no files: a plugin's settings come from its manifest's [config]",
    ),
    (
        "edgehook:webhook",
        "this host implements edgehook:webhook@0.3.0, @0.2.0 and @0.1.0",
    ),
];

/// The rank of the interface `name` in [`REFUSED`], and why plugins do not
/// get it.
fn refusal(name: &str) -> (usize, &'static str) {
    let package = name.split('/').next().unwrap_or(name);
    REFUSED
        .iter()
        .position(|(refused, _)| *refused == package)
        .map_or(
            (
                REFUSED.len(),
                "plugins get the edgehook:webhook host interface, wasi:keyvalue@0.2.0-draft2 and WASI io, clocks, random and cli only",
            ),
            |rank| (rank, REFUSED[rank].1),
        )
}

fn and_more(others: usize) -> String {
    match others {
        0 => String::new(),
        n => format!(" (and {n} more it does not give)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::Engine;

    /// What `wasm32-wasip2` Rust plugins import (the thingspeak example's
    /// list), and what `std::net` adds.
    const PLUGIN_IMPORTS: &[&str] = &[
        "edgehook:webhook/host@0.1.0",
        "edgehook:webhook/types@0.1.0",
        "wasi:io/poll@0.2.6",
        "wasi:io/error@0.2.6",
        "wasi:io/streams@0.2.6",
        "wasi:cli/environment@0.2.6",
        "wasi:cli/exit@0.2.6",
        "wasi:cli/stdin@0.2.6",
        "wasi:cli/stdout@0.2.6",
        "wasi:cli/stderr@0.2.6",
        "wasi:cli/terminal-input@0.2.6",
        "wasi:cli/terminal-output@0.2.6",
        "wasi:cli/terminal-stdin@0.2.6",
        "wasi:cli/terminal-stdout@0.2.6",
        "wasi:cli/terminal-stderr@0.2.6",
        "wasi:clocks/wall-clock@0.2.6",
        "wasi:clocks/monotonic-clock@0.2.6",
        "wasi:random/random@0.2.0",
    ];

    /// Whether `linker` has `name` (an exact `interface@version`):
    /// defining a function under a name the linker already has fails.
    fn has(linker: &mut Linker<HostState>, name: &str) -> bool {
        linker.root().func_wrap(name, |_, (): ()| Ok(())).is_err()
    }

    /// The exact version under which wasmtime-wasi registers its WASI 0.2
    /// interfaces, found in a linker that has `wasi:io/error` alone.
    fn linked_wasi_version(engine: &Engine) -> String {
        let mut probe = Linker::<HostState>::new(engine);
        io::error::add_to_linker::<_, Table>(&mut probe, |s| s.ctx().table).unwrap();
        (0..1000)
            .map(|patch| format!("{WASI_LINE}{patch}"))
            .find(|version| has(&mut probe, &format!("wasi:io/error@{version}")))
            .expect("wasmtime-wasi registers wasi:io/error under some 0.2.x")
    }

    #[test]
    fn every_given_interface_is_in_the_linker_and_sockets_are_not() {
        let engine = Engine::default();
        let version = linked_wasi_version(&engine);
        let mut linker = Linker::<HostState>::new(&engine);
        for (_, add) in GIVEN_WASI {
            add(&mut linker).unwrap();
        }
        // Everything wasmtime-wasi offers, under the same version: the
        // interfaces left out must be found there, or their absence from
        // ours would prove nothing.
        let mut full = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut full).unwrap();
        for (name, _) in GIVEN_WASI {
            let name = format!("{name}@{version}");
            assert!(has(&mut linker, &name), "{name} is not in the linker");
        }
        for name in ["wasi:sockets/tcp", "wasi:filesystem/types"] {
            let name = format!("{name}@{version}");
            assert!(has(&mut full, &name), "wasmtime-wasi has no {name}");
            assert!(!has(&mut linker, &name), "{name} is in the linker");
        }
        let http = format!("wasi:http/types@{version}");
        assert!(!has(&mut linker, &http), "{http} is in the linker");
    }

    #[test]
    fn what_rust_plugins_import_is_given() {
        assert!(not_given(PLUGIN_IMPORTS).is_none());
        assert!(is_given("wasi:io/poll@0.2.0"));
        assert!(!is_given("wasi:io/poll@0.3.0"));
        assert!(!is_given("wasi:io/poll"));
        assert!(is_given("edgehook:webhook/host@0.2.0"));
        assert!(is_given("edgehook:webhook/types@0.1.0"));
        assert!(!is_given("edgehook:webhook/host@0.3.0"));
        for state in STATE_IMPORTS {
            assert!(is_given(state), "{state}");
        }
        assert!(!is_given("wasi:keyvalue/store@0.2.0-draft"));
        assert!(is_first_release("edgehook:webhook/types@0.1.0"));
        assert!(!is_first_release("edgehook:webhook/types@0.2.0"));
    }

    #[test]
    fn an_import_not_given_is_named_with_the_reason() {
        let mut imports = PLUGIN_IMPORTS.to_vec();
        imports.extend([
            "wasi:filesystem/types@0.2.6",
            "wasi:sockets/tcp@0.2.6",
            "wasi:sockets/network@0.2.6",
        ]);
        assert_eq!(
            not_given(&imports).unwrap().to_string(),
            "the component imports wasi:sockets/tcp@0.2.6 (and 2 more it does not give), \
             which edgehook does not give plugins (no network or sockets: the host sends the requests)"
        );
        assert_eq!(
            not_given(&["wasi:filesystem/preopens@0.2.6"])
                .unwrap()
                .to_string(),
            "the component imports wasi:filesystem/preopens@0.2.6, which edgehook does not give \
             plugins (no files: a plugin's settings come from its manifest's [config])"
        );
        assert!(
            not_given(&["wasi:http/outgoing-handler@0.2.6"])
                .unwrap()
                .to_string()
                .ends_with("(no network: the host sends the requests)")
        );
        assert!(
            not_given(&["wasi:keyvalue/store@0.2.0"])
                .unwrap()
                .to_string()
                .ends_with("(plugins get the edgehook:webhook host interface, wasi:keyvalue@0.2.0-draft2 and WASI io, clocks, random and cli only)")
        );
        assert!(
            not_given(&["edgehook:webhook/host@0.3.0"])
                .unwrap()
                .to_string()
                .ends_with("(this host implements edgehook:webhook@0.3.0, @0.2.0 and @0.1.0)")
        );
    }

    #[test]
    fn a_component_of_another_world_is_told_what_it_lacks() {
        assert_eq!(missing_exports(&["on-event", "on-response", "extra"]), None);
        assert_eq!(
            LoadError::Exports {
                missing: missing_exports(&["hello"]).unwrap()
            }
            .to_string(),
            "does not implement edgehook:webhook/webhook@0.3.0 (or @0.2.0, @0.1.0): \
             no `on-event` or `on-response` export (it exports `hello`)"
        );
        assert_eq!(
            missing_exports(&["on-event"]).unwrap(),
            "no `on-response` export (it exports `on-event`)"
        );
        assert_eq!(
            missing_exports(&[]).unwrap(),
            "no `on-event` or `on-response` export (it exports nothing)"
        );
    }
}
