//! `edgehook deliveries list|show|replay`: the delivery history of a
//! running host, through its API (CONTRACT section 15).

use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::{Value, json};

use super::{ApiClient, RemoteError};

/// Which attempts: every option narrows.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Selection {
    /// One webhook (its id, or a plugin's name)
    #[arg(long)]
    pub webhook: Option<String>,
    /// One device
    #[arg(long)]
    pub device: Option<String>,
    /// One outcome: delivered, retrying, gave_up, refused
    #[arg(long)]
    pub outcome: Option<String>,
    /// From this time on: RFC 3339, or a time ago such as 90m
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this time: RFC 3339, or a time ago
    #[arg(long)]
    pub until: Option<String>,
}

/// What to do with the history.
#[derive(Debug, clap::Subcommand)]
pub enum DeliveriesCommand {
    /// List attempts, newest first
    List {
        /// Which attempts
        #[command(flatten)]
        selection: Selection,
        /// Only the dead letters: the last attempt of each event whose webhook gave up
        #[arg(long)]
        dead: bool,
        /// Attempts on the page
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Where the page starts (the `next` a previous list printed)
        #[arg(long)]
        cursor: Option<String>,
        /// One JSON object a line instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show an event and every attempt of it, requests and responses
    Show {
        /// The event id (its webhook-id)
        event_id: String,
    },
    /// Run events again through their webhooks: one event, or every one a selection picks
    Replay {
        /// The event id; without it, `--since` is required
        event_id: Option<String>,
        /// Which events, without an event id
        #[command(flatten)]
        selection: Selection,
    },
}

/// Runs a history command; what to print.
pub async fn deliveries(
    command: DeliveriesCommand,
    client: &ApiClient,
) -> Result<String, RemoteError> {
    match command {
        DeliveriesCommand::List {
            selection,
            dead,
            limit,
            cursor,
            json,
        } => {
            let route = if dead {
                "/v1/dead-letters"
            } else {
                "/v1/deliveries"
            };
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", &limit.to_string());
            for (key, value) in selection.pairs() {
                query.append_pair(key, value);
            }
            if let Some(cursor) = &cursor {
                query.append_pair("cursor", cursor);
            }
            let page = client
                .call(
                    http::Method::GET,
                    &format!("{route}?{}", query.finish()),
                    None,
                )
                .await?;
            let list = if dead { "dead_letters" } else { "deliveries" };
            let attempts = page[list].as_array().map(Vec::as_slice).unwrap_or_default();
            let mut out = String::new();
            if json {
                for a in attempts {
                    let _ = writeln!(out, "{a}");
                }
            } else {
                out.push_str(&table(attempts));
                if let Some(next) = page["next_cursor"].as_str() {
                    let _ = writeln!(out, "next: --cursor {next}");
                }
            }
            Ok(out)
        }
        DeliveriesCommand::Show { event_id } => {
            let shown = client
                .call(
                    http::Method::GET,
                    &format!("/v1/deliveries/{event_id}"),
                    None,
                )
                .await?;
            Ok(format!("{shown:#}\n"))
        }
        DeliveriesCommand::Replay {
            event_id,
            selection,
        } => {
            let (path, body) = match event_id {
                Some(id) => (format!("/v1/deliveries/{id}/replay"), None),
                None => {
                    let mut body = json!({});
                    for (key, value) in selection.pairs() {
                        body[key] = Value::String(value.to_owned());
                    }
                    (
                        "/v1/deliveries/replay".to_owned(),
                        Some(Bytes::from(body.to_string())),
                    )
                }
            };
            let replayed = client.call(http::Method::POST, &path, body).await?;
            Ok(format!(
                "Replaying {} delivery(ies)\n",
                replayed["replayed"].as_u64().unwrap_or_default()
            ))
        }
    }
}

impl Selection {
    fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("webhook", &self.webhook),
            ("device", &self.device),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value.as_deref()?)))
    }
}

/// Attempts as a table: time, outcome, attempt, webhook, device, event,
/// status or error, event id.
fn table(attempts: &[Value]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<9} {:>3} {:<26} {:<16} {:<16} {:<24} EVENT ID",
        "AT", "OUTCOME", "#", "WEBHOOK", "DEVICE", "EVENT", "ANSWER"
    );
    for a in attempts {
        let answer = match (a["response"]["status"].as_u64(), a["error"].as_str()) {
            (Some(status), _) => format!("status {status}"),
            (None, Some(error)) => error.chars().take(24).collect(),
            (None, None) => String::new(),
        };
        let text = |key: &str| a[key].as_str().unwrap_or_default().to_owned();
        let _ = writeln!(
            out,
            "{:<24} {:<9} {:>3} {:<26} {:<16} {:<16} {:<24} {}",
            text("at"),
            text("outcome"),
            a["attempt"],
            text("webhook"),
            text("device_id"),
            text("event"),
            answer,
            text("event_id"),
        );
    }
    out
}
