//! How the process logs: the filter of `EDGEHOOK_LOG`, on standard error,
//! as text (coloured only when standard error is a terminal, so log files
//! and journald get plain lines) or as one JSON object a line for log
//! shippers.
//!
//! A log line may quote what a client chose (a client id, a username, a
//! topic). The host's own lines escape such values where they write them;
//! as a backstop for every other line (the broker's own among them), text
//! records go out with their control characters escaped, so that no client
//! can end a line early to forge the next one. On a terminal the escape
//! character is left alone for the colours; JSON escapes by itself.

use std::io::{IsTerminal as _, Write};

use serde::Deserialize;

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

/// The filter when `EDGEHOOK_LOG` is unset: the broker's own chatter, and
/// the NATS client's (a line per reconnect attempt; the host says once
/// when NATS goes and comes back), are kept to warnings.
const DEFAULT_FILTER: &str = "info,rmqtt=warn,rmqtt_net=warn,async_nats=warn";

/// Installs the process-wide subscriber.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDGEHOOK_LOG")
        .unwrap_or_else(|_| DEFAULT_FILTER.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal();
            builder.with_writer(Escaped { ansi }).with_ansi(ansi).init();
        }
        LogFormat::Json => builder.with_writer(std::io::stderr).json().init(),
    }
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
    use super::escape_controls;

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
