//! Why a plugin call produced nothing usable: [`CallError`], one variant
//! per cause, each of which becomes a `hook-error` for the device and a
//! label of the plugin metrics (README "HTTP API").

use std::sync::Arc;

/// Why a plugin call produced nothing usable. Each names its cause, and
/// becomes a `hook-error` for the device.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The guest trapped (a panic, an out-of-bounds access, ...).
    #[error("plugin {plugin} trapped: {message}")]
    Trap {
        /// The plugin's name.
        plugin: Arc<str>,
        /// The trap, and the last line the guest wrote to stderr if any.
        message: String,
    },
    /// The call ran past its time limit.
    #[error("plugin {plugin} ran past its time limit of {limit_ms} ms")]
    Deadline {
        /// The plugin's name.
        plugin: Arc<str>,
        /// The limit in milliseconds.
        limit_ms: u128,
    },
    /// The guest asked for more memory than its cap.
    #[error("plugin {plugin} exceeded its memory limit of {limit} bytes")]
    Memory {
        /// The plugin's name.
        plugin: Arc<str>,
        /// The cap in bytes.
        limit: usize,
    },
    /// The guest returned something over a size limit or malformed.
    #[error("plugin {plugin} returned an invalid result: {reason}")]
    Invalid {
        /// The plugin's name.
        plugin: Arc<str>,
        /// What is wrong with it, naming the limit.
        reason: String,
    },
    /// The plugin itself returned an error.
    #[error("plugin {plugin}: {message}")]
    Plugin {
        /// The plugin's name.
        plugin: Arc<str>,
        /// The plugin's own message.
        message: String,
    },
    /// The instance could not be created (e.g. its start function failed).
    #[error("plugin {plugin} could not be instantiated: {message}")]
    Instantiate {
        /// The plugin's name.
        plugin: Arc<str>,
        /// Why.
        message: String,
    },
}

impl CallError {
    /// Every [`Self::cause`], in the order metrics list them.
    pub const CAUSES: [&'static str; 6] = [
        "trap",
        "deadline",
        "memory",
        "invalid",
        "plugin",
        "instantiate",
    ];

    /// Whether the sandbox had to stop or refuse the call. The plugin's own
    /// error is a deliberate answer, not a failure: it does not count
    /// towards suspending the plugin.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Plugin { .. })
    }

    /// A short name of the cause, for metrics and the API.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::Trap { .. } => "trap",
            Self::Deadline { .. } => "deadline",
            Self::Memory { .. } => "memory",
            Self::Invalid { .. } => "invalid",
            Self::Plugin { .. } => "plugin",
            Self::Instantiate { .. } => "instantiate",
        }
    }
}
