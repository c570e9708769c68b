//! The broker's nodes named by `--mqtt-url` (a comma list): the host
//! connects to the first, and each time a connection fails or drops it
//! turns to the next, round the list, so that a clustered broker's node
//! going away costs one reconnection and not the host's events.

use super::client::{Connect, EventLoop};
use crate::secrets;

/// The nodes, and the one the event loop points at (no `Debug`: a node
/// holds its login).
pub(super) struct Nodes {
    nodes: Vec<(Connect, String)>,
    at: usize,
}

impl Nodes {
    /// `connects`, each with its URL (as given) for the log; the event loop
    /// starts on the first.
    pub(super) fn new(connects: Vec<Connect>, urls: &[String]) -> Self {
        let nodes = connects
            .into_iter()
            .zip(urls.iter().map(|u| secrets::url(u).into_owned()))
            .collect();
        Self { nodes, at: 0 }
    }

    /// After a failed or lost connection: points `eventloop` at the next
    /// node, when there is another.
    pub(super) fn next(&mut self, eventloop: &mut EventLoop) {
        if self.nodes.len() < 2 {
            return;
        }
        self.at = (self.at + 1) % self.nodes.len();
        let (connect, url) = &self.nodes[self.at];
        tracing::info!("MQTT broker: trying the next node, {url}");
        eventloop.point_at(connect);
    }
}
