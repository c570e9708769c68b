//! Why a webhook operation was refused, in every dialect; the message is
//! what the API and the log show, and the API's status follows the variant.

/// Why a webhook operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The body or definition is not usable; the message names the field
    /// where there is one.
    #[error("{0}")]
    Invalid(String),
    /// A field is not usable.
    #[error("`{field}`: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A secret sent back masked for a new destination.
    #[error(transparent)]
    Moved(#[from] Box<crate::secrets::destination::Moved>),
    /// No webhook of this dialect has this id.
    #[error("no webhook with id {0}")]
    NotFound(String),
    /// No project (group) has this id.
    #[error("no project with id {0}")]
    ProjectNotFound(String),
    /// No thing (device) has this id.
    #[error("no thing with id {0}")]
    ThingNotFound(String),
    /// No group has this id.
    #[error("no group with id {0}")]
    GroupNotFound(String),
    /// The webhook comes from a file, which is where it is changed.
    #[error("webhook {id} is defined by the file {file}: edit or delete the file instead")]
    FromFile {
        /// The webhook's id.
        id: String,
        /// Its file.
        file: String,
    },
    /// The webhook is of another dialect, changed through its own routes.
    #[error(
        "webhook {id} is {dialect}-style: `PUT /v1/webhooks/{id}` takes Particle-style \
         webhooks only; replace it through the {dialect} routes"
    )]
    OtherDialect {
        /// The webhook's id.
        id: String,
        /// `Iottly` or `Mainflux`.
        dialect: &'static str,
    },
    /// The project has as many webhooks as it may.
    #[error("project {project} already has {max} webhooks, the most it may have")]
    Full {
        /// The project.
        project: String,
        /// The limit (`iottly_max_webhooks`).
        max: usize,
    },
    /// The store could not be written or read.
    #[error("keeping webhook {id}: {source}")]
    Store {
        /// The webhook's id.
        id: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The built-in plugin could not be made ready.
    #[error("{0}")]
    Internal(String),
}
