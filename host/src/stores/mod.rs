//! The storage seam: what the host keeps where either this host's own
//! files or a store every host of a cluster shares (NATS JetStream,
//! `nats`) may hold it, chosen once at start-up by the wiring
//! (`server/cluster.rs`). A stage holds the trait object and never knows
//! which.
//!
//! - [`Records`]: JSON records by id (the webhooks of each dialect, the
//!   registry's groups and devices), with the changes other hosts make.
//! - [`Flags`]: what failures decided about a webhook, seen by every host
//!   (auto-disable).
//!
//! - [`Claim`]: this host's claim on an event stored elsewhere (the
//!   cluster's stream) while its webhooks deliver it; the queue's
//!   `Ticket` gives it up when the last one is done, as it
//!   removes an event stored here.
//!
//! - [`Cluster`]: whether the shared stores answer, and their backlog.
//!
//! - [`PluginFiles`]: the plugin files installed over the API.
//!
//! - [`KeyValue`]: the plugins' key-value buckets.
//!
//! - [`History`]: every delivery attempt, with its event, for the
//!   history, the dead letters and replays (each host its own).

pub mod claims;
pub mod cluster;
pub mod flags;
pub mod history;
pub mod history_file;
pub mod kv;
pub mod kv_file;
pub mod plugin_files;
pub mod records;

pub use claims::Claim;
pub use cluster::{Backlog, Cluster};
pub use flags::{Flags, Unshared};
pub use history::History;
pub use history_file::HistoryFile;
pub use kv::KeyValue;
pub use kv_file::KvFile;
pub use plugin_files::PluginFiles;
pub use records::{JsonFiles, Record, RecordChange, Records};
