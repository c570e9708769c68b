//! Mustache templates with Particle's semantics: the core mustache spec
//! (interpolation, sections, inverted sections, comments, set delimiters,
//! partials), dotted names that also index arrays (`c.0.ca`), values printed
//! the way node.js prints them, and no lambdas.
//!
//! Partials are rendered only when given ([`Template::render_with_partials`]);
//! webhook definitions refuse them ([`Template::parse_without_partials`]).

mod error;
mod parse;
mod render;
mod scan;
mod standalone;
mod value;

pub use error::{TemplateError, TemplateErrorCause};
pub use parse::{MAX_SECTION_DEPTH, Template};
pub use render::{MAX_PARTIAL_DEPTH, MAX_RENDER_BYTES, MAX_RENDER_STEPS, Partials, RenderLimit};
pub(crate) use value::{write_json, write_json_string};
