//! How the process logs: what `log_level` lets through, on standard
//! error, as text (coloured only when standard error is a terminal, so log
//! files and journald get plain lines) or as one JSON object a line for
//! log shippers. Both change without a restart ([`apply`], on SIGHUP).
//!
//! A log line may quote what a client chose (a client id, a username, a
//! topic). The host's own lines escape such values where they write them;
//! as a backstop for every other line (the broker's own among them), text
//! records go out with their control characters escaped, so that no client
//! can end a line early to forge the next one. On a terminal the escape
//! character is left alone for the colours; JSON escapes by itself.
//!
//! The records of crates that log through `log` (rustls, the broker) reach
//! the same subscriber. Some are a client's mistake repeated on every
//! connection it makes: rustls warns "Illegal SNI extension" for each device
//! that names the embedded broker's TLS listener by IP address (RFC 6066
//! allows only host names in SNI; rustls ignores the name and the
//! connection goes on). Those come out at debug level, not as warnings.

use std::io::{IsTerminal as _, Write};
use std::sync::OnceLock;

use serde::Deserialize;
use tracing_log::{AsLog as _, LogTracer};
use tracing_subscriber::layer::{Layered, SubscriberExt as _};
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// The shape of log lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, `fields`.
    Json,
}

impl LogFormat {
    /// Its name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// `log_level` when it is not set.
pub const DEFAULT_LEVEL: &str = "info";

/// Targets kept to warnings unless `log_level` names them: the broker's
/// own chatter, and the NATS client's (a line per reconnect attempt; the
/// host says once when NATS goes and comes back).
const QUIET: [&str; 3] = ["rmqtt", "rmqtt_net", "async_nats"];

/// The filter of `level` (a level or `RUST_LOG`-style directives), with
/// the `QUIET` targets it does not name kept to warnings.
pub fn filter(level: &str) -> Result<EnvFilter, String> {
    let mut directives = level.trim().to_owned();
    for target in QUIET {
        let named = directives
            .split(',')
            .any(|d| d.trim().split(['=', '[']).next() == Some(target));
        if !named {
            directives.push_str(&format!(",{target}=warn"));
        }
    }
    EnvFilter::builder()
        .parse(directives.trim_start_matches(','))
        .map_err(|e| e.to_string())
}

type Filtered = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type Lines = Box<dyn Layer<Filtered> + Send + Sync>;

/// What [`apply`] changes in the installed subscriber.
struct Handles {
    filter: reload::Handle<EnvFilter, Registry>,
    lines: reload::Handle<Lines, Filtered>,
}

static HANDLES: OnceLock<Handles> = OnceLock::new();

/// Installs the process-wide subscriber logging what `level` lets through
/// (the default level when it does not parse: the configuration's check
/// then says why) as `format`, and passes `log` records to it.
pub fn init(level: &str, format: LogFormat) {
    let filter = filter(level)
        .unwrap_or_else(|_| self::filter(DEFAULT_LEVEL).expect("the default level parses"));
    let (filter, filter_handle) = reload::Layer::new(filter);
    let (lines, lines_handle) = reload::Layer::new(lines(format));
    // Not `try_init`: it would install its own `log` bridge in place of
    // ours ([`Bridge`]).
    let subscriber = tracing_subscriber::registry().with(filter).with(lines);
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        return;
    }
    let _ = HANDLES.set(Handles {
        filter: filter_handle,
        lines: lines_handle,
    });
    let bridge: &'static Bridge = Box::leak(Box::new(Bridge(LogTracer::new())));
    if log::set_logger(bridge).is_ok() {
        log::set_max_level(tracing::level_filters::LevelFilter::current().as_log());
    }
}

/// Logs from now on what `level` lets through, as `format`.
pub fn apply(level: &str, format: LogFormat) -> Result<(), String> {
    let Some(handles) = HANDLES.get() else {
        return Err("no logger installed".into());
    };
    let filter = filter(level)?;
    handles.filter.reload(filter).map_err(|e| e.to_string())?;
    handles
        .lines
        .reload(lines(format))
        .map_err(|e| e.to_string())?;
    log::set_max_level(tracing::level_filters::LevelFilter::current().as_log());
    Ok(())
}

/// The layer writing lines as `format`.
fn lines(format: LogFormat) -> Lines {
    let layer = tracing_subscriber::fmt::layer();
    match format {
        LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal();
            layer.with_writer(Escaped { ansi }).with_ansi(ansi).boxed()
        }
        LogFormat::Json => layer.json().with_writer(std::io::stderr).boxed(),
    }
}

