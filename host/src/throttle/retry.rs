//! Which delivery outcomes are retried, and after how long.
//!
//! Pure: [`classify`] turns one attempt into a [`Verdict`]; a
//! [`RetrySchedule`] says how long to wait before the next retry, honouring
//! the server's `Retry-After` up to [`MAX_RETRY_AFTER`].

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` honoured: a hostile or broken server cannot
/// park an event (or a host) for longer than this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What one attempt came to, as the policy needs to see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt<'a> {
    /// The server answered with this status and, maybe, a `Retry-After` header.
    Status {
        /// The HTTP status code.
        code: u16,
        /// The raw `Retry-After` header value, if any.
        retry_after: Option<&'a str>,
    },
    /// No answer in time.
    Timeout,
    /// The connection failed: refused, reset, closed early, or TLS failed.
    Transport,
    /// Not attempted on purpose: the destination is not allowed, or its
    /// certificate was refused. Retrying cannot help.
    Refused,
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A final answer: 1xx, 2xx or 3xx (redirects are not followed; the 3xx
    /// is handed to the plugin).
    Success,
    /// Try again, not sooner than `not_before` when the server said so.
    Retry {
        /// The server's `Retry-After`, when given and understood.
        not_before: Option<Duration>,
    },
    /// A final failure: retrying cannot help.
    Fail,
}

/// Classifies one attempt. `now` is the clock an HTTP-date `Retry-After`
/// is measured against.
///
/// 408, 425, 429 and 5xx are retried (429 and 503 with their `Retry-After`);
/// other 4xx fail; timeouts and transport errors are retried; refused
/// destinations fail.
pub fn classify(attempt: &Attempt<'_>, now: SystemTime) -> Verdict {
    match *attempt {
        Attempt::Status { code, retry_after } => match code {
            100..=399 => Verdict::Success,
            429 | 503 => Verdict::Retry {
                not_before: retry_after.and_then(|value| parse_retry_after(value, now)),
            },
            408 | 425 | 500..=599 => Verdict::Retry { not_before: None },
            _ => Verdict::Fail,
        },
        Attempt::Timeout | Attempt::Transport => Verdict::Retry { not_before: None },
        Attempt::Refused => Verdict::Fail,
    }
}

/// A `Retry-After` value: delta-seconds, or an HTTP-date (a date already past
/// means now). `None` when it is neither.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or_default())
}

/// The delays between retries: the first retry waits `delays[0]`, the second
/// `delays[1]`, and so on; then the event is given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    /// Particle's: retried after 30 seconds, then after 1 minute.
    fn default() -> Self {
        Self::new(vec![Duration::from_secs(30), Duration::from_secs(60)])
    }
}

/// Most retries a webhook's own schedule may list (20 attempts in all).
pub const MAX_OWN_RETRIES: usize = 19;

/// Longest a webhook's own schedule may wait in all.
pub const MAX_OWN_TOTAL: Duration = Duration::from_secs(24 * 3600);

impl RetrySchedule {
    /// A webhook's own schedule (`retry.schedule`): delays such as `30s`,
    /// at most [`MAX_OWN_RETRIES`] of them and [`MAX_OWN_TOTAL`] in all;
    /// what is wrong with it otherwise.
    pub fn own<'a>(items: impl ExactSizeIterator<Item = Option<&'a str>>) -> Result<Self, String> {
        if items.len() > MAX_OWN_RETRIES {
            return Err(format!(
                "{} delays: at most {MAX_OWN_RETRIES} (20 attempts in all)",
                items.len()
            ));
        }
        let delays = items
            .map(|item| {
                let text = item.ok_or("a delay is a text such as \"30s\"")?;
                humantime::parse_duration(text)
                    .map_err(|e| format!("{text:?} is not a delay such as \"30s\" ({e})"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let total: Duration = delays.iter().sum();
        if total > MAX_OWN_TOTAL {
            return Err(format!(
                "the delays add up to {}: at most 24h",
                humantime::format_duration(total)
            ));
        }
        Ok(Self::new(delays))
    }

    /// A schedule of these delays; empty means never retry.
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// The delays, first retry first.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// How long to wait before the next retry, after `retries_done` retries:
    /// `None` when they are used up; otherwise the scheduled delay, or the
    /// server's `not_before` when longer (capped at [`MAX_RETRY_AFTER`]).
    pub fn delay(&self, retries_done: usize, not_before: Option<Duration>) -> Option<Duration> {
        let scheduled = *self.delays.get(retries_done)?;
        let asked = not_before.unwrap_or_default().min(MAX_RETRY_AFTER);
        Some(scheduled.max(asked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn status(code: u16, retry_after: Option<&str>) -> Verdict {
        classify(&Attempt::Status { code, retry_after }, now())
    }

    const RETRY: Verdict = Verdict::Retry { not_before: None };

    #[test]
    fn final_answers_succeed_and_redirects_are_not_retried() {
        for code in [100, 200, 201, 204, 299, 301, 302, 304, 307, 399] {
            assert_eq!(status(code, None), Verdict::Success, "{code}");
        }
    }

    #[test]
    fn transient_statuses_retry() {
        for code in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert_eq!(status(code, None), RETRY, "{code}");
        }
    }

    #[test]
    fn other_client_errors_fail() {
        for code in [400, 401, 403, 404, 409, 410, 413, 422, 499] {
            assert_eq!(status(code, None), Verdict::Fail, "{code}");
        }
    }

    #[test]
    fn timeouts_and_transport_errors_retry_and_refusals_fail() {
        assert_eq!(classify(&Attempt::Timeout, now()), RETRY);
        assert_eq!(classify(&Attempt::Transport, now()), RETRY);
        assert_eq!(classify(&Attempt::Refused, now()), Verdict::Fail);
    }

    #[test]
    fn retry_after_seconds_is_honoured_on_429_and_503_only() {
        let after = |s| Verdict::Retry {
            not_before: Some(Duration::from_secs(s)),
        };
        assert_eq!(status(429, Some("120")), after(120));
        assert_eq!(status(503, Some(" 7 ")), after(7));
        assert_eq!(status(500, Some("120")), RETRY);
        assert_eq!(status(408, Some("120")), RETRY);
    }

    #[test]
    fn retry_after_http_date_is_relative_to_now() {
        let later = httpdate::fmt_http_date(now() + Duration::from_secs(90));
        assert_eq!(
            status(503, Some(&later)),
            Verdict::Retry {
                not_before: Some(Duration::from_secs(90))
            }
        );
        let past = httpdate::fmt_http_date(now() - Duration::from_secs(90));
        assert_eq!(
            status(429, Some(&past)),
            Verdict::Retry {
                not_before: Some(Duration::ZERO)
            }
        );
    }

    #[test]
    fn unparsable_retry_after_is_ignored() {
        for bad in ["", "soon", "-5", "1.5", "Someday, 99 Foo 2024"] {
            assert_eq!(status(429, Some(bad)), RETRY, "{bad:?}");
        }
    }

    #[test]
    fn schedule_runs_out() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.delay(0, None), Some(Duration::from_secs(30)));
        assert_eq!(schedule.delay(1, None), Some(Duration::from_secs(60)));
        assert_eq!(schedule.delay(2, None), None);
        assert_eq!(RetrySchedule::new(Vec::new()).delay(0, None), None);
    }

    #[test]
    fn schedule_takes_the_longer_of_its_delay_and_retry_after_capped() {
        let schedule = RetrySchedule::new(vec![Duration::from_secs(30)]);
        let secs = Duration::from_secs;
        assert_eq!(schedule.delay(0, Some(secs(5))), Some(secs(30)));
        assert_eq!(schedule.delay(0, Some(secs(300))), Some(secs(300)));
        assert_eq!(schedule.delay(0, Some(secs(86_400))), Some(MAX_RETRY_AFTER));
        assert_eq!(schedule.delay(1, Some(secs(300))), None);
    }
}
