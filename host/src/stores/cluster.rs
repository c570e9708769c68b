//! The cluster's shared stores as the API reports them: [`Cluster`], for
//! `/healthz` and `/metrics`.

/// The shared consumer's numbers, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Events in the stream not yet handed to any host.
    pub pending: u64,
    /// Events handed to a host and not yet acknowledged.
    pub ack_pending: u64,
    /// Events handed out more than once and not yet acknowledged.
    pub redelivered: u64,
}

/// The stores every host of a cluster shares, as seen from this host.
#[async_trait::async_trait]
pub trait Cluster: std::fmt::Debug + Send + Sync {
    /// Whether this host reaches them now.
    fn is_connected(&self) -> bool;

    /// The shared consumer's numbers; `None` when the cluster does not
    /// answer.
    async fn backlog(&self) -> Option<Backlog>;
}
