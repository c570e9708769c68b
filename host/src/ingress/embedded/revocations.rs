//! Closing the sessions of devices whose key stopped working (rotated or
//! removed in the registry).

use rmqtt::context::ServerContext;
use rmqtt::types::Id;

/// Closes the sessions of devices whose key stopped working.
pub(super) async fn close_revoked_sessions(
    scx: ServerContext,
    mut revoked: tokio::sync::broadcast::Receiver<String>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let device = match revoked.recv().await {
            Ok(device) => device,
            Err(RecvError::Lagged(n)) => {
                tracing::error!("{n} key rotations came too fast to close their sessions");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let shared = scx.extends.shared().await;
        let ids: Vec<Id> = shared
            .iter()
            .map(|entry| entry.id())
            .filter(|id| id.username.as_deref() == Some(device.as_str()))
            .collect();
        for id in ids {
            match shared.entry(id.clone()).kick(true, true, true).await {
                Ok(_) => {
                    tracing::info!(client = ?id.client_id, device, "session closed: its key no longer works")
                }
                Err(err) => {
                    tracing::warn!(client = ?id.client_id, device, "cannot close a revoked session: {err}")
                }
            }
        }
    }
}
