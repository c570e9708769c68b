//! Rendering a parsed template against a stack of JSON contexts.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::parse::{Node, Path, Segment, Template};
use super::value::{is_truthy, write_text, write_text_escaped};

/// Room reserved per tag on top of the literal text, a guess that saves
/// most reallocations for short values.
const BYTES_PER_TAG: usize = 16;

/// How many partials may be open inside one another. A partial deeper than
/// this renders as empty, so a partial that includes itself (directly or
/// through others) ends instead of overflowing the stack.
pub const MAX_PARTIAL_DEPTH: usize = 64;

/// Most bytes one rendering may write. A template multiplies its output
/// through sections over arrays (each nested section multiplies by the
/// length of its array) and through partials (a partial that includes
/// itself twice doubles at every level), so a short template over a small
/// context could otherwise produce more than any memory holds. Far above
/// what a request body or a device reply may be.
pub const MAX_RENDER_BYTES: usize = 16 << 20;

/// Most steps one rendering may take: a step is one node of the template
/// rendered, or one element of an array that a section iterates. This
/// bounds the work of nested sections and partials that write nothing
/// (`{{#a}}{{#a}}…{{/a}}{{/a}}`), which [`MAX_RENDER_BYTES`] does not.
pub const MAX_RENDER_STEPS: usize = 1 << 22;

/// A rendering stopped because it went over [`MAX_RENDER_BYTES`] or
/// [`MAX_RENDER_STEPS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the template renders too much: over {MAX_RENDER_BYTES} bytes or {MAX_RENDER_STEPS} steps")]
pub struct RenderLimit;

/// The templates that `{{> name}}` tags include, looked up by name.
///
/// Implemented for maps from names to parsed templates; a name that is not
/// found renders as empty, as the mustache spec requires.
pub trait Partials {
    /// The partial called `name`, if there is one.
    fn get(&self, name: &str) -> Option<&Template>;
}

impl<S: std::hash::BuildHasher> Partials for HashMap<String, Template, S> {
    fn get(&self, name: &str) -> Option<&Template> {
        HashMap::get(self, name)
    }
}

impl Partials for BTreeMap<String, Template> {
    fn get(&self, name: &str) -> Option<&Template> {
        BTreeMap::get(self, name)
    }
}

/// No partials at all: every `{{> name}}` renders as empty.
struct NoPartials;

impl Partials for NoPartials {
    fn get(&self, _: &str) -> Option<&Template> {
        None
    }
}

impl Template {
    /// Renders with `context` as the only frame of the context stack, and
    /// no partials (a partial tag renders as empty).
    ///
    /// Like every `render*` method, it stops at [`MAX_RENDER_BYTES`] or
    /// [`MAX_RENDER_STEPS`] and returns what it rendered so far;
    /// [`Template::try_render_stack`] tells that apart.
    pub fn render(&self, context: &Value) -> String {
        self.render_stack(&[context])
    }

    /// Renders with a stack of contexts, the last one on top: a name is
    /// looked up from the top frame down. There are no partials (a partial
    /// tag renders as empty).
    pub fn render_stack(&self, stack: &[&Value]) -> String {
        self.render_with_partials(stack, &NoPartials)
    }

    /// Renders like [`Template::render_stack`], or fails if rendering goes
    /// over [`MAX_RENDER_BYTES`] or [`MAX_RENDER_STEPS`]: for output that
    /// must be whole or nothing, such as a request body.
    pub fn try_render_stack(&self, stack: &[&Value]) -> Result<String, RenderLimit> {
        self.try_render_with_partials(stack, &NoPartials)
    }

    /// Renders like [`Template::render_with_partials`], or fails if
    /// rendering goes over [`MAX_RENDER_BYTES`] or [`MAX_RENDER_STEPS`].
    pub fn try_render_with_partials(
        &self,
        stack: &[&Value],
        partials: &dyn Partials,
    ) -> Result<String, RenderLimit> {
        let renderer = self.run(stack, partials);
        if renderer.steps_left == 0 || renderer.out.len() > MAX_RENDER_BYTES {
            return Err(RenderLimit);
        }
        Ok(renderer.out)
    }

