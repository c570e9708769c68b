//! Why a template does not parse, and where: [`TemplateError`] and its
//! [`TemplateErrorCause`], located by line and column in the source.

use std::fmt;

use super::parse::MAX_SECTION_DEPTH;

/// Why a template does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{cause} at line {line}, column {column}")]
pub struct TemplateError {
    /// What is wrong.
    pub cause: TemplateErrorCause,
    /// 1-based line of the offending tag.
    pub line: usize,
    /// 1-based column (in characters) of the offending tag.
    pub column: usize,
}

/// What is wrong with a template. Tags are quoted as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateErrorCause {
    /// A tag is opened and never closed.
    UnclosedTag {
        /// The opening delimiter, e.g. `{{`.
        open: String,
        /// The closing text that was expected, e.g. `}}`.
        close: String,
    },
    /// A section is opened and never closed.
    UnclosedSection {
        /// The opening tag, e.g. `{{#a}}`.
        tag: String,
        /// The name the closing tag must carry.
        name: String,
    },
    /// A closing tag that closes no open section, or another one.
    MismatchedClose {
        /// The closing tag, e.g. `{{/b}}`.
        tag: String,
        /// The name of the section that is open, if any.
        open: Option<String>,
    },
    /// A set-delimiter tag that does not give two delimiters.
    BadDelimiters {
        /// The tag as written.
        tag: String,
    },
    /// A tag with no name, e.g. `{{}}` or `{{#}}`.
    EmptyTag {
        /// The tag as written.
        tag: String,
    },
    /// A section opened inside [`MAX_SECTION_DEPTH`] others.
    TooDeep {
        /// The opening tag, e.g. `{{#a}}`.
        tag: String,
    },
    /// A partial tag, from [`Template::parse_without_partials`]: edgehook
    /// webhooks have no partials to include.
    Partial {
        /// The tag as written.
        tag: String,
    },
}

impl fmt::Display for TemplateErrorCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnclosedTag { open, close } => {
                write!(f, "unclosed tag: `{open}` without a closing `{close}`")
            }
            Self::UnclosedSection { tag, name } => {
                write!(
                    f,
                    "unclosed section: `{tag}` without a closing `/{name}` tag"
                )
            }
            Self::MismatchedClose { tag, open: None } => {
                write!(f, "`{tag}` closes a section that was never opened")
            }
            Self::MismatchedClose {
                tag,
                open: Some(open),
            } => write!(
                f,
                "mismatched closing tag: `{tag}` where section `{open}` is open"
            ),
            Self::BadDelimiters { tag } => write!(
                f,
                "bad delimiters `{tag}`: expected two delimiters without `=` or spaces, \
                 e.g. `{{{{=<% %>=}}}}`"
            ),
            Self::EmptyTag { tag } => write!(f, "empty tag `{tag}`: a name is needed"),
            Self::TooDeep { tag } => write!(
                f,
                "`{tag}` is nested too deep: more than {MAX_SECTION_DEPTH} sections inside one another"
            ),
            Self::Partial { tag } => {
                write!(f, "partials (`{tag}`) are not supported in webhooks")
            }
        }
    }
}

/// The error `cause` for the tag at byte offset `at` of `source`.
pub(super) fn error(source: &str, at: usize, cause: TemplateErrorCause) -> TemplateError {
    let before = &source[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    TemplateError {
        cause,
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}
