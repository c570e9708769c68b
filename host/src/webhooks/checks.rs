//! The checks every dialect makes of its definitions' common fields: an
//! http(s) URL, custom headers, free text, each bounded.

use std::collections::BTreeMap;

use super::error::WebhookError;

/// Checks `url`: an absolute http(s) URL of at most [`MAX_URL_LEN`] bytes.
pub fn http_url(url: &str) -> Result<(), WebhookError> {
    let invalid = |reason: String| WebhookError::Field {
        field: "url",
        reason,
    };
    if url.len() > MAX_URL_LEN {
        return Err(invalid(format!("longer than {MAX_URL_LEN} bytes")));
    }
    // Shown as the views show it: it may hold credentials.
    let shown = || crate::secrets::url(url);
    let parsed =
        url::Url::parse(url).map_err(|e| invalid(format!("{:?} is not a URL: {e}", shown())))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(format!("{:?} is not an http(s) URL", shown())));
    }
    Ok(())
}

/// Checks custom request headers: valid HTTP names and values, each at
/// most [`MAX_HEADER_LEN`] bytes.
pub fn headers(headers: &BTreeMap<String, String>) -> Result<(), WebhookError> {
    let invalid = |reason: String| WebhookError::Field {
        field: "headers",
        reason,
    };
    for (name, value) in headers {
        if name.len() + value.len() > MAX_HEADER_LEN {
            return Err(invalid(format!(
                "{name:?} is longer than {MAX_HEADER_LEN} bytes"
            )));
        }
        http::HeaderName::try_from(name.as_str())
            .map_err(|_| invalid(format!("{name:?} is not a header name")))?;
        http::HeaderValue::try_from(value.as_str())
            .map_err(|_| invalid(format!("the value of {name:?} is not a header value")))?;
    }
    Ok(())
}

/// Checks a free-text field against [`MAX_TEXT_LEN`].
pub fn text(field: &'static str, value: &str) -> Result<(), WebhookError> {
    if value.len() > MAX_TEXT_LEN {
        return Err(WebhookError::Field {
            field,
            reason: format!("longer than {MAX_TEXT_LEN} bytes"),
        });
    }
    Ok(())
}

/// Longest webhook URL taken, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Longest custom header (name and value) taken, in bytes.
pub const MAX_HEADER_LEN: usize = 4096;
/// Longest description, name or channel taken, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
