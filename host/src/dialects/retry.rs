//! A webhook's own retry schedule in a dialect's definition:
//! `"retry": {"schedule": ["30s", "1m", "5m"]}` — the delays before each
//! retry, in place of the host's `retry_delays` (checked by
//! [`RetrySchedule::own`]).

use serde_json::Value;

use crate::throttle::RetrySchedule;
use crate::webhooks::WebhookError;

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
    RetrySchedule::own(items.iter().map(Value::as_str))
        .map(Some)
        .map_err(invalid)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        assert!(err(json!({"schedule": [30]})).contains("a text"));
        assert!(err(json!({"schedule": ["23h", "2h"]})).contains("at most 24h"));
        assert!(err(json!({"schedule": vec!["1s"; 20]})).contains("at most 19"));
        assert!(err(json!({"delays": []})).contains("unknown field `delays`"));
    }
}
