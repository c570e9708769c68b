//! The connection settings a broker URL names (host, port, TLS, login),
//! whichever MQTT version is spoken.

use std::sync::Arc;

use super::ExternalOptions;
use super::client::Connect;
use crate::ingress::IngressError;
use crate::secrets;

/// The connection settings `url` names, whichever the version.
pub(super) fn connect_options(opts: &ExternalOptions, url: &str) -> Result<Connect, IngressError> {
    let bad = |reason: String| IngressError::BadUrl {
        url: secrets::url(url).into_owned(),
        reason,
    };
    let url = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let tls = match url.scheme() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        other => return Err(bad(format!("scheme {other:?} is not mqtt:// or mqtts://"))),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host".into()))?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(s.as_bytes())
            .map(|(k, _)| k.into_owned())
            .collect::<String>()
    };
    let credentials = (!url.username().is_empty()).then(|| {
        (
            decode(url.username()),
            decode(url.password().unwrap_or_default()),
        )
    });
    let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
    let tls = match tls {
        true => Some(Arc::new(
            crate::tls::client_config(opts.ca_file.as_deref()).map_err(|e| bad(e.to_string()))?,
        )),
        false => None,
    };
    Ok(Connect {
        host: host.to_owned(),
        port,
        client_id: opts.client_id.clone(),
        clean_session: false,
        credentials,
        tls,
        max_packet_bytes: opts.max_event_bytes + (64 << 10),
    })
}
