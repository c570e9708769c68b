//! AWS Signature Version 4: the headers that sign a webhook's request to an
//! AWS service called directly over HTTP (an API Gateway API with IAM
//! authorization, a Lambda function URL, …) with the webhook's access key.
//!
//! Pure: the caller brings the credentials, the request and the time, and
//! adds the returned headers to the request. The payload is signed
//! (`x-amz-content-sha256` is its SHA-256). Paths are made canonical the way
//! every service but S3 wants them (dot segments and empty segments removed,
//! each segment encoded once more), so S3 is not a target.
//!
//! Checked against AWS's published SigV4 test suite (`sigv4_vectors/`).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};
use sha2::{Digest, Sha256};

/// The algorithm named in the string to sign and in `authorization`.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What AWS leaves unencoded in paths and queries: `A-Z a-z 0-9 - _ . ~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Header names that `sign` sets itself: the caller's are left out.
const SET_BY_SIGN: [&str; 5] = [
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
    "authorization",
    "host",
];

/// AWS credentials and scope of one webhook.
#[derive(Clone)]
pub struct Credentials {
    /// The region of the service, e.g. `us-east-1`.
    pub region: String,
    /// The name the service signs with, e.g. `execute-api` or `lambda`.
    pub service: String,
    /// The access key id, e.g. `AKIDEXAMPLE`.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials (STS), sent and signed as
    /// `x-amz-security-token`.
    pub session_token: Option<String>,
}

/// Without the secret key and the session token: credentials end up in logs.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Signs a request: returns the headers to add, in order:
/// `x-amz-date`, `x-amz-content-sha256` (hex SHA-256 of body: the payload is
/// signed), `x-amz-security-token` (when session_token), `authorization`.
///
/// `headers` are the request's other headers (name, value) that will be
/// sent; every one of them is signed (plus `host`, which is derived from the
/// url: host[:port] when the port is not the scheme's default), except that
/// header names already among the four above are ignored (the caller drops
/// them from the request), and so is `host`: the request must be sent with
/// the url's. The path and query are signed as the url has them (already
/// percent-encoded once); in the query, `+` is a `+`, as botocore reads it.
pub fn sign(
    creds: &Credentials,
    method: &str,
    url: &url::Url,
    headers: &[(String, String)],
    body: &[u8],
    now: SystemTime,
) -> Vec<(&'static str, String)> {
    let amz_date = amz_date(now);
    let payload_hash = hex::encode(Sha256::digest(body));
    let host = host(url);
    let mut signed: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(name, _)| !SET_BY_SIGN.iter().any(|own| name.eq_ignore_ascii_case(own)))
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    signed.push(("host", &host));
    signed.push(("x-amz-date", &amz_date));
    signed.push(("x-amz-content-sha256", &payload_hash));
    if let Some(token) = &creds.session_token {
        signed.push(("x-amz-security-token", token));
    }
    let request = Request {
        method,
        path: url.path(),
        query: url.query().unwrap_or(""),
        headers: &signed,
        payload_hash: &payload_hash,
    };
    let authorization = authorization(creds, &amz_date, &request);

    let mut out = Vec::with_capacity(4);
    out.push(("x-amz-date", amz_date));
    out.push(("x-amz-content-sha256", payload_hash));
    if let Some(token) = &creds.session_token {
        out.push(("x-amz-security-token", token.clone()));
    }
    out.push(("authorization", authorization));
    out
}

/// A request as it is signed.
struct Request<'a> {
    /// The method, e.g. `GET`.
    method: &'a str,
    /// The path as sent (a url's: already percent-encoded once).
    path: &'a str,
    /// The query as sent, without the `?`; empty when there is none.
    query: &'a str,
    /// Every signed header (name in any case, value), in the order sent;
    /// `host` and `x-amz-date` among them.
    headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body.
    payload_hash: &'a str,
}

/// The canonical request, and the list of signed headers that is part of it
/// and of `authorization`.
struct CanonicalRequest {
    /// The canonical request itself.
    text: String,
    /// The signed header names, lowercase, sorted, joined with `;`.
    signed_headers: String,
}

/// The `authorization` header value of `request`, signed at `amz_date`
/// (`YYYYMMDDTHHMMSSZ`, the value of its `x-amz-date`).
fn authorization(creds: &Credentials, amz_date: &str, request: &Request<'_>) -> String {
    let scope = scope(creds, amz_date);
    let canonical = canonical_request(request);
    let string_to_sign = string_to_sign(amz_date, &scope, &canonical.text);
    let key = signing_key(
        &creds.secret_access_key,
        &amz_date[..8],
        &creds.region,
        &creds.service,
    );
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={}",
        creds.access_key_id,
        canonical.signed_headers,
        signature(&key, &string_to_sign),
    )
}

