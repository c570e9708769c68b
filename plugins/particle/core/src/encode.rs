//! Percent-encoding of form bodies and query strings, as Particle does it:
//! every byte but the RFC 3986 unreserved ones (`A-Z a-z 0-9 - . _ ~`)
//! becomes `%XX`, so a space is `%20`, not `+`.

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `text` percent-encoded.
pub(crate) fn percent_encode(out: &mut String, text: &str) {
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

/// Appends `name=value` pairs joined by `&`, both sides percent-encoded.
pub(crate) fn encode_pairs<'a>(
    out: &mut String,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(out, name);
        out.push('=');
        percent_encode(out, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(text: &str) -> String {
        let mut out = String::new();
        percent_encode(&mut out, text);
        out
    }

    #[test]
    fn only_unreserved_bytes_stay() {
        assert_eq!(encoded("Hi there!"), "Hi%20there%21");
        assert_eq!(encoded("39.7,-104.9"), "39.7%2C-104.9");
        assert_eq!(
            encoded("2017-02-01T21:08:05.763Z"),
            "2017-02-01T21%3A08%3A05.763Z"
        );
        assert_eq!(encoded("a+b&c=d/e?~_"), "a%2Bb%26c%3Dd%2Fe%3F~_");
        assert_eq!(encoded("é"), "%C3%A9");
    }

    #[test]
    fn pairs_are_joined() {
        let mut out = String::new();
        encode_pairs(&mut out, [("a b", "1"), ("c", "")]);
        assert_eq!(out, "a%20b=1&c=");
    }
}
