//! The little of URLs a webhook needs: checking the scheme, finding the
//! host for error messages, appending a query string. The host parses the
//! rendered URL fully before it sends anything.

/// Whether `url` starts with `http://` or `https://` (any case).
pub(crate) fn has_http_scheme(url: &str) -> bool {
    scheme_end(url).is_some()
}

/// The byte offset just after `://` of an `http` or `https` URL.
fn scheme_end(url: &str) -> Option<usize> {
    ["http://", "https://"].iter().find_map(|scheme| {
        url.get(..scheme.len())
            .filter(|start| start.eq_ignore_ascii_case(scheme))
            .map(|_| scheme.len())
    })
}

/// The host of an `http(s)` URL: what lies between `://` and the next `/`,
/// `?` or `#`, without user info and port. `None` if there is none.
pub(crate) fn host(url: &str) -> Option<&str> {
    let rest = &url[scheme_end(url)?..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        // An IPv6 literal keeps its brackets; its colons are not a port.
        &host_port[..host_port.find(']').map_or(host_port.len(), |i| i + 1)]
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    Some(host).filter(|h| !h.is_empty())
}

/// Whether `url` is an absolute `http(s)` URL with a host and no spaces or
/// control characters.
pub(crate) fn is_absolute_http(url: &str) -> bool {
    host(url).is_some() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Appends an encoded query string to `url`, after any query it already
/// has and before its fragment.
pub(crate) fn append_query(url: &mut String, query: &str) {
    if query.is_empty() {
        return;
    }
    let fragment = url.find('#').map(|i| url.split_off(i));
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(query);
    if let Some(fragment) = fragment {
        url.push_str(&fragment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_drops_user_info_port_and_path() {
        assert_eq!(host("https://requestb.in/x?y"), Some("requestb.in"));
        assert_eq!(host("http://u:p@example.com:8080/a"), Some("example.com"));
        assert_eq!(host("HTTPS://Example.com#f"), Some("Example.com"));
        assert_eq!(host("http://[::1]:80/"), Some("[::1]"));
        assert_eq!(host("http:///path"), None);
        assert_eq!(host("ftp://example.com"), None);
    }

    #[test]
    fn absolute_urls() {
        assert!(is_absolute_http("http://host.com"));
        assert!(!is_absolute_http("http://host .com"));
        assert!(!is_absolute_http("host.com/x"));
    }

    #[test]
    fn queries_go_after_the_existing_one_and_before_the_fragment() {
        let mut url = "https://a.test/p".to_owned();
        append_query(&mut url, "x=1");
        assert_eq!(url, "https://a.test/p?x=1");
        let mut url = "https://a.test/p?a=b#top".to_owned();
        append_query(&mut url, "x=1");
        assert_eq!(url, "https://a.test/p?a=b&x=1#top");
        append_query(&mut url, "");
        assert_eq!(url, "https://a.test/p?a=b&x=1#top");
    }
}
