//! Reading a device event's data.

use crate::{Error, Event, Result};

impl Event {
    /// The data as UTF-8 text.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.data)
            .map_err(|e| Error::new(format!("event data is not UTF-8: {e}")))
    }

    /// The data parsed as JSON into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.data)
            .map_err(|e| Error::new(format!("event data is not the expected JSON: {e}")))
    }
}
