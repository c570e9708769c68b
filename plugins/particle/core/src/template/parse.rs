//! Parsing a mustache template, once, into a tree of nodes.
//!
//! The scanner (`scan`) turns the source into tokens (text, newlines, tags),
//! honouring set-delimiter tags as it goes; a second pass (`standalone`)
//! drops the whitespace and the newline around *standalone* tags (sections,
//! inverted sections, closings, comments, delimiter changes and partials
//! alone on their line), as the mustache spec requires, keeping a standalone
//! partial's indentation; a third pass, here, nests sections. Rendering then walks the nodes and never looks
//! at the source again.
//!
//! Every template starts with the default `{{ }}` delimiters, so a partial,
//! parsed on its own, neither sees nor changes its caller's delimiters.

use super::error::{TemplateError, TemplateErrorCause, error};
use super::scan::{Kind, Tag, Token, scan};
use super::standalone::strip_standalone;

/// How many sections may be open inside one another, as serde_json bounds
/// the nesting of JSON. The parsed tree is walked recursively (rendering,
/// dropping, cloning), and a template is small text that a hostile
/// definition can nest a hundred thousand deep; no real template comes near
/// this.
pub const MAX_SECTION_DEPTH: usize = 128;

/// A parsed mustache template: parse it once, render it many times.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The source as written, for listings and error messages.
    source: String,
    /// What rendering walks.
    pub(crate) nodes: Vec<Node>,
    /// Bytes of literal text, to reserve the output in one allocation.
    pub(crate) text_len: usize,
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// Literal text, copied as is.
    Text(String),
    /// `{{name}}` (escaped) or `{{{name}}}` / `{{& name}}` (raw).
    Var { path: Path, escape: bool },
    /// `{{#name}}…{{/name}}` or, inverted, `{{^name}}…{{/name}}`.
    Section {
        path: Path,
        inverted: bool,
        /// Whether the opening tag stood alone on its line (which is gone),
        /// so that it does not start an indented line of a partial.
        standalone: bool,
        children: Vec<Node>,
    },
    /// `{{> name}}`: the template named `name`, rendered in place with the
    /// current context stack.
    Partial {
        name: String,
        /// For a standalone tag, the whitespace before it, which prefixes
        /// every line of the partial; `None` for a tag inside a line.
        indent: Option<String>,
    },
}

/// A variable name, split once at parse time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Path {
    /// `.`: the top of the context stack.
    Dot,
    /// `a.b.0.c`: the first segment is looked up through the stack, the rest
    /// inside what it found.
    Names(Vec<Segment>),
}

/// One segment of a dotted name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Segment {
    /// The key in an object.
    pub(crate) key: String,
    /// The same segment as an array index, when it is a number.
    pub(crate) index: Option<usize>,
}

impl Template {
    /// Parses `source`, partial tags included (see
    /// [`Template::render_with_partials`]).
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        Self::parse_with(source, true)
    }

    /// Parses `source` like [`Template::parse`], except that a partial tag
    /// is an error ([`TemplateErrorCause::Partial`]): for templates that are
    /// never given partials, such as those of a webhook definition.
    pub fn parse_without_partials(source: &str) -> Result<Template, TemplateError> {
        Self::parse_with(source, false)
    }

    fn parse_with(source: &str, partials: bool) -> Result<Template, TemplateError> {
        let tokens = scan(source, partials)?;
        let tokens = strip_standalone(tokens);
        let (nodes, text_len) = nest(source, tokens)?;
        Ok(Template {
            source: source.to_owned(),
            nodes,
            text_len,
        })
    }

    /// The source as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template has no tags at all (its output is its source).
    pub fn is_literal(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }

    /// The literal text the template starts with, before its first tag.
    pub fn literal_prefix(&self) -> &str {
        match self.nodes.first() {
            Some(Node::Text(text)) => text,
            _ => "",
        }
    }

    /// Whether a tag anywhere in the template looks `name` up (as a whole
    /// name or as the first segment of a dotted one).
    pub fn mentions(&self, name: &str) -> bool {
        fn walk(nodes: &[Node], name: &str) -> bool {
            nodes.iter().any(|node| match node {
                Node::Text(_) | Node::Partial { .. } => false,
                Node::Var { path, .. } => first_is(path, name),
                Node::Section { path, children, .. } => {
                    first_is(path, name) || walk(children, name)
                }
            })
        }
        fn first_is(path: &Path, name: &str) -> bool {
            matches!(path, Path::Names(segments) if segments.first().is_some_and(|s| s.key == name))
        }
        walk(&self.nodes, name)
    }
}

fn path(name: &str) -> Path {
    if name == "." {
        return Path::Dot;
    }
    Path::Names(
        name.split('.')
            .map(|key| Segment {
                key: key.to_owned(),
                index: key.parse().ok(),
            })
            .collect(),
    )
}

