//! Which destination addresses a webhook may reach.
//!
//! Pure: classifies IP addresses. Loopback, private, link-local (the cloud
//! metadata service lives there), carrier-grade NAT, unspecified, multicast,
//! benchmarking, IETF-reserved and documentation ranges are not the public
//! internet; a webhook reaches them only with `--allow-private-networks`.
//! IPv6 addresses that carry an IPv4 address (IPv4-mapped, NAT64, 6to4) are
//! judged by the IPv4 address they lead to, so `64:ff9b::7f00:1` is as
//! loopback as `127.0.0.1` on a network with a NAT64 gateway;
//! IPv4-compatible and site-local addresses, both deprecated, are refused.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not public: the range it is in, and, when the
/// refused address is an IPv4 address carried in an IPv6 one, which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonPublic {
    /// The range (`loopback`, `private`, …).
    pub range: &'static str,
    /// The carrying IPv6 range (`NAT64`, `6to4`) and the IPv4 address it
    /// leads to, the one in `range`.
    pub embedded: Option<(&'static str, Ipv4Addr)>,
}

impl fmt::Display for NonPublic {
    /// Reads after "a" and before "address": "a {self} address".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            None => f.write_str(self.range),
            Some((via, v4)) => write!(f, "{via} address of {v4}, a {}", self.range),
        }
    }
}

