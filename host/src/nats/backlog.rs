//! What `/healthz` and the metrics learn of the cluster ([`Cluster`]): the
//! connection, and the backlog of the shared consumer.

use std::time::Duration;

use async_nats::jetstream;

use super::{EVENTS_CONSUMER, EVENTS_STREAM, Nats};
use crate::stores::{Backlog, Cluster};

#[async_trait::async_trait]
impl Cluster for Nats {
    fn is_connected(&self) -> bool {
        Nats::is_connected(self)
    }

    /// The shared consumer's numbers: events not yet handed to any host,
    /// handed out and not acknowledged, and handed out again; `None` when
    /// JetStream does not answer.
    async fn backlog(&self) -> Option<Backlog> {
        let ask = async {
            let mut consumer: jetstream::consumer::PullConsumer = self
                .js
                .get_consumer_from_stream(EVENTS_CONSUMER, EVENTS_STREAM)
                .await
                .ok()?;
            let info = consumer.info().await.ok()?;
            Some(Backlog {
                pending: info.num_pending,
                ack_pending: info.num_ack_pending as u64,
                redelivered: info.num_redelivered as u64,
            })
        };
        tokio::time::timeout(Duration::from_secs(2), ask)
            .await
            .ok()
            .flatten()
    }
}
