//! What failures decided about a webhook, for every host: [`Flags`], and
//! [`Unshared`] for one host, where each webhook's own streak of failures
//! is all there is.

/// The auto-disable of webhooks, as every host sees it.
#[async_trait::async_trait]
pub trait Flags: std::fmt::Debug + Send + Sync {
    /// Webhook `name` was disabled here, for `reason`: every host
    /// disables it. Never waits: what cannot be shared is logged.
    fn disabled(&self, name: &str, reason: &str);

    /// Webhook `name` has a new definition: a new run of failures starts
    /// on every host.
    async fn renewed(&self, name: &str) -> std::io::Result<()>;
}

/// One host's flags: nothing to share.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unshared;

#[async_trait::async_trait]
impl Flags for Unshared {
    fn disabled(&self, _name: &str, _reason: &str) {}

    async fn renewed(&self, _name: &str) -> std::io::Result<()> {
        Ok(())
    }
}