/// Why an address is not public, or `None` when it is.
pub fn non_public_reason(ip: IpAddr) -> Option<NonPublic> {
    let plain = |range| NonPublic {
        range,
        embedded: None,
    };
    match ip {
        IpAddr::V4(v4) => v4_reason(v4).map(plain),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_reason(v4).map(plain),
            None => v6_reason(v6),
        },
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local (cloud metadata)"
    } else if a == 100 && (64..128).contains(&b) {
        "carrier-grade NAT"
    } else if ip.is_unspecified() || a == 0 {
        "unspecified"
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        "multicast or reserved"
    } else if ip.is_documentation() {
        "documentation"
    } else if a == 198 && (b == 18 || b == 19) {
        "benchmarking"
    } else if (a, b, c) == (192, 0, 0) {
        "IETF protocol assignments"
    } else {
        return None;
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<NonPublic> {
    let s = ip.segments();
    let plain = |range| {
        Some(NonPublic {
            range,
            embedded: None,
        })
    };
    if let Some(embedded) = embedded_v4(ip) {
        return v4_reason(embedded.1).map(|range| NonPublic {
            range,
            embedded: Some(embedded),
        });
    }
    if ip.is_loopback() {
        plain("loopback")
    } else if ip.is_unspecified() {
        plain("unspecified")
    } else if s[..6] == [0; 6] {
        plain("IPv4-compatible (deprecated)")
    } else if ip.is_unique_local() {
        plain("private")
    } else if ip.is_unicast_link_local() {
        plain("link-local")
    } else if s[0] & 0xffc0 == 0xfec0 {
        plain("site-local (deprecated)")
    } else if ip.is_multicast() {
        plain("multicast")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        plain("documentation")
    } else {
        None
    }
}

/// The IPv4 address a NAT64 (`64:ff9b::/96`, RFC 6052) or 6to4
/// (`2002::/16`, RFC 3056) address leads to. In the local-use NAT64 prefix
/// (`64:ff9b:1::/48`, RFC 8215) the operator picks the prefix length, so
/// the address is judged by the first refused one of the RFC 6052 layouts
/// that fit (/96, /64, /56, /48); a layout that yields `0.0.0.0/8` is only
/// counted for /96, because no gateway translates to that range and every
/// /96 address would otherwise read as `0.0.0.0` in the shorter layouts.
fn embedded_v4(ip: Ipv6Addr) -> Option<(&'static str, Ipv4Addr)> {
    let s = ip.segments();
    let o = ip.octets();
    let v4 = |a: u8, b: u8, c: u8, d: u8| Ipv4Addr::new(a, b, c, d);
    let last = v4(o[12], o[13], o[14], o[15]);
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(("NAT64", last));
    }
    if s[..3] == [0x64, 0xff9b, 1] {
        let shorter = [
            v4(o[9], o[10], o[11], o[12]),
            v4(o[7], o[9], o[10], o[11]),
            v4(o[6], o[7], o[9], o[10]),
        ];
        let refused = shorter
            .into_iter()
            .filter(|a| a.octets()[0] != 0)
            .find(|&a| v4_reason(a).is_some());
        return Some(("NAT64", refused.unwrap_or(last)));
    }
    if s[0] == 0x2002 {
        return Some(("6to4", v4(o[2], o[3], o[4], o[5])));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> Option<String> {
        non_public_reason(s.parse().unwrap()).map(|r| r.to_string())
    }

    fn check(cases: &[(&str, Option<&str>)]) {
        for &(ip, why) in cases {
            assert_eq!(reason(ip).as_deref(), why, "{ip}");
        }
    }

    #[test]
    fn refuses_everything_that_is_not_the_public_internet() {
        check(&[
            ("127.0.0.1", Some("loopback")),
            ("127.8.9.10", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local (cloud metadata)")),
            ("0.0.0.0", Some("unspecified")),
            ("224.0.0.1", Some("multicast or reserved")),
            ("255.255.255.255", Some("multicast or reserved")),
            ("::1", Some("loopback")),
            ("fd00::1", Some("private")),
            ("fe80::1", Some("link-local")),
            ("::", Some("unspecified")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.0.0.1", Some("private")),
        ]);
    }

    #[test]
    fn lets_public_addresses_through() {
        check(&[
            ("1.1.1.1", None),
            ("8.8.8.8", None),
            ("172.32.0.1", None),
            ("2606:4700::1111", None),
            ("::ffff:8.8.8.8", None),
        ]);
    }

    /// The ranges of issue 23, each at both edges, inside and just outside.
    #[test]
    fn new_ranges_are_refused_up_to_their_edges() {
        check(&[
            ("100.63.255.255", None),
            ("100.64.0.0", Some("carrier-grade NAT")),
            ("100.127.255.255", Some("carrier-grade NAT")),
            ("100.128.0.0", None),
            ("198.17.255.255", None),
            ("198.18.0.0", Some("benchmarking")),
            ("198.19.255.255", Some("benchmarking")),
            ("198.20.0.0", None),
            ("191.255.255.255", None),
            ("192.0.0.0", Some("IETF protocol assignments")),
            ("192.0.0.255", Some("IETF protocol assignments")),
            ("192.0.1.0", None),
            // fe80::/10 (link-local) ends where fec0::/10 begins, and
            // multicast right after it.
            (
                "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("link-local"),
            ),
            ("fec0::", Some("site-local (deprecated)")),
            (
                "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("site-local (deprecated)"),
            ),
            ("ff00::", Some("multicast")),
            // ::/96 below its two special addresses, ::ffff:0:0/96 (mapped)
            // above it; the rest of ::/8 is not refused.
            ("::0.0.0.2", Some("IPv4-compatible (deprecated)")),
            ("::8.8.8.8", Some("IPv4-compatible (deprecated)")),
            ("::255.255.255.255", Some("IPv4-compatible (deprecated)")),
            ("::1:0:0", None),
            ("::1:0:0:0", None),
        ]);
    }

    /// NAT64 and 6to4 addresses are judged by the IPv4 address inside:
    /// refused when it is, public when it is, and only inside the prefix.
    #[test]
    fn embedded_ipv4_addresses_are_judged_as_ipv4() {
        check(&[
            (
                "64:ff9b::127.0.0.1",
                Some("NAT64 address of 127.0.0.1, a loopback"),
            ),
            (
                "64:ff9b::10.0.0.1",
                Some("NAT64 address of 10.0.0.1, a private"),
            ),
            (
                "64:ff9b::169.254.169.254",
                Some("NAT64 address of 169.254.169.254, a link-local (cloud metadata)"),
            ),
            ("64:ff9b::", Some("NAT64 address of 0.0.0.0, a unspecified")),
            (
                "64:ff9b::198.18.0.1",
                Some("NAT64 address of 198.18.0.1, a benchmarking"),
            ),
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9a:ffff:ffff:ffff:ffff:7f00:1", None),
            ("64:ff9b::1:7f00:1", None),
            // 64:ff9b:1::/48, /96 layout: the last four octets.
            (
                "64:ff9b:1::192.168.0.1",
                Some("NAT64 address of 192.168.0.1, a private"),
            ),
            (
                "64:ff9b:1:abcd::127.0.0.1",
                Some("NAT64 address of 127.0.0.1, a loopback"),
            ),
            ("64:ff9b:1::8.8.8.8", None),
            ("64:ff9b:1:abcd::1.1.1.1", None),
            // /64 layout: octets 9-12.
            (
                "64:ff9b:1:0:7f:0:100:0",
                Some("NAT64 address of 127.0.0.1, a loopback"),
            ),
            // /56 layout: octets 7 and 9-11.
            (
                "64:ff9b:1:c0:a8:101::",
                Some("NAT64 address of 192.168.1.1, a private"),
            ),
            // /48 layout: octets 6-7 and 9-10.
            (
                "64:ff9b:1:a01:2:300::",
                Some("NAT64 address of 10.1.2.3, a private"),
            ),
            ("64:ff9b:0:ffff:ffff:ffff:ffff:ffff", None),
            ("64:ff9b:2::7f00:1", None),
            // 6to4: octets 2-5.
            (
                "2002:7f00:1::",
                Some("6to4 address of 127.0.0.1, a loopback"),
            ),
            (
                "2002:a9fe:a9fe::1",
                Some("6to4 address of 169.254.169.254, a link-local (cloud metadata)"),
            ),
            (
                "2002:6440::",
                Some("6to4 address of 100.64.0.0, a carrier-grade NAT"),
            ),
            (
                "2002:c000:ff::",
                Some("6to4 address of 192.0.0.255, a IETF protocol assignments"),
            ),
            ("2002:808:808::1", None),
            ("2001:ffff:7f00:1::", None),
            ("2003:7f00:1::", None),
        ]);
    }
}
