//! Where a webhook's requests go, and the rule that a kept secret follows it
//! (README "HTTP API", its paragraph "A kept secret follows its destination"):
//! a `PUT` that sends a secret back masked keeps the stored one only while the
//! destination — the URL's scheme, host and port — is the same; otherwise the
//! client must send the secret again.
//!
//! A URL is compared as the URL parser reads it: scheme and host name in
//! lower case, IP literals normalised, the scheme's default port the same
//! whether written or not (`https://h` is `https://H:443/x`). A URL
//! template is compared on what it fixes: when nothing up to the end of its
//! authority is a template (`https://api.example.com/{{path}}`), it is read
//! like a URL. When the scheme, user information, host or port holds a
//! template (`https://{{host}}/`, `https://{{{user}}}@h/`), what an event
//! renders there can move the request anywhere, so that part is compared
//! as written, character for character: any edit of it, and any change
//! between a written and a templated host, is a new destination.

use std::fmt;

/// The scheme, host and port that a URL or URL template sends requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The URL parser's reading of a URL whose authority is written out.
    Fixed {
        /// Lower case.
        scheme: String,
        /// Lower case, IP literals normalised (IPv6 in brackets).
        host: String,
        /// The written port, or the scheme's default; `None` for a scheme
        /// without one.
        port: Option<u16>,
    },
    /// Everything up to the end of the authority, as written: it holds a
    /// template, or is not a URL the parser reads.
    AsWritten(String),
}

impl Destination {
    /// The destination of `url`, a URL or a URL template.
    pub fn of(url: &str) -> Self {
        let up_to_authority = &url[..super::authority_span(url).end];
        if !up_to_authority.contains("{{")
            && let Ok(parsed) = url::Url::parse(up_to_authority)
            && let Some(host) = parsed.host_str()
        {
            return Self::Fixed {
                scheme: parsed.scheme().to_owned(),
                host: host.to_owned(),
                port: parsed.port_or_known_default(),
            };
        }
        Self::AsWritten(up_to_authority.to_owned())
    }
}

/// Shown in errors: `scheme://host:port`, or the part compared as written
/// with its credentials masked.
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed { scheme, host, port } => {
                write!(f, "{scheme}://{host}")?;
                match port {
                    Some(port) => write!(f, ":{port}"),
                    None => Ok(()),
                }
            }
            Self::AsWritten(text) => f.write_str(&super::url(text)),
        }
    }
}

/// Secrets sent back masked for a destination other than the one they
/// were given for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{}`: send the secret again: the destination changed (from {from} to {to})",
    fields.join("`, `")
)]
pub struct Moved {
    /// Where the secrets were sent back masked (`auth.password`,
    /// `headers.X-Api-Key`).
    pub fields: Vec<String>,
    /// Where they were for.
    pub from: Destination,
    /// Where the new definition sends them.
    pub to: Destination,
}

/// Whether the secrets `kept` from the definition whose URL was `old_url`
/// may stay in one whose URL is `new_url`: only when both go to the same
/// [`Destination`].
pub fn kept_for(kept: Vec<String>, old_url: &str, new_url: &str) -> Result<(), Box<Moved>> {
    if kept.is_empty() {
        return Ok(());
    }
    let (from, to) = (Destination::of(old_url), Destination::of(new_url));
    if from == to {
        Ok(())
    } else {
        Err(Box::new(Moved {
            fields: kept,
            from,
            to,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        Destination::of(a) == Destination::of(b)
    }

    #[test]
    fn scheme_host_and_port_decide_with_default_ports_normalised() {
        assert!(same(
            "https://api.example.com/a",
            "HTTPS://API.example.com:443/b?x=1"
        ));
        assert!(same("http://127.0.0.1:80/", "http://127.0.0.1"));
        assert!(same("https://u:pw@h.test/", "https://other:***@h.test/x"));
        assert!(same("http://[::1]:8080/a", "http://[0:0::1]:8080/b"));
        assert!(!same("https://h.test/", "http://h.test/"));
        assert!(!same("https://h.test/", "https://h.test:8443/"));
        assert!(!same("https://h.test/", "https://evil.test/"));
        assert!(!same("http://127.0.0.1:1/", "http://127.0.0.1:2/"));
        // What the parser reads as the host, whatever the text looks like.
        assert!(!same("https://h.test/", "https://h.test\t@evil.test/"));
        assert!(same("https://h.test/", "https://h.test\\@evil.test/"));
        assert!(same("https://h.test/", "https:\\\\h.test\\in"));
    }

    #[test]
    fn templates_compare_their_authority_as_written() {
        assert!(same(
            "https://h.test/{{a}}",
            "https://h.test:443/{{b}}?t={{T}}"
        ));
        assert!(same(
            "https://u:{{{PW}}}@h.test/a",
            "https://u:{{{PW}}}@h.test/b"
        ));
        assert!(same("https://{{host}}/a", "https://{{host}}/b"));
        assert!(!same("https://{{host}}/", "https://{{Host}}/"));
        assert!(!same("https://h.test/", "https://{{host}}/"));
        assert!(!same("https://h.test/", "https://{{{user}}}@h.test/"));
        assert!(!same("https://h.test/", "https://h.test{{port}}/"));
    }

    #[test]
    fn only_kept_secrets_need_the_same_destination() {
        assert_eq!(
            kept_for(Vec::new(), "https://a.test/", "https://b.test/"),
            Ok(())
        );
        let kept = || vec!["auth.password".to_owned()];
        assert_eq!(
            kept_for(kept(), "https://a.test/x", "https://a.test/y"),
            Ok(())
        );
        let moved = kept_for(
            vec!["auth.password".to_owned(), "headers.X-Api-Key".to_owned()],
            "https://a.test/",
            "https://u:{{{PW}}}@{{h}}/",
        )
        .unwrap_err();
        assert_eq!(
            moved.to_string(),
            "`auth.password`, `headers.X-Api-Key`: send the secret again: the destination \
             changed (from https://a.test:443 to https://u:***@{{h}})"
        );
    }
}
