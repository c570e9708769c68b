//! Bearer-token authentication of the API, and the token's life: given in
//! the configuration, or generated once and kept in the data directory.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The file in the data directory that keeps a generated token.
pub const TOKEN_FILE: &str = "api-token";

/// The configured token, or the one kept in `data_dir`, or a new one (then
/// kept there, readable by the owner only).
pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> std::io::Result<String> {
    if let Some(token) = configured {
        return Ok(token.to_owned());
    }
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_owned()),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let token = format!("{:032x}", rand::random::<u128>());
    crate::files::write_private(&path, token.as_bytes())?;
    Ok(token)
}

/// Rejects requests without `Authorization: Bearer TOKEN`.
pub async fn require_token(
    State(token): State<Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| token_matches(g, &token)) {
        return next.run(request).await;
    }
    let body = axum::Json(serde_json::json!({
        "error": "missing or wrong bearer token: send Authorization: Bearer TOKEN"
    }));
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        body,
    )
        .into_response()
}

/// Whether `given` is the token, in time that does not depend on where
/// they differ.
pub fn token_matches(given: &str, token: &str) -> bool {
    constant_time_eq(given.as_bytes(), token.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
