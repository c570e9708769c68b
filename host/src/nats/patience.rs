//! Trying a JetStream write again while the cluster elects a leader or
//! learns of a stream just made.

use std::time::Duration;

/// How long a write JetStream does not take is tried again before it
/// fails: a node's death makes a leader's election, and a stream or
/// bucket just created is not yet known to every server (its subjects
/// have no responders there), each for seconds.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// What `write` (or a read that may be tried again) gives once it
/// succeeds, or its error when `lasting` says trying again will not help or
/// when [`PATIENCE`] has passed.
pub async fn patiently<T, E, F, W>(mut write: W, lasting: impl Fn(&E) -> bool) -> Result<T, E>
where
    W: FnMut() -> F,
    F: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut backoff = Duration::from_millis(100);
    loop {
        match write().await {
            Err(err) if !lasting(&err) && tokio::time::Instant::now() + backoff < deadline => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            done => return done,
        }
    }
}
