//! Markers: something sent after what must not arrive, so that a test
//! waits for it instead of for a while, and takes what came before it.

use super::Seen;

/// Whether a request is the marker's: a webhook on the event `marker`
/// posting to `/marker` ([`super::TestHost::send_marker`]).
pub fn is_marker(seen: &Seen) -> bool {
    seen.uri.path() == "/marker"
}

/// What `next` gives before the first item `is_marker` accepts (which is
/// dropped).
pub async fn before<T>(mut next: impl AsyncFnMut() -> T, is_marker: impl Fn(&T) -> bool) -> Vec<T> {
    let mut before = Vec::new();
    loop {
        let item = next().await;
        if is_marker(&item) {
            return before;
        }
        before.push(item);
    }
}
