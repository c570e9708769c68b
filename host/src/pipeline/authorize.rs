//! The host's outgoing auth within a delivery (CONTRACT section 14): before
//! each attempt, a signed delivery waits for the clock to be set and a
//! token-based one gets its access token; the attempt then carries the
//! auth headers, and a `401` to a token asks for a new one once.
//!
//! A token is fetched before the destination's throttle is asked (the token
//! endpoint may be the same host, and its slot would be held): one fetch at
//! a time per webhook, the others waiting for it, so N events cost one token
//! request. The token endpoint is a destination like the URL: the guarded
//! resolver refuses private addresses, the throttle admits it, and a failed
//! fetch is a failed attempt, retried on the delivery's schedule.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::parts::Pipeline;
use crate::auth::{Authorizer, clock};
use crate::delivery::{DeliveryError, SendOptions};
use crate::event::Event;
use crate::exchange::{HookRequest, HookResponse};
use crate::hooks::Hook;

/// Whether an attempt may go ahead.
pub(super) enum Ready {
    /// Send it.
    Go,
    /// It failed before it was sent (its token could not be had): a
    /// failed attempt.
    Failed(DeliveryError),
    /// The webhook was retired while waiting: this hook-error ends it.
    Retired(String),
}

/// What one authorized attempt sent and got.
pub(super) struct Sent {
    /// The destination's answer, or why there was none.
    pub result: Result<HookResponse, DeliveryError>,
    /// The `Authorization` it carried, when that was an access token.
    pub token: Option<String>,
}

impl Pipeline {
    /// Readies the auth of `hook` for an attempt: waits for the clock when
    /// its requests are signed, and fetches a token when one is needed.
    /// `None` at shutdown.
    pub(super) async fn ready_auth(&self, hook: &Hook, event: &Event) -> Option<Ready> {
        if hook.send.needs_clock() {
            while !clock::is_set() {
                if let Some(retired) = self.wait(hook, clock::POLL).await? {
                    return Some(Ready::Retired(retired));
                }
            }
        }
        let Some(auth) = &hook.send.auth else {
            return Some(Ready::Go);
        };
        if !auth.needs_token() {
            return Some(Ready::Go);
        }
        let _turn = tokio::select! {
            turn = auth.fetch_turn() => turn,
            () = self.shutdown.cancelled() => return None,
        };
        if !auth.needs_token() {
            return Some(Ready::Go);
        }
        Some(match Box::pin(self.fetch_token(auth, event)).await? {
            Ok(()) => Ready::Go,
            Err(e) => Ready::Failed(e),
        })
    }

    /// Asks the token endpoint of `auth` for a token and caches it.
    /// `None` at shutdown.
    async fn fetch_token(
        &self,
        auth: &Authorizer,
        event: &Event,
    ) -> Option<Result<(), DeliveryError>> {
        let Some(endpoint) = auth.token_endpoint() else {
            return Some(Ok(()));
        };
        let host = endpoint.host_str().unwrap_or_default().to_owned();
        let failed = |reason: String| DeliveryError::Token {
            host: host.clone(),
            reason,
        };
        let request = match auth.token_request(SystemTime::now()) {
            Ok(Some(request)) => request,
            Ok(None) => return Some(Ok(())),
            Err(e) => return Some(Err(failed(e.to_string()))),
        };
        let admitted = tokio::select! {
            admitted = self.throttle.admit(&host, event.device.as_str()) => admitted,
            () = self.shutdown.cancelled() => return None,
        };
        let Ok(slot) = admitted else {
            return Some(Err(failed("the token endpoint is sleeping".into())));
        };
        let result = {
            let _slot = self.slot().await?;
            let no_auth = SendOptions::default();
            Box::pin(self.sender.send(&request, &event.id, &no_auth)).await
        };
        drop(slot);
        let accepted = match result {
            Ok(response) => {
                self.throttle.record(&host, response.status < 400, None);
                auth.accept(&response).map_err(|e| failed(e.to_string()))
            }
            Err(DeliveryError::Refused(refused)) => Err(DeliveryError::Refused(refused)),
            Err(e) => {
                self.throttle.record(&host, false, None);
                Err(failed(e.to_string()))
            }
        };
        let counter = match accepted {
            Ok(()) => &self.stats.tokens_fetched,
            Err(_) => &self.stats.token_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Some(accepted)
    }

    /// Sends `request` for `hook`, with its auth headers when it has an
    /// `auth`.
    pub(super) async fn send_authorized(
        &self,
        hook: &Hook,
        event: &Event,
        request: &HookRequest,
        traceparent: Option<String>,
    ) -> Sent {
        let (mut headers, token) = match &hook.send.auth {
            None => (Vec::new(), None),
            Some(auth) => match auth.headers(request, SystemTime::now()) {
                Ok(headers) => {
                    let token = auth
                        .uses_token()
                        .then(|| headers.first().map(|(_, v)| v.clone()))
                        .flatten();
                    (headers, token)
                }
                Err(e) => {
                    return Sent {
                        result: Err(DeliveryError::Token {
                            host: request.url.host_str().unwrap_or_default().to_owned(),
                            reason: e.to_string(),
                        }),
                        token: None,
                    };
                }
            },
        };
        if let Some(traceparent) = traceparent {
            headers.push(("traceparent", traceparent));
        }
        // Boxed by the caller, with this.
        let result = self
            .sender
            .send_with_auth(request, &event.id, &hook.send, &headers)
            .await;
        Sent { result, token }
    }
}
