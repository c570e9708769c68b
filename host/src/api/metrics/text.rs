//! The lines of the Prometheus text exposition format: a family's header,
//! a sample line, an escaped label value.

use std::fmt::Write as _;

/// The `# HELP` and `# TYPE` lines of a family.
pub(super) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample line: `name{key="value",…} value`, the braces only when
/// there are labels.
pub(super) fn line(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    for (i, (key, label)) in labels.iter().enumerate() {
        let open = if i == 0 { '{' } else { ',' };
        let _ = write!(out, "{open}{key}=\"{}\"", escape(label));
    }
    if !labels.is_empty() {
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the exposition format wants it: `\\`, `"` and newlines
/// escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}
