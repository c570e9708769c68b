//! The guest's stdout and stderr: a bounded buffer the host drains into its
//! own log after each call, tagged with the plugin's name.
//!
//! Writes past the budget are accepted and dropped (counted), so a chatty
//! plugin neither fails nor grows the host's memory.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// What the guest wrote during one call, up to a byte budget.
#[derive(Debug, Default)]
pub struct GuestLog {
    /// Lines in the order written: `(stream, text)`.
    lines: Vec<(&'static str, String)>,
    /// Bytes kept so far.
    kept: usize,
    /// Bytes dropped because the budget was spent.
    pub dropped: usize,
    /// The budget for this call.
    budget: usize,
}

impl GuestLog {
    /// A log that keeps at most `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    /// Records one message, or counts it as dropped when over budget.
    pub fn push(&mut self, stream: &'static str, text: &[u8]) {
        let room = self.budget.saturating_sub(self.kept);
        let take = text.len().min(room);
        if take > 0 {
            self.kept += take;
            self.lines
                .push((stream, String::from_utf8_lossy(&text[..take]).into_owned()));
        }
        self.dropped += text.len() - take;
    }

    /// The last non-empty line written to `stream`, e.g. a panic message.
    pub fn last_line(&self, stream: &str) -> Option<&str> {
        self.lines
            .iter()
            .rev()
            .filter(|(s, _)| *s == stream)
            .flat_map(|(_, text)| text.lines().rev())
            .find(|line| {
                !line.trim().is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE")
            })
    }

    /// The recorded lines: `(stream, text)`, in the order written.
    pub fn lines(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.lines
            .iter()
            .map(|(stream, text)| (*stream, text.as_str()))
    }
}

/// A shared handle on a [`GuestLog`], given to WASI as stdout or stderr.
#[derive(Debug, Clone)]
pub struct GuestOutput {
    log: Arc<Mutex<GuestLog>>,
    stream: &'static str,
}

impl GuestOutput {
    /// An output named `stream` ("stdout"/"stderr") writing into `log`.
    pub fn new(log: Arc<Mutex<GuestLog>>, stream: &'static str) -> Self {
        Self { log, stream }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_budget_and_counts_the_rest() {
        let mut log = GuestLog::new(10);
        log.push("stdout", b"hello ");
        log.push("stderr", b"world and more");
        assert_eq!(log.dropped, 10);
        log.push("stdout", b"x");
        assert_eq!(log.dropped, 11);
        assert_eq!(
            log.lines().collect::<Vec<_>>(),
            [("stdout", "hello "), ("stderr", "worl")]
        );
    }
}
