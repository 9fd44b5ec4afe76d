//! The page routes: the landing page, chat, the UI page and where it finds the relay, and any
//! other file of `web/` by name (served by [`crate::socket::page`]).

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::socket::page;

/// `GET /`: the landing page.
pub async fn index() -> Response {
    page("index.html")
}

/// `GET /chat`: the chat page.
pub async fn chat() -> Response {
    page("chat.html")
}

/// `GET /ui` and `GET /ui/session/{id}`: the page that renders sidekick components.
pub async fn ui() -> Response {
    page("ui.html")
}

/// What `/ui/config` tells the UI page.
#[derive(Clone, Copy, Debug)]
pub struct UiConfig {
    /// Where the UI relay listens, when it runs.
    pub relay: Option<SocketAddr>,
    /// Whether the server has TLS (the relay is `wss://` then).
    pub tls: bool,
}

/// `GET /ui/config`: where the page finds the relay. `relay` is its WebSocket URL (`wss://` when
/// the server has TLS; `null` when the relay is off); an unspecified bind address (0.0.0.0, ::)
/// is replaced by the host the page was loaded from, and so is a loopback one under TLS when the
/// page was loaded from a loopback name (the certificate names that host, not 127.0.0.1).
pub async fn ui_config(State(ui): State<UiConfig>, headers: HeaderMap) -> Response {
    let tls = ui.tls;
    let page_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_only);
    let relay = ui.relay.map(|addr| {
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
        "port": ui.relay.map(|a| a.port()),
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
        return page("");
    }
    page(path)
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