    /// Renders like [`Template::render_stack`], a `{{> name}}` tag rendering
    /// `partials.get(name)` in its place, with the current context stack:
    ///
    /// - a missing partial renders as empty;
    /// - a partial has its own delimiters (it was parsed on its own), so set
    ///   delimiters neither reach into it nor leak out of it;
    /// - a partial tag alone on its line prefixes every line of the partial
    ///   with the whitespace before it (not lines of interpolated values);
    /// - partials nest at most [`MAX_PARTIAL_DEPTH`] deep; deeper ones
    ///   render as empty;
    /// - rendering stops at [`MAX_RENDER_BYTES`] or [`MAX_RENDER_STEPS`]
    ///   (see [`Template::try_render_with_partials`]).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use edgehook_particle::template::Template;
    ///
    /// let partials = HashMap::from([(
    ///     "item".to_owned(),
    ///     Template::parse("- {{name}}\n")?,
    /// )]);
    /// let list = Template::parse("items:\n  {{#items}}\n  {{> item}}\n  {{/items}}\n")?;
    /// let data = serde_json::json!({"items": [{"name": "a"}, {"name": "b"}]});
    /// assert_eq!(
    ///     list.render_with_partials(&[&data], &partials),
    ///     "items:\n  - a\n  - b\n"
    /// );
    /// # Ok::<(), edgehook_particle::template::TemplateError>(())
    /// ```
    pub fn render_with_partials(&self, stack: &[&Value], partials: &dyn Partials) -> String {
        self.run(stack, partials).out
    }

    fn run<'p>(&self, stack: &[&Value], partials: &'p dyn Partials) -> Renderer<'p> {
        let mut renderer = Renderer {
            partials,
            out: String::with_capacity(self.text_len + BYTES_PER_TAG * self.nodes.len()),
            indent: String::new(),
            line_start: false,
            depth: 0,
            steps_left: MAX_RENDER_STEPS,
        };
        let mut frames = stack.to_vec();
        renderer.nodes(&self.nodes, &mut frames);
        renderer
    }
}

/// The state of one rendering.
struct Renderer<'p> {
    partials: &'p dyn Partials,
    out: String,
    /// What starts each line of template text: the indentation of the
    /// standalone partials being rendered; empty outside them.
    indent: String,
    /// Whether the output is at the start of a template line whose
    /// indentation is not written yet.
    line_start: bool,
    /// How many partials are open.
    depth: usize,
    /// Steps left before [`MAX_RENDER_STEPS`]; 0 once rendering stopped,
    /// for that or for [`MAX_RENDER_BYTES`].
    steps_left: usize,
}