/// `log` records into the subscriber, with a client's mistakes
/// ([`is_clients_mistake`]) made debug records.
#[derive(Debug)]
struct Bridge(LogTracer);

impl log::Log for Bridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !is_clients_mistake(record) {
            return self.0.log(record);
        }
        self.0.log(
            &log::Record::builder()
                .args(*record.args())
                .level(log::Level::Debug)
                .target(record.target())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Whether `record` is rustls's warning about a client's SNI extension (an
/// IP address or a malformed name in it, or two names): the client's
/// mistake, once per connection, and nothing the host can mend.
fn is_clients_mistake(record: &log::Record<'_>) -> bool {
    record.level() == log::Level::Warn
        && record.target() == "rustls::msgs::handshake"
        && record.args().to_string().starts_with("Illegal SNI")
}

/// Standard error, one record at a time, control characters escaped.
#[derive(Debug, Clone, Copy)]
struct Escaped {
    /// Whether the records carry colours (escape characters to keep).
    ansi: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Escaped {
    type Writer = Record;

    fn make_writer(&'a self) -> Record {
        Record {
            text: Vec::new(),
            ansi: self.ansi,
        }
    }
}

/// One record, written when it is complete (the formatter writes a record
/// and drops its writer).
#[derive(Debug)]
struct Record {
    text: Vec<u8>,
    ansi: bool,
}

impl Write for Record {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let line = escape_controls(&self.text, self.ansi);
        // Nowhere to report a failure to write to standard error.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// `text` with every control character but its final line end (and, with
/// `ansi`, the escape character) written as Rust writes it in a string
/// literal (`\n`, `\u{1b}`).
fn escape_controls(text: &[u8], ansi: bool) -> String {
    let text = String::from_utf8_lossy(text);
    let (body, end) = match text.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (&*text, ""),
    };
    let mut out = String::with_capacity(text.len() + 8);
    for c in body.chars() {
        if c.is_control() && !(ansi && c == '\u{1b}') {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out.push_str(end);
    out
}

#[cfg(test)]
mod tests {
    use super::{escape_controls, filter, is_clients_mistake};

    #[test]
    fn a_level_keeps_the_chatty_targets_quiet_unless_it_names_them() {
        let shown = |level: &str| filter(level).unwrap().to_string();
        let debug = shown("debug");
        assert!(debug.contains("debug"), "{debug}");
        assert!(debug.contains("rmqtt=warn"), "{debug}");
        assert!(debug.contains("async_nats=warn"), "{debug}");
        let named = shown("info,rmqtt=debug");
        assert!(named.contains("rmqtt=debug"), "{named}");
        assert!(!named.contains("rmqtt=warn"), "{named}");
        assert!(named.contains("rmqtt_net=warn"), "{named}");
        assert!(filter("info,edgehook=loud").is_err());
    }

    #[test]
    fn only_rustls_sni_warnings_are_a_clients_mistake() {
        let record = |level, target: &'static str, text: &'static str| {
            is_clients_mistake(
                &log::Record::builder()
                    .level(level)
                    .target(target)
                    .args(format_args!("{text}"))
                    .build(),
            )
        };
        let handshake = "rustls::msgs::handshake";
        let ip = "Illegal SNI extension: ignoring IP address presented as hostname (3132)";
        assert!(record(log::Level::Warn, handshake, ip));
        assert!(record(
            log::Level::Warn,
            handshake,
            "Illegal SNI hostname received \"a_b\""
        ));
        assert!(!record(log::Level::Warn, handshake, "something else"));
        assert!(!record(log::Level::Warn, "rustls::server::hs", ip));
        assert!(!record(log::Level::Error, handshake, ip));
    }

    #[test]
    fn a_record_cannot_end_its_line_early_or_send_escapes() {
        let forged = "WARN login refused (client x\nINFO all is well\r\u{1b}[2J)\n";
        assert_eq!(
            escape_controls(forged.as_bytes(), false),
            "WARN login refused (client x\\nINFO all is well\\r\\u{1b}[2J)\n"
        );
        assert_eq!(
            escape_controls("\u{1b}[33mWARN\u{1b}[0m x\ty\n".as_bytes(), true),
            "\u{1b}[33mWARN\u{1b}[0m x\\ty\n",
            "colours kept on a terminal"
        );
        assert_eq!(escape_controls(b"no line end", false), "no line end");
    }
}