/// The credential scope: `YYYYMMDD/region/service/aws4_request`.
fn scope(creds: &Credentials, amz_date: &str) -> String {
    format!(
        "{}/{}/{}/aws4_request",
        &amz_date[..8],
        creds.region,
        creds.service
    )
}

/// The canonical request: method, canonical path, canonical query, the
/// headers (names lowercase and sorted, values trimmed with inner runs of
/// whitespace made one space, the values of one name joined with `,` in the
/// order sent), the signed header names and the payload hash, one a line.
fn canonical_request(request: &Request<'_>) -> CanonicalRequest {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), trim_all(value)))
        .collect();
    // Stable: the values of one name keep the order they are sent in.
    headers.sort_by(|a, b| a.0.cmp(&b.0));

    let mut canonical_headers = String::new();
    let mut signed_headers = Vec::new();
    for group in headers.chunk_by(|a, b| a.0 == b.0) {
        let name = group[0].0.as_str();
        let values: Vec<&str> = group.iter().map(|(_, value)| value.as_str()).collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
        signed_headers.push(name);
    }
    let signed_headers = signed_headers.join(";");

    let text = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        canonical_uri(request.path),
        canonical_query(request.query),
        request.payload_hash,
    );
    CanonicalRequest {
        text,
        signed_headers,
    }
}

/// The canonical path of `path` as sent: dot segments resolved, empty
/// segments removed (a trailing `/` kept), then every segment encoded with
/// [`UNRESERVED`], so what the url had percent-encoded is encoded twice, as
/// AWS wants for every service but S3.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let ends_in_directory = matches!(path.rsplit('/').next(), Some("" | "." | ".."));

    let mut uri = String::from("/");
    let encoded: Vec<String> = segments
        .iter()
        .map(|segment| percent_encode(segment.as_bytes(), UNRESERVED).to_string())
        .collect();
    uri.push_str(&encoded.join("/"));
    if ends_in_directory && !segments.is_empty() {
        uri.push('/');
    }
    uri
}

/// The canonical query of `query` as sent: each key and value
/// percent-decoded and encoded with [`UNRESERVED`], the pairs sorted by key, then
/// value, and joined with `&`. A key without `=` has an empty value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (encode_component(key), encode_component(value))
        })
        .collect();
    pairs.sort();
    let pairs: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    pairs.join("&")
}

/// A query key or value as sent, as AWS signs it: percent-decoded (a `+` is
/// a `+`, as botocore and the services read it), then encoded with
/// [`UNRESERVED`].
fn encode_component(sent: &str) -> String {
    let decoded: Vec<u8> = percent_decode_str(sent).collect();
    percent_encode(&decoded, UNRESERVED).to_string()
}

/// A header value trimmed, with each inner run of whitespace (a folded
/// line's line break among it) made one space.
fn trim_all(value: &str) -> String {
    value.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// The string to sign: the algorithm, the time, the scope and the hex
/// SHA-256 of the canonical request, one a line.
fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The key that signs for one day (`YYYYMMDD`), region and service: the
/// secret key HMAC-ed with each in turn, then with `aws4_request`.
fn signing_key(secret_access_key: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let key = hmac(
        format!("AWS4{secret_access_key}").as_bytes(),
        date.as_bytes(),
    );
    let key = hmac(&key, region.as_bytes());
    let key = hmac(&key, service.as_bytes());
    hmac(&key, b"aws4_request")
}

/// The signature: hex HMAC-SHA256 of the string to sign under the signing key.
fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac(signing_key, string_to_sign.as_bytes()))
}

