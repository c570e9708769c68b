//! Scanning a template's source into tokens (text, line endings, tags),
//! honouring set-delimiter tags as it goes.

use super::error::{TemplateError, TemplateErrorCause, error};

/// A tag as scanned.
#[derive(Debug)]
pub(super) struct Tag<'s> {
    pub(super) kind: Kind,
    /// The name, trimmed; empty for comments and delimiter changes.
    pub(super) name: &'s str,
    /// Byte offset of the tag in the source.
    pub(super) at: usize,
    /// The whole tag as written.
    pub(super) raw: &'s str,
    /// Whether the tag stands alone on its line (set by `strip_standalone`).
    pub(super) standalone: bool,
    /// For a standalone partial, the whitespace before it on its line.
    pub(super) indent: String,
}

/// What a tag does, from its sigil.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Var { escape: bool },
    Section,
    Inverted,
    Close,
    Comment,
    Delimiters,
    Partial,
}

impl Kind {
    /// Tags that may stand alone on a line, which then disappears.
    pub(super) fn may_stand_alone(self) -> bool {
        !matches!(self, Kind::Var { .. })
    }
}

/// One piece of the source.
#[derive(Debug)]
pub(super) enum Token<'s> {
    Text(&'s str),
    /// `\n` or `\r\n`.
    Newline(&'s str),
    Tag(Tag<'s>),
}

/// The delimiters in force: `{{ }}` until a set-delimiter tag changes them.
struct Delimiters {
    open: String,
    close: String,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            open: "{{".to_owned(),
            close: "}}".to_owned(),
        }
    }
}

/// Splits `source` into tokens; a partial tag is an error unless `partials`.
pub(super) fn scan(source: &str, partials: bool) -> Result<Vec<Token<'_>>, TemplateError> {
    let mut tokens = Vec::new();
    let mut delimiters = Delimiters::default();
    let mut pos = 0;
    while let Some(found) = source[pos..].find(delimiters.open.as_str()) {
        let at = pos + found;
        push_text(&mut tokens, &source[pos..at]);
        let tag = read_tag(source, at, &mut delimiters, partials)?;
        pos = at + tag.raw.len();
        tokens.push(Token::Tag(tag));
    }
    push_text(&mut tokens, &source[pos..]);
    Ok(tokens)
}

/// Splits text into lines and line endings.
fn push_text<'s>(tokens: &mut Vec<Token<'s>>, mut text: &'s str) {
    while let Some(i) = text.find('\n') {
        let (line, newline) = if text[..i].ends_with('\r') {
            (&text[..i - 1], &text[i - 1..=i])
        } else {
            (&text[..i], &text[i..=i])
        };
        if !line.is_empty() {
            tokens.push(Token::Text(line));
        }
        tokens.push(Token::Newline(newline));
        text = &text[i + 1..];
    }
    if !text.is_empty() {
        tokens.push(Token::Text(text));
    }
}

/// Reads the tag whose opening delimiter is at byte `at`; a set-delimiter
/// tag changes `delimiters` for the rest of the source.
fn read_tag<'s>(
    source: &'s str,
    at: usize,
    delimiters: &mut Delimiters,
    partials: bool,
) -> Result<Tag<'s>, TemplateError> {
    let inner = at + delimiters.open.len();
    let sigil = source[inner..].chars().next();
    // Triple mustaches and delimiter changes end with their sigil too.
    let closing = match sigil {
        Some('{') => format!("}}{}", delimiters.close),
        Some('=') => format!("={}", delimiters.close),
        _ => delimiters.close.clone(),
    };
    let content_start = match sigil {
        Some('{' | '=' | '&' | '#' | '^' | '/' | '!' | '>') => inner + 1,
        _ => inner,
    };
    let Some(len) = source
        .get(content_start..)
        .and_then(|rest| rest.find(&closing))
    else {
        return Err(error(
            source,
            at,
            TemplateErrorCause::UnclosedTag {
                open: delimiters.open.clone(),
                close: closing,
            },
        ));
    };
    let end = content_start + len + closing.len();
    let raw = &source[at..end];
    let name = source[content_start..content_start + len].trim();
    let refuse = |cause: fn(String) -> TemplateErrorCause| error(source, at, cause(raw.to_owned()));
    let kind = match sigil {
        Some('{') | Some('&') => Kind::Var { escape: false },
        Some('#') => Kind::Section,
        Some('^') => Kind::Inverted,
        Some('/') => Kind::Close,
        Some('!') => Kind::Comment,
        Some('>') if partials => Kind::Partial,
        Some('>') => return Err(refuse(|tag| TemplateErrorCause::Partial { tag })),
        Some('=') => {
            *delimiters = Delimiters::parse(name)
                .ok_or_else(|| refuse(|tag| TemplateErrorCause::BadDelimiters { tag }))?;
            Kind::Delimiters
        }
        _ => Kind::Var { escape: true },
    };
    let name = match kind {
        Kind::Comment | Kind::Delimiters => "",
        _ if name.is_empty() => return Err(refuse(|tag| TemplateErrorCause::EmptyTag { tag })),
        _ => name,
    };
    Ok(Tag {
        kind,
        name,
        at,
        raw,
        standalone: false,
        indent: String::new(),
    })
}

impl Delimiters {
    /// The two delimiters of a set-delimiter tag's content (`<% %>`):
    /// exactly two words, neither holding `=`.
    fn parse(content: &str) -> Option<Delimiters> {
        let mut parts = content.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(open), Some(close), None) if !open.contains('=') && !close.contains('=') => {
                Some(Delimiters {
                    open: open.to_owned(),
                    close: close.to_owned(),
                })
            }
            _ => None,
        }
    }
}
