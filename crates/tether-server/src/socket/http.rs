//! The plain HTTP answers the doors share: JSON error bodies, and the pages and scripts of
//! `web/`, embedded at build time and served as they are.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

/// A JSON error body with a stable code: `{"error": code, "message": message}`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// The embedded file at `path` (relative to `web/`).
pub fn file(path: &str) -> Option<&'static [u8]> {
    WEB_FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

/// The embedded file at `path` with its content type (never cached: the page always matches the
/// server), or a JSON 404.
pub fn page(path: &str) -> Response {
    match file(path) {
        Some(body) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        None => error_response(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("no page or file at /{path}"),
        ),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}
