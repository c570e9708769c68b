//! Device responses: chunking (pure) and publishing.

pub mod chunk;
pub mod publish;

pub use publish::Responder;
