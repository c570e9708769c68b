//! Where a webhook may send its requests: the allowed hosts of a plugin's
//! manifest, as patterns.

/// An allowed outbound host: exact (`api.example.com`), all subdomains
/// (`*.example.com`), or any host (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Any host.
    Any,
    /// Exactly this host (lowercase).
    Exact(String),
    /// Any subdomain of this suffix (lowercase, without the `*.`).
    Subdomains(String),
}

impl HostPattern {
    /// Parses `api.example.com`, `*.example.com` or `*`; the error says
    /// what is wrong with `s`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        if lower == "*" {
            return Ok(Self::Any);
        }
        let (pattern, name) = match lower.strip_prefix("*.") {
            Some(rest) => (Self::Subdomains(rest.to_owned()), rest),
            None => (Self::Exact(lower.clone()), lower.as_str()),
        };
        if name.is_empty() || name.contains(['*', '/', ':', ' ']) {
            return Err(format!(
                "{s:?} is not a host name, \"*.domain\" or \"*\" (no scheme, port or path)"
            ));
        }
        Ok(pattern)
    }

    /// Whether `host` (a URL's host, IPv6 possibly in brackets) matches.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match self {
            Self::Any => true,
            Self::Exact(h) => host.eq_ignore_ascii_case(h),
            // Bytes, not `str` slices: `host` may hold non-ASCII text, and
            // a cut inside a character would panic.
            Self::Subdomains(suffix) => host
                .len()
                .checked_sub(suffix.len() + 1)
                .filter(|&dot| dot > 0)
                .is_some_and(|dot| {
                    let host = host.as_bytes();
                    host[dot] == b'.' && host[dot + 1..].eq_ignore_ascii_case(suffix.as_bytes())
                }),
        }
    }
}
