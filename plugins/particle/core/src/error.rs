//! The two ways a webhook fails: its definition is wrong (found once, when
//! it is read), or one of its templates cannot be rendered into a valid
//! request or reply for a given event.

/// A webhook definition that cannot be used, naming the field at fault
/// (`json.coordinates.lat`, `headers.X-Sender`, `requestType`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {reason}")]
pub struct DefinitionError {
    /// The field (with its path inside objects); empty when the whole
    /// document is at fault.
    pub field: String,
    /// What is wrong and, where it helps, what to do.
    pub reason: String,
}

impl DefinitionError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A template that rendered into something unusable for this event (JSON
/// that does not parse, a header name with spaces, an empty topic…).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {reason}")]
pub struct RenderError {
    field: String,
    reason: String,
}

impl RenderError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A template of `field` that went over a rendering limit.
    pub(crate) fn limit(field: impl Into<String>, limit: crate::template::RenderLimit) -> Self {
        Self::new(field, limit.to_string())
    }

    /// The field whose template failed, e.g. `json` or `headers.X-Sender`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why the rendered text cannot be used.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}