/// An open section while nesting.
struct Open<'s> {
    tag: Tag<'s>,
    children: Vec<Node>,
}

fn push_node(nodes: &mut Vec<Node>, text_len: &mut usize, text: &str) {
    *text_len += text.len();
    if let Some(Node::Text(last)) = nodes.last_mut() {
        last.push_str(text);
    } else {
        nodes.push(Node::Text(text.to_owned()));
    }
}

fn nest<'s>(source: &'s str, tokens: Vec<Token<'s>>) -> Result<(Vec<Node>, usize), TemplateError> {
    let mut stack: Vec<Open<'s>> = Vec::new();
    let mut nodes = Vec::new();
    let mut text_len = 0;
    for token in tokens {
        let current = match stack.last_mut() {
            Some(open) => &mut open.children,
            None => &mut nodes,
        };
        match token {
            Token::Text(text) | Token::Newline(text) => push_node(current, &mut text_len, text),
            Token::Tag(tag) => match tag.kind {
                Kind::Comment | Kind::Delimiters => {}
                Kind::Var { escape } => current.push(Node::Var {
                    path: path(tag.name),
                    escape,
                }),
                Kind::Partial => current.push(Node::Partial {
                    name: tag.name.to_owned(),
                    indent: tag.standalone.then_some(tag.indent),
                }),
                Kind::Section | Kind::Inverted if stack.len() >= MAX_SECTION_DEPTH => {
                    return Err(error(
                        source,
                        tag.at,
                        TemplateErrorCause::TooDeep {
                            tag: tag.raw.to_owned(),
                        },
                    ));
                }
                Kind::Section | Kind::Inverted => stack.push(Open {
                    tag,
                    children: Vec::new(),
                }),
                Kind::Close => {
                    let Some(open) = stack.pop_if(|open| open.tag.name == tag.name) else {
                        let open = stack.last().map(|open| open.tag.raw.to_owned());
                        return Err(error(
                            source,
                            tag.at,
                            TemplateErrorCause::MismatchedClose {
                                tag: tag.raw.to_owned(),
                                open,
                            },
                        ));
                    };
                    let section = Node::Section {
                        path: path(open.tag.name),
                        inverted: open.tag.kind == Kind::Inverted,
                        standalone: open.tag.standalone,
                        children: open.children,
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(section),
                        None => nodes.push(section),
                    }
                }
            },
        }
    }
    if let Some(open) = stack.pop() {
        return Err(error(
            source,
            open.tag.at,
            TemplateErrorCause::UnclosedSection {
                tag: open.tag.raw.to_owned(),
                name: open.tag.name.to_owned(),
            },
        ));
    }
    Ok((nodes, text_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(source: &str) -> (TemplateErrorCause, usize, usize) {
        let err = Template::parse(source).expect_err(source);
        (err.cause, err.line, err.column)
    }

    #[test]
    fn errors_say_what_and_where() {
        assert_eq!(
            cause("ab\n c{{name"),
            (
                TemplateErrorCause::UnclosedTag {
                    open: "{{".into(),
                    close: "}}".into()
                },
                2,
                3
            )
        );
        assert_eq!(
            cause("x{{{name}}").0,
            TemplateErrorCause::UnclosedTag {
                open: "{{".into(),
                close: "}}}".into()
            }
        );
        assert_eq!(
            cause("é{{#a}}"),
            (
                TemplateErrorCause::UnclosedSection {
                    tag: "{{#a}}".into(),
                    name: "a".into()
                },
                1,
                2
            )
        );
        assert_eq!(
            cause("{{#a}}{{/b}}").0,
            TemplateErrorCause::MismatchedClose {
                tag: "{{/b}}".into(),
                open: Some("{{#a}}".into())
            }
        );
        assert_eq!(
            cause("{{/b}}").0,
            TemplateErrorCause::MismatchedClose {
                tag: "{{/b}}".into(),
                open: None
            }
        );
        for bad in ["{{=<%=}}", "{{=a b c=}}", "{{=a= b=}}"] {
            assert!(
                matches!(cause(bad).0, TemplateErrorCause::BadDelimiters { .. }),
                "{bad}"
            );
        }
        for empty in ["{{}}", "{{ }}", "{{{}}}", "{{#}}{{/}}", "{{& }}"] {
            assert!(
                matches!(cause(empty).0, TemplateErrorCause::EmptyTag { .. }),
                "{empty}"
            );
        }
        for empty in ["{{>}}", "{{> }}"] {
            assert!(
                matches!(cause(empty).0, TemplateErrorCause::EmptyTag { .. }),
                "{empty}"
            );
        }
    }

    #[test]
    fn sections_nest_at_most_max_section_depth() {
        // A section nested 100 000 deep is 1.2 MB of template; its tree,
        // dropped, cloned or rendered recursively, overflowed the stack
        // (of this test's thread, or of a runtime worker reading a webhook
        // definition).
        let deep = |n: usize| format!("{}{}", "{{#a}}".repeat(n), "{{/a}}".repeat(n));
        let err = Template::parse(&deep(100_000)).unwrap_err();
        assert_eq!(
            (err.cause, err.line, err.column),
            (
                TemplateErrorCause::TooDeep {
                    tag: "{{#a}}".into()
                },
                1,
                6 * MAX_SECTION_DEPTH + 1
            )
        );
        let t = Template::parse(&deep(MAX_SECTION_DEPTH)).unwrap();
        assert_eq!(t.clone(), t);
        assert_eq!(t.render(&serde_json::json!({"a": [1]})), "");
        assert!(
            Template::parse(&deep(MAX_SECTION_DEPTH + 1))
                .unwrap_err()
                .to_string()
                .contains("more than 128 sections inside one another")
        );
    }

    #[test]
    fn partials_are_refused_only_when_asked() {
        let err = Template::parse_without_partials("a\n {{> header}}").unwrap_err();
        assert_eq!(
            (err.cause, err.line, err.column),
            (
                TemplateErrorCause::Partial {
                    tag: "{{> header}}".into()
                },
                2,
                2
            )
        );
        let err = Template::parse_without_partials("{{=<% %>=}}<%>p%>").unwrap_err();
        assert_eq!(
            err.cause,
            TemplateErrorCause::Partial {
                tag: "<%>p%>".into()
            }
        );
        assert_eq!(
            Template::parse_without_partials("{{a}} {{#b}}{{/b}}").unwrap(),
            Template::parse("{{a}} {{#b}}{{/b}}").unwrap()
        );
    }

    #[test]
    fn partials_parse_into_nodes_with_their_indentation() {
        let t = Template::parse("a {{> inline }}\n \t{{>alone}}\r\nb\n{{>last}}").unwrap();
        assert_eq!(
            t.nodes,
            [
                Node::Text("a ".into()),
                Node::Partial {
                    name: "inline".into(),
                    indent: None
                },
                Node::Text("\n".into()),
                Node::Partial {
                    name: "alone".into(),
                    indent: Some(" \t".into())
                },
                Node::Text("b\n".into()),
                Node::Partial {
                    name: "last".into(),
                    indent: Some(String::new())
                },
            ]
        );
        assert!(!t.is_literal());
        assert!(!t.mentions("inline"));
    }

    #[test]
    fn error_messages_read_well() {
        let err = Template::parse("{{#a}}x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unclosed section: `{{#a}}` without a closing `/a` tag at line 1, column 1"
        );
        let err = Template::parse_without_partials("{{> p}}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "partials (`{{> p}}`) are not supported in webhooks at line 1, column 1"
        );
        let err = Template::parse("{{=a=}}").unwrap_err();
        assert!(err.to_string().contains("e.g. `{{=<% %>=}}`"), "{err}");
    }

    #[test]
    fn parsed_once_into_nodes() {
        let t = Template::parse("a {{b.0.c}} {{#d}}{{{.}}}{{/d}}").unwrap();
        assert_eq!(
            t.nodes,
            [
                Node::Text("a ".into()),
                Node::Var {
                    path: Path::Names(vec![
                        Segment {
                            key: "b".into(),
                            index: None
                        },
                        Segment {
                            key: "0".into(),
                            index: Some(0)
                        },
                        Segment {
                            key: "c".into(),
                            index: None
                        },
                    ]),
                    escape: true
                },
                Node::Text(" ".into()),
                Node::Section {
                    path: Path::Names(vec![Segment {
                        key: "d".into(),
                        index: None
                    }]),
                    inverted: false,
                    standalone: false,
                    children: vec![Node::Var {
                        path: Path::Dot,
                        escape: false
                    }],
                },
            ]
        );
        assert_eq!(t.source(), "a {{b.0.c}} {{#d}}{{{.}}}{{/d}}");
        assert_eq!(t.text_len, 3);
    }

    #[test]
    fn literal_prefix_and_mentions() {
        let t =
            Template::parse("https://{{host}}/{{#a.b}}{{PARTICLE_EVENT_JSON}}{{/a.b}}").unwrap();
        assert_eq!(t.literal_prefix(), "https://");
        assert!(!t.is_literal());
        assert!(t.mentions("host") && t.mentions("a") && t.mentions("PARTICLE_EVENT_JSON"));
        assert!(!t.mentions("b"));
        let t = Template::parse("plain {{! comment }}").unwrap();
        assert!(t.is_literal());
        assert_eq!(t.literal_prefix(), "plain ");
    }
}
