//! A webhook's own retry schedule, in any dialect's definition:
//! `"retry": {"schedule": ["30s", "1m", "5m"]}` — the delays before each
//! retry, in place of the host's `retry_delays`. At most
//! [`MAX_RETRIES`] of them and [`MAX_TOTAL`] in all: an event must not
//! outlive what the history and the queue are sized for.

use std::time::Duration;

use serde_json::Value;

use crate::throttle::RetrySchedule;
use crate::webhooks::WebhookError;

/// Most retries a schedule may list (20 attempts in all).
pub const MAX_RETRIES: usize = 19;

/// Longest a schedule may wait in all.
pub const MAX_TOTAL: Duration = Duration::from_secs(24 * 3600);

/// The schedule of a definition's `retry`, when it has one.
pub fn schedule(retry: Option<&Value>) -> Result<Option<RetrySchedule>, WebhookError> {
    let invalid = |why: String| WebhookError::Invalid(format!("`retry`: {why}"));
    let Some(retry) = retry.filter(|r| !r.is_null()) else {
        return Ok(None);
    };
    let Value::Object(fields) = retry else {
        return Err(invalid(
            "an object such as {\"schedule\": [\"30s\", \"1m\"]}".into(),
        ));
    };
    if let Some(other) = fields.keys().find(|k| *k != "schedule") {
        return Err(invalid(format!("unknown field `{other}`; only `schedule`")));
    }
    let Some(Value::Array(items)) = fields.get("schedule") else {
        return Err(invalid(
            "`schedule` is a list of delays such as [\"30s\", \"1m\"]".into(),
        ));
    };
    if items.len() > MAX_RETRIES {
        return Err(invalid(format!(
            "{} delays: at most {MAX_RETRIES} (20 attempts in all)",
            items.len()
        )));
    }
    let delays = items
        .iter()
        .map(|item| {
            let text = item.as_str().unwrap_or_default();
            humantime::parse_duration(text)
                .map_err(|e| invalid(format!("{item} is not a delay such as \"30s\" ({e})")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let total: Duration = delays.iter().sum();
    if total > MAX_TOTAL {
        return Err(invalid(format!(
            "the delays add up to {}: at most 24h",
            humantime::format_duration(total)
        )));
    }
    Ok(Some(RetrySchedule::new(delays)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_schedule_is_checked() {
        let ok = schedule(Some(&json!({"schedule": ["30s", "1m", "5m"]}))).unwrap();
        let ok = ok.unwrap();
        assert_eq!(ok.delay(2, None), Some(Duration::from_secs(300)));
        assert_eq!(ok.delay(3, None), None);
        assert!(schedule(None).unwrap().is_none());
        let err = |v: Value| schedule(Some(&v)).unwrap_err().to_string();
        assert!(err(json!({"schedule": ["soon"]})).contains("\"soon\""));
        assert!(err(json!({"schedule": ["23h", "2h"]})).contains("at most 24h"));
        assert!(err(json!({"schedule": vec!["1s"; 20]})).contains("at most 19"));
        assert!(err(json!({"delays": []})).contains("unknown field `delays`"));
    }
}
