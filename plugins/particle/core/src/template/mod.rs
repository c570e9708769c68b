//! Mustache templates with Particle's semantics: the core mustache spec
//! (interpolation, sections, inverted sections, comments, set delimiters),
//! dotted names that also index arrays (`c.0.ca`), values printed the way
//! node.js prints them, and no partials or lambdas.

mod parse;
mod render;
mod value;

pub use parse::{Template, TemplateError, TemplateErrorCause};
pub(crate) use value::{write_json, write_json_string};
