//! How JSON values look in rendered text, the way Particle's node.js
//! renders them: numbers as JavaScript prints them, truthiness as
//! mustache.js decides it, HTML escaping of `& < > " '`.

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// Whether a section over `value` renders (mustache.js): `false`, `null`,
/// `""`, `0` and `[]` do not; a missing value is `None` and does not either.
pub(crate) fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Array(items) => !items.is_empty(),
        Value::Bool(true) | Value::Object(_) => true,
    }
}

/// Appends `value` as interpolated text: strings as they are, numbers and
/// booleans as JavaScript prints them, `null` as nothing, arrays and objects
/// as their compact JSON text.
pub(crate) fn write_text(out: &mut String, value: &Value) {
    match value {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        other => write_json(out, other),
    }
}

/// Appends `value` as interpolated text, HTML-escaped.
pub(crate) fn write_text_escaped(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => escape_html(out, s),
        Value::Array(_) | Value::Object(_) => {
            let mut json = String::new();
            write_json(&mut json, value);
            escape_html(out, &json);
        }
        // Numbers, booleans and null have nothing to escape.
        other => write_text(out, other),
    }
}

/// Appends `text` with `& < > " '` replaced by their HTML entities.
pub(crate) fn escape_html(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Appends `value` as compact JSON, as JavaScript's `JSON.stringify` writes
/// it (numbers included: `1.0` is `1`). Object keys come in the map's order.
pub(crate) fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, key);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    while let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') {
        out.push_str(&rest[..i]);
        match rest.as_bytes()[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            control => {
                let _ = write!(out, "\\u{control:04x}");
            }
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// Appends a number as JavaScript prints it.
fn write_number(out: &mut String, n: &Number) {
    if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(f) = n.as_f64() {
        write_f64(out, f);
    }
}

/// `Number.prototype.toString()` of ECMA-262 (§ Number::toString): the
/// shortest digits that round-trip, positioned by the exponent; plain
/// notation for 1e-7 < |x| < 1e21, exponential beyond.
fn write_f64(out: &mut String, f: f64) {
    if !f.is_finite() {
        // JSON numbers are finite; JavaScript would print `null` in JSON.
        out.push_str("null");
        return;
    }
    if f == 0.0 {
        // Both zeros print as `0`.
        out.push('0');
        return;
    }
    if f < 0.0 {
        out.push('-');
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1.21e0`, `1e21`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i64;
    let n = exponent + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{}", if n > 0 { '+' } else { '-' }, (n - 1).abs());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn text(value: Value) -> String {
        let mut out = String::new();
        write_text(&mut out, &value);
        out
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        assert_eq!(text(json!(1.0)), "1");
        assert_eq!(text(json!(21.10)), "21.1");
        assert_eq!(text(json!(1.21)), "1.21");
        assert_eq!(text(json!(-104.984703)), "-104.984703");
        assert_eq!(text(json!(1608.637939453125)), "1608.637939453125");
        assert_eq!(text(json!(u64::MAX)), "18446744073709551615");
        assert_eq!(text(json!(-42)), "-42");
        assert_eq!(text(json!(-0.0)), "0");
        assert_eq!(text(json!(1e20)), "100000000000000000000");
        assert_eq!(text(json!(1e21)), "1e+21");
        assert_eq!(text(json!(1.5e300)), "1.5e+300");
        assert_eq!(text(json!(0.000001)), "0.000001");
        assert_eq!(text(json!(1.5e-7)), "1.5e-7");
        assert_eq!(text(json!(0.1)), "0.1");
    }

    #[test]
    fn other_values_as_text() {
        assert_eq!(text(json!(null)), "");
        assert_eq!(text(json!(true)), "true");
        assert_eq!(text(json!("a\"b")), "a\"b");
        assert_eq!(
            text(json!({"b": [1.0, "x\n"], "a": null})),
            r#"{"a":null,"b":[1,"x\n"]}"#
        );
        let mut out = String::new();
        write_text_escaped(&mut out, &json!(["<&'\">"]));
        assert_eq!(out, "[&quot;&lt;&amp;&#39;\\&quot;&gt;&quot;]");
    }

    #[test]
    fn truthiness_follows_mustache_js() {
        for falsey in [
            json!(false),
            json!(null),
            json!(""),
            json!(0),
            json!(0.0),
            json!([]),
        ] {
            assert!(!is_truthy(&falsey), "{falsey}");
        }
        for truthy in [json!(true), json!("0"), json!(1), json!([0]), json!({})] {
            assert!(is_truthy(&truthy), "{truthy}");
        }
    }

    #[test]
    fn control_characters_are_escaped_in_json() {
        let mut out = String::new();
        write_json_string(&mut out, "a\u{1}\u{8}\u{c}\\");
        assert_eq!(out, r#""a\u0001\b\f\\""#);
    }
}
