//! Standalone tags: a line that holds only sections, inverted sections,
//! closings, comments, delimiter changes or partials (and whitespace) loses
//! its indentation and its line ending, as the mustache spec requires; a
//! standalone partial keeps its indentation, to prefix each of its lines.

use super::scan::{Kind, Token};

/// Drops the indentation and the line ending around every line that holds
/// only standalone tags and whitespace.
pub(super) fn strip_standalone(tokens: Vec<Token<'_>>) -> Vec<Token<'_>> {
    let mut kept = Vec::with_capacity(tokens.len());
    let mut line = Vec::new();
    for token in tokens {
        let newline = matches!(token, Token::Newline(_));
        line.push(token);
        if newline {
            flush_line(&mut line, &mut kept);
        }
    }
    flush_line(&mut line, &mut kept);
    kept
}

/// Moves one line's tokens to `kept`, without its whitespace and line ending
/// if it is standalone.
fn flush_line<'s>(line: &mut Vec<Token<'s>>, kept: &mut Vec<Token<'s>>) {
    let mut tags = 0;
    let only_standalone = line.iter().all(|token| match token {
        Token::Text(text) => text.bytes().all(|b| b == b' ' || b == b'\t'),
        Token::Newline(_) => true,
        Token::Tag(tag) => {
            tags += 1;
            tag.kind.may_stand_alone()
        }
    });
    let standalone = only_standalone && tags > 0;
    let mut indent = String::new();
    for mut token in line.drain(..) {
        match &mut token {
            Token::Tag(tag) if standalone => {
                tag.standalone = true;
                if tag.kind == Kind::Partial {
                    tag.indent.clone_from(&indent);
                }
            }
            Token::Text(text) if standalone => {
                indent.push_str(text);
                continue;
            }
            Token::Newline(_) if standalone => continue,
            _ => {}
        }
        kept.push(token);
    }
}
