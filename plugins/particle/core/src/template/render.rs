//! Rendering a parsed template against a stack of JSON contexts.

use serde_json::Value;

use super::parse::{Node, Path, Segment, Template};
use super::value::{is_truthy, write_text, write_text_escaped};

/// Room reserved per tag on top of the literal text, a guess that saves
/// most reallocations for short values.
const BYTES_PER_TAG: usize = 16;

impl Template {
    /// Renders with `context` as the only frame of the context stack.
    pub fn render(&self, context: &Value) -> String {
        self.render_stack(&[context])
    }

    /// Renders with a stack of contexts, the last one on top: a name is
    /// looked up from the top frame down.
    pub fn render_stack(&self, stack: &[&Value]) -> String {
        let mut out = String::with_capacity(self.text_len + BYTES_PER_TAG * self.nodes.len());
        let mut frames = stack.to_vec();
        render_nodes(&self.nodes, &mut frames, &mut out);
        out
    }
}

fn render_nodes(nodes: &[Node], stack: &mut Vec<&Value>, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Var { path, escape } => {
                if let Some(value) = lookup(path, stack) {
                    if *escape {
                        write_text_escaped(out, value);
                    } else {
                        write_text(out, value);
                    }
                }
            }
            Node::Section {
                path,
                inverted,
                children,
            } => {
                let value = lookup(path, stack).filter(|v| is_truthy(v));
                match (value, inverted) {
                    (None, true) => render_nodes(children, stack, out),
                    (None, false) | (Some(_), true) => {}
                    (Some(Value::Array(items)), false) => {
                        for item in items {
                            stack.push(item);
                            render_nodes(children, stack, out);
                            stack.pop();
                        }
                    }
                    // mustache.js renders `true` in the enclosing context.
                    (Some(Value::Bool(true)), false) => render_nodes(children, stack, out),
                    (Some(value), false) => {
                        stack.push(value);
                        render_nodes(children, stack, out);
                        stack.pop();
                    }
                }
            }
        }
    }
}

/// Resolves a name: its first segment in the nearest frame that has it,
/// the others inside what that segment found (no further walking).
fn lookup<'v>(path: &Path, stack: &[&'v Value]) -> Option<&'v Value> {
    match path {
        Path::Dot => stack.last().copied(),
        Path::Names(segments) => {
            let (first, rest) = segments.split_first()?;
            let found = stack.iter().rev().find_map(|frame| child(frame, first))?;
            rest.iter()
                .try_fold(found, |value, segment| child(value, segment))
        }
    }
}

fn child<'v>(value: &'v Value, segment: &Segment) -> Option<&'v Value> {
    match value {
        Value::Object(map) => map.get(&segment.key),
        Value::Array(items) => segment.index.and_then(|i| items.get(i)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(template: &str, data: Value) -> String {
        Template::parse(template).unwrap().render(&data)
    }

    #[test]
    fn dotted_names_index_arrays() {
        let data = json!({"c": [{"ca": "first"}, {"ca": "second"}], "m": [[1, 2]]});
        assert_eq!(
            render("{{c.1.ca}} {{m.0.1}} [{{c.2.ca}}] [{{c.x}}]", data),
            "second 2 [] []"
        );
    }

    #[test]
    fn sections_follow_mustache_js_truthiness() {
        let data = json!({"zero": 0, "empty": "", "none": [], "null": null, "f": false,
                          "one": 1, "s": "x", "obj": {"k": "v"}, "t": true, "k": "outer"});
        let falsey = "{{#zero}}A{{/zero}}{{#empty}}B{{/empty}}{{#none}}C{{/none}}{{#null}}D{{/null}}{{#f}}E{{/f}}{{#gone}}F{{/gone}}";
        assert_eq!(render(falsey, data.clone()), "");
        let inverted = "{{^zero}}A{{/zero}}{{^empty}}B{{/empty}}{{^none}}C{{/none}}{{^null}}D{{/null}}{{^f}}E{{/f}}{{^gone}}F{{/gone}}";
        assert_eq!(render(inverted, data.clone()), "ABCDEF");
        assert_eq!(
            render(
                "{{#one}}{{.}}{{/one}} {{#s}}{{.}}{{/s}} {{#obj}}{{k}}{{/obj}} {{#t}}{{k}}{{/t}}",
                data
            ),
            "1 x v outer"
        );
    }

    #[test]
    fn values_print_as_node_prints_them_and_escape_only_when_asked() {
        let data = json!({"f": 21.10, "i": 1.0, "o": {"a": [1, "<"]}, "h": "<&>\"'"});
        assert_eq!(
            render("{{f}} {{i}} {{{o}}} {{o}} {{h}} {{{h}}} {{&h}}", data),
            "21.1 1 {\"a\":[1,\"<\"]} {&quot;a&quot;:[1,&quot;&lt;&quot;]} &lt;&amp;&gt;&quot;&#39; <&>\"' <&>\"'"
        );
    }

    #[test]
    fn names_resolve_through_the_stack_top_first() {
        let bottom = json!({"a": "bottom", "b": "only bottom"});
        let top = json!({"a": "top"});
        let t = Template::parse("{{a}} {{b}} {{{.}}}").unwrap();
        assert_eq!(
            t.render_stack(&[&bottom, &top]),
            r#"top only bottom {"a":"top"}"#
        );
        assert_eq!(
            t.render_stack(&[]),
            "  ",
            "an empty stack renders no values"
        );
    }
}