/// HMAC-SHA256 of `data` under `key`.
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The `host` header of `url`: its host, and its port when that is not the
/// scheme's default.
fn host(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// `now` in UTC as `x-amz-date` has it: `YYYYMMDDTHHMMSSZ` (the epoch for a
/// time before it): RFC 3339 without its separators.
fn amz_date(now: SystemTime) -> String {
    humantime::format_rfc3339_seconds(now.max(UNIX_EPOCH))
        .to_string()
        .replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The test suite's time, 2015-08-30T12:36:00Z.
    const SUITE_TIME: u64 = 1_440_938_160;

    fn suite_credentials(session_token: Option<&str>) -> Credentials {
        Credentials {
            region: "us-east-1".into(),
            service: "service".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: session_token.map(str::to_owned),
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// One vector of the suite: the request, and the canonical request, the
    /// string to sign and the `Authorization` value it must give.
    struct Vector {
        name: &'static str,
        req: &'static str,
        creq: &'static str,
        sts: &'static str,
        authz: &'static str,
    }

    macro_rules! vector {
        ($name:literal) => {
            Vector {
                name: $name,
                req: include_str!(concat!("sigv4_vectors/", $name, "/", $name, ".req")),
                creq: include_str!(concat!("sigv4_vectors/", $name, "/", $name, ".creq")),
                sts: include_str!(concat!("sigv4_vectors/", $name, "/", $name, ".sts")),
                authz: include_str!(concat!("sigv4_vectors/", $name, "/", $name, ".authz")),
            }
        };
    }

    /// Every vector in `sigv4_vectors/`.
    const VECTORS: &[Vector] = &[
        vector!("get-header-key-duplicate"),
        vector!("get-header-value-multiline"),
        vector!("get-header-value-order"),
        vector!("get-header-value-trim"),
        vector!("get-relative"),
        vector!("get-relative-relative"),
        vector!("get-slash"),
        vector!("get-slash-dot-slash"),
        vector!("get-slash-pointless-dot"),
        vector!("get-slashes"),
        vector!("get-space"),
        vector!("get-special-character"),
        vector!("get-unreserved"),
        vector!("get-utf8"),
        vector!("get-vanilla"),
        vector!("get-vanilla-empty-query-key"),
        vector!("get-vanilla-query"),
        vector!("get-vanilla-query-order-encoded"),
        vector!("get-vanilla-query-order-key"),
        vector!("get-vanilla-query-order-key-case"),
        vector!("get-vanilla-query-order-value"),
        vector!("get-vanilla-query-unreserved"),
        vector!("get-vanilla-utf8-query"),
        vector!("get-vanilla-with-session-token"),
        vector!("post-header-key-case"),
        vector!("post-header-key-sort"),
        vector!("post-header-value-case"),
        vector!("post-sts-header-after"),
        vector!("post-sts-header-before"),
        vector!("post-vanilla"),
        vector!("post-vanilla-empty-query-value"),
        vector!("post-vanilla-query"),
        vector!("post-x-www-form-urlencoded"),
        vector!("post-x-www-form-urlencoded-parameters"),
    ];

    /// A `.req` file: `METHOD target HTTP/1.1`, header lines (a line that
    /// starts with whitespace continues the previous one), an empty line and
    /// the body. The target is taken as sent, unparsed (`get-space` has a
    /// space in it, `get-utf8` raw UTF-8).
    struct RawRequest<'a> {
        method: &'a str,
        path: &'a str,
        query: &'a str,
        headers: Vec<(&'a str, String)>,
        body: &'a str,
    }

    fn parse(req: &str) -> RawRequest<'_> {
        let (head, body) = req.split_once("\n\n").unwrap_or((req, ""));
        let mut lines = head.lines();
        let request_line = lines.next().expect("a request line");
        let (method, rest) = request_line.split_once(' ').expect("a method");
        let target = rest.strip_suffix(" HTTP/1.1").expect("HTTP/1.1");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers: Vec<(&str, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().expect("a header before a folded line");
                last.1.push('\n');
                last.1.push_str(line);
            } else {
                let (name, value) = line.split_once(':').expect("a header line");
                headers.push((name, value.to_owned()));
            }
        }
        RawRequest {
            method,
            path,
            query,
            headers,
            body,
        }
    }

    /// Where `vector` and the signer disagree, if they do.
    fn check(vector: &Vector) -> Option<String> {
        let raw = parse(vector.req);
        let mut headers: Vec<(&str, &str)> = raw
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        // As botocore runs `get-vanilla-with-session-token`: the session
        // token is the one in the canonical request, signed as `sign` does
        // (the `.req` does not have the header).
        let token = vector
            .creq
            .lines()
            .find_map(|line| line.strip_prefix("x-amz-security-token:"));
        if let Some(token) = token
            && !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("x-amz-security-token"))
        {
            headers.push(("x-amz-security-token", token));
        }
        let creds = suite_credentials(token);
        let amz_date = amz_date(at(SUITE_TIME));
        let payload_hash = hex::encode(Sha256::digest(raw.body.as_bytes()));
        let request = Request {
            method: raw.method,
            path: raw.path,
            query: raw.query,
            headers: &headers,
            payload_hash: &payload_hash,
        };

        let creq = canonical_request(&request).text;
        let sts = string_to_sign(&amz_date, &scope(&creds, &amz_date), &creq);
        let authz = authorization(&creds, &amz_date, &request);
        let mut wrong = Vec::new();
        for (part, got, want) in [
            ("canonical request", creq, vector.creq),
            ("string to sign", sts, vector.sts),
            ("authorization", authz, vector.authz),
        ] {
            if got != want {
                wrong.push(format!("{part}:\n{got}\nwanted:\n{want}"));
            }
        }
        (!wrong.is_empty()).then(|| format!("{}: {}", vector.name, wrong.join("\n")))
    }

    #[test]
    fn the_aws_test_suite_signs_as_published() {
        let failures: Vec<String> = VECTORS.iter().filter_map(check).collect();
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    #[test]
    fn every_vector_directory_is_in_the_suite() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/auth/sigv4_vectors");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_type().unwrap().is_dir())
            .map(|entry| entry.file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = VECTORS.iter().map(|vector| vector.name).collect();
        assert_eq!(on_disk, listed);
    }

    /// The signing key of AWS's documentation example (IAM, 2012-02-15).
    #[test]
    fn the_signing_key_is_derived_as_documented() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn sign_with_a_session_token_sends_and_signs_it() {
        let creds = suite_credentials(Some("the-token"));
        let url = url::Url::parse("https://example.amazonaws.com/").unwrap();
        let headers = sign(&creds, "POST", &url, &[], b"{}", at(SUITE_TIME));

        let names: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "x-amz-date",
                "x-amz-content-sha256",
                "x-amz-security-token",
                "authorization"
            ]
        );
        assert_eq!(headers[0].1, "20150830T123600Z");
        assert_eq!(headers[1].1, hex::encode(Sha256::digest(b"{}")));
        assert_eq!(headers[2].1, "the-token");
        assert!(
            headers[3].1.contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
            ),
            "{}",
            headers[3].1
        );
        // Signed with the token: without it, another signature.
        let without = sign(
            &suite_credentials(None),
            "POST",
            &url,
            &[],
            b"{}",
            at(SUITE_TIME),
        );
        assert_eq!(without.len(), 3);
        assert!(
            without[2]
                .1
                .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,")
        );
    }

    #[test]
    fn sign_signs_the_callers_headers_but_not_the_ones_it_sets() {
        let creds = suite_credentials(None);
        let url = url::Url::parse("https://example.amazonaws.com:8443/a/b?x=1").unwrap();
        let headers: Vec<(String, String)> = [
            ("Content-Type", "application/json"),
            ("X-Amz-Date", "19700101T000000Z"),
            ("Authorization", "Bearer nope"),
            ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
            ("Host", "elsewhere.example"),
        ]
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
        let signed = sign(&creds, "PUT", &url, &headers, b"body", at(SUITE_TIME));

        let payload_hash = hex::encode(Sha256::digest(b"body"));
        let expected = authorization(
            &creds,
            "20150830T123600Z",
            &Request {
                method: "PUT",
                path: "/a/b",
                query: "x=1",
                headers: &[
                    ("content-type", "application/json"),
                    ("host", "example.amazonaws.com:8443"),
                    ("x-amz-date", "20150830T123600Z"),
                    ("x-amz-content-sha256", &payload_hash),
                ],
                payload_hash: &payload_hash,
            },
        );
        assert_eq!(signed[2], ("authorization", expected));
        assert!(
            signed[2]
                .1
                .contains("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,")
        );
    }

    #[test]
    fn the_host_has_the_port_only_when_it_is_not_the_default() {
        let host_of = |url: &str| host(&url::Url::parse(url).unwrap());
        assert_eq!(host_of("https://example.com/x"), "example.com");
        assert_eq!(host_of("https://example.com:443/x"), "example.com");
        assert_eq!(host_of("http://example.com:80/x"), "example.com");
        assert_eq!(host_of("https://example.com:8443/x"), "example.com:8443");
        assert_eq!(host_of("http://[::1]:8080/"), "[::1]:8080");
    }

    /// A url's path is encoded once already: its canonical form encodes it
    /// again (`get-space` and `get-utf8` give the path unencoded).
    #[test]
    fn a_urls_path_is_encoded_twice() {
        let url = url::Url::parse("https://example.amazonaws.com/example space/\u{1234}").unwrap();
        assert_eq!(
            canonical_uri(url.path()),
            "/example%2520space/%25E1%2588%25B4"
        );
    }

    #[test]
    fn query_keys_and_values_are_decoded_then_encoded() {
        assert_eq!(
            canonical_query("b=%7e+x%20y&a&a=%2B&c=*"),
            "a=&a=%2B&b=~%2Bx%20y&c=%2A"
        );
    }

    #[test]
    fn dates_are_utc_in_the_basic_format() {
        assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(amz_date(at(SUITE_TIME)), "20150830T123600Z");
        assert_eq!(amz_date(at(951_782_400)), "20000229T000000Z");
        assert_eq!(amz_date(at(4_107_542_399)), "21000228T235959Z");
        assert_eq!(amz_date(at(4_107_542_400)), "21000301T000000Z");
        assert_eq!(amz_date(at(253_402_300_799)), "99991231T235959Z");
    }

    #[test]
    fn debug_leaves_out_the_secrets() {
        let shown = format!("{:?}", suite_credentials(Some("the-token")));
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(!shown.contains("EXAMPLEKEY"), "{shown}");
        assert!(!shown.contains("the-token"), "{shown}");
    }
}