impl Renderer<'_> {
    /// Takes one step; false once a limit is reached, and from then on.
    fn step(&mut self) -> bool {
        if self.out.len() > MAX_RENDER_BYTES {
            self.steps_left = 0;
        }
        self.steps_left = self.steps_left.saturating_sub(1);
        self.steps_left > 0
    }

    /// Writes the indentation if a line starts here.
    fn begin_line(&mut self) {
        if self.line_start {
            self.out.push_str(&self.indent);
            self.line_start = false;
        }
    }

    /// Writes literal text, indenting each of its lines that is not empty.
    fn text(&mut self, text: &str) {
        if self.indent.is_empty() {
            self.out.push_str(text);
            return;
        }
        for line in text.split_inclusive('\n') {
            if !line.trim_end_matches(['\r', '\n']).is_empty() {
                self.begin_line();
            }
            self.out.push_str(line);
            self.line_start = line.ends_with('\n');
        }
    }

    fn nodes(&mut self, nodes: &[Node], stack: &mut Vec<&Value>) {
        for node in nodes {
            if !self.step() {
                return;
            }
            match node {
                Node::Text(text) => self.text(text),
                Node::Var { path, escape } => {
                    self.begin_line();
                    if let Some(value) = lookup(path, stack) {
                        if *escape {
                            write_text_escaped(&mut self.out, value);
                        } else {
                            write_text(&mut self.out, value);
                        }
                    }
                }
                Node::Section {
                    path,
                    inverted,
                    standalone,
                    children,
                } => {
                    if !standalone {
                        self.begin_line();
                    }
                    let value = lookup(path, stack).filter(|v| is_truthy(v));
                    match (value, inverted) {
                        (None, true) => self.nodes(children, stack),
                        (None, false) | (Some(_), true) => {}
                        (Some(Value::Array(items)), false) => {
                            for item in items {
                                if !self.step() {
                                    return;
                                }
                                stack.push(item);
                                self.nodes(children, stack);
                                stack.pop();
                            }
                        }
                        // mustache.js renders `true` in the enclosing context.
                        (Some(Value::Bool(true)), false) => self.nodes(children, stack),
                        (Some(value), false) => {
                            stack.push(value);
                            self.nodes(children, stack);
                            stack.pop();
                        }
                    }
                }
                Node::Partial { name, indent } => self.partial(name, indent.as_deref(), stack),
            }
        }
    }

    /// Renders the partial `name` in place; `indent` is `Some` for a
    /// standalone tag.
    fn partial(&mut self, name: &str, indent: Option<&str>, stack: &mut Vec<&Value>) {
        if indent.is_none() {
            self.begin_line();
        }
        if self.depth >= MAX_PARTIAL_DEPTH {
            return;
        }
        let partials = self.partials;
        let Some(partial) = partials.get(name) else {
            return;
        };
        self.depth += 1;
        match indent {
            // Standalone: the partial's lines take the caller's indentation
            // and its own; the line after the tag starts a line again.
            Some(indent) => {
                let outer = self.indent.len();
                self.indent.push_str(indent);
                self.line_start = true;
                self.nodes(&partial.nodes, stack);
                self.indent.truncate(outer);
                self.line_start = true;
            }
            // Inside a line: the partial's lines are not indented, and the
            // caller's line goes on after it.
            None => {
                let outer = std::mem::take(&mut self.indent);
                self.nodes(&partial.nodes, stack);
                self.indent = outer;
                self.line_start = false;
            }
        }
        self.depth -= 1;
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

    /// Renders `template` with `partials` (name, source) and `data`.
    fn with_partials(template: &str, partials: &[(&str, &str)], data: Value) -> String {
        let partials: HashMap<String, Template> = partials
            .iter()
            .map(|(name, source)| ((*name).to_owned(), Template::parse(source).unwrap()))
            .collect();
        Template::parse(template)
            .unwrap()
            .render_with_partials(&[&data], &partials)
    }

    #[test]
    fn partials_render_in_place_with_the_context_stack() {
        let data = json!({"text": "outer", "list": [{"text": "a"}, {"other": 1}]});
        assert_eq!(
            with_partials(
                "\"{{>p}}\" {{#list}}[{{> p }}]{{/list}}",
                &[("p", "*{{text}}*")],
                data
            ),
            "\"*outer*\" [*a*][*outer*]"
        );
    }

    #[test]
    fn missing_partials_and_plain_rendering_give_nothing() {
        assert_eq!(with_partials("a{{>nope}}b", &[], json!({})), "ab");
        let t = Template::parse("a{{>p}}b\n  {{>p}}\nc").unwrap();
        assert_eq!(t.render(&json!({})), "ab\nc");
        let partials = BTreeMap::from([("p".to_owned(), Template::parse("P").unwrap())]);
        assert_eq!(t.render_with_partials(&[], &partials), "aPb\n  Pc");
    }

    #[test]
    fn delimiters_stay_inside_their_template() {
        let data = json!({"value": "yes"});
        assert_eq!(
            with_partials(
                "{{=| |=}}|>p| |value|",
                &[("p", "{{value}} {{=<% %>=}}<%value%>")],
                data
            ),
            "yes yes yes"
        );
    }

    #[test]
    fn standalone_partials_indent_every_line_of_the_partial() {
        // partials.json: "Standalone Indentation".
        assert_eq!(
            with_partials(
                "\\\n {{>partial}}\n/\n",
                &[("partial", "|\n{{{content}}}\n|\n")],
                json!({"content": "<\n->"})
            ),
            "\\\n |\n <\n->\n |\n/\n"
        );
        // "Standalone Line Endings", "Standalone Without Previous Line",
        // "Standalone Without Newline", "Inline Indentation".
        assert_eq!(
            with_partials("|\r\n{{>partial}}\r\n|", &[("partial", ">")], json!({})),
            "|\r\n>|"
        );
        assert_eq!(
            with_partials("  {{>partial}}\n>", &[("partial", ">\n>")], json!({})),
            "  >\n  >>"
        );
        assert_eq!(
            with_partials(">\n  {{>partial}}", &[("partial", ">\n>")], json!({})),
            ">\n  >\n  >"
        );
        assert_eq!(
            with_partials(
                "  {{data}}  {{> partial}}\n",
                &[("partial", ">\n>")],
                json!({"data": "|"})
            ),
            "  |  >\n>\n"
        );
        // Empty lines, standalone sections and a nested standalone partial.
        assert_eq!(
            with_partials(
                "\t{{>outer}}\nend\n",
                &[
                    (
                        "outer",
                        "a\n\n{{#list}}\n- {{.}}\n{{/list}}\n  {{>inner}}\nz{{#no}}x{{/no}}\n{{#no}}x{{/no}}!\n"
                    ),
                    ("inner", "i1\ni2\n"),
                ],
                json!({"list": [1, 2]})
            ),
            "\ta\n\n\t- 1\n\t- 2\n\t  i1\n\t  i2\n\tz\n\t!\nend\n"
        );
    }

    #[test]
    fn recursion_follows_the_data_and_stops_at_the_depth_limit() {
        // partials.json: "Recursion".
        assert_eq!(
            with_partials(
                "{{>node}}",
                &[("node", "{{content}}<{{#nodes}}{{>node}}{{/nodes}}>")],
                json!({"content": "X", "nodes": [{"content": "Y", "nodes": []}]})
            ),
            "X<Y<>>"
        );
        let deep = with_partials("{{>me}}", &[("me", "({{>me}})")], json!({}));
        assert_eq!(
            deep,
            format!(
                "{}{}",
                "(".repeat(MAX_PARTIAL_DEPTH),
                ")".repeat(MAX_PARTIAL_DEPTH)
            )
        );
    }

    #[test]
    fn partials_that_multiply_stop_at_the_render_limits() {
        // Found by `cargo fuzz run mustache` (a timeout): a partial that
        // includes itself twice doubles its work at every level, 2^64
        // within MAX_PARTIAL_DEPTH.
        let partials = HashMap::from([("p".to_owned(), Template::parse("x{{>p}}{{>p}}").unwrap())]);
        let t = Template::parse("{{>p}}").unwrap();
        let data = json!({});
        assert_eq!(
            t.try_render_with_partials(&[&data], &partials),
            Err(RenderLimit)
        );
        let cut = t.render_with_partials(&[&data], &partials);
        assert!(
            !cut.is_empty() && cut.len() <= MAX_RENDER_BYTES,
            "{}",
            cut.len()
        );
    }

    #[test]
    fn nested_sections_over_arrays_stop_at_the_render_limits() {
        let data = json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "big": "y".repeat(1000)});
        // 10^12 iterations that write nothing: the step limit.
        let silent =
            Template::parse(&format!("{}{}", "{{#a}}".repeat(12), "{{/a}}".repeat(12))).unwrap();
        assert_eq!(silent.try_render_stack(&[&data]), Err(RenderLimit));
        assert_eq!(silent.render(&data), "");
        // 10^5 copies of 1000 bytes: the output limit.
        let loud = Template::parse(&format!(
            "{}{{{{{{big}}}}}}{}",
            "{{#a}}".repeat(5),
            "{{/a}}".repeat(5)
        ))
        .unwrap();
        assert_eq!(loud.try_render_stack(&[&data]), Err(RenderLimit));
        assert!(loud.render(&data).len() <= MAX_RENDER_BYTES + 1000);
        // Under the limits, the same shape renders whole.
        let fine = Template::parse("{{#a}}{{#a}}{{{big}}}{{/a}}{{/a}}").unwrap();
        assert_eq!(fine.try_render_stack(&[&data]).unwrap().len(), 100 * 1000);
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
