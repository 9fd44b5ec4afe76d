//! The pages and scripts of `web/`, embedded at build time and served as they are.

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

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

/// The embedded file at `path` (relative to `web/`).
pub fn file(path: &str) -> Option<&'static [u8]> {
    WEB_FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

fn serve(path: &str) -> Response {
    match file(path) {
        Some(body) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        None => crate::rest::error_response(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("no page or file at /{path}"),
        ),
    }
}

/// `GET /`: the landing page.
pub async fn index() -> Response {
    serve("index.html")
}

/// `GET /chat`: the chat page.
pub async fn chat() -> Response {
    serve("chat.html")
}

/// `GET /ui` and `GET /ui/session/{id}`: the page that renders sidekick components.
pub async fn ui() -> Response {
    serve("ui.html")
}

/// `GET /ui/config`: where the page finds the relay. `relay` is its WebSocket URL (`wss://` when
/// the server has TLS; `null` when the relay is off); an unspecified bind address (0.0.0.0, ::)
/// is replaced by the host the page was loaded from, and so is a loopback one under TLS when the
/// page was loaded from a loopback name (the certificate names that host, not 127.0.0.1).
pub async fn ui_config(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::state::AppState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let tls = state.config.tls.is_some();
    let page_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_only);
    let relay = state.relay_addr.map(|addr| {
        let host = match page_host {
            Some(page) if addr.ip().is_unspecified() => page,
            None if addr.ip().is_unspecified() => "127.0.0.1".to_owned(),
            Some(page)
                if tls
                    && addr.ip().is_loopback()
                    && crate::guard::is_loopback_host(&page.to_ascii_lowercase()) =>
            {
                page
            }
            _ => match addr.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            },
        };
        let scheme = if tls { "wss" } else { "ws" };
        format!("{scheme}://{host}:{}", addr.port())
    });
    axum::Json(serde_json::json!({
        "relay": relay,
        "port": state.relay_addr.map(|a| a.port()),
    }))
    .into_response()
}

/// `example.com:8700` → `example.com`, `[::1]:8700` → `[::1]`.
fn host_only(host: &str) -> String {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => host[..i].to_owned(),
        _ => host.to_owned(),
    }
}

/// Any other GET: a file of `web/` by name, or a JSON 404.
pub async fn fallback(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.contains("..") {
        return serve("");
    }
    serve(path)
}

#[cfg(test)]
mod tests {
    use super::host_only;

    #[test]
    fn host_only_strips_the_port() {
        assert_eq!(host_only("example.com:8700"), "example.com");
        assert_eq!(host_only("[::1]:8700"), "[::1]");
        assert_eq!(host_only("[::1]"), "[::1]");
        assert_eq!(host_only("localhost"), "localhost");
    }
}
