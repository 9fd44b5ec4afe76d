//! Who may talk to a listener: the Origin policy (a web page on another site must not open a
//! WebSocket to this server: browsers apply no CORS to WebSockets) and the Host policy (a
//! loopback listener must not answer a page whose name was rebound to 127.0.0.1). One axum
//! middleware applies both, on the HTTP router (every route and the embedder's fallback) and on
//! the UI relay's router. The rules are in `docs/protocol/common.md`.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, counter};

/// Distinct refused origins/hosts logged per listener; later ones are only counted.
const MAX_LOGGED: usize = 256;
/// Longest origin or host echoed in a refusal (they are visible ASCII: `to_str` checked).
const MAX_ECHO: usize = 200;

/// One entry of `--allowed-origins`: an origin, a pattern of origins, `*` or `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: every origin.
    Any,
    /// `null`: the opaque origin of sandboxed frames and `file:` pages.
    Null,
    /// `scheme://host[:port]`, where host may be `*` or `*.suffix` and port may be `*`.
    Match {
        /// Lower-case scheme.
        scheme: String,
        /// Which hosts.
        host: HostMatch,
        /// Which ports (`Exact(None)`: no port, for schemes without a default one).
        port: PortMatch,
    },
}

/// The host part of an origin pattern or an `--allowed-hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// `*`.
    Any,
    /// A lower-case name or address (IPv6 in brackets).
    Exact(String),
    /// `*.example.com`, kept as `.example.com`: its subdomains, not the name itself.
    Subdomains(String),
}

/// The port part of an origin pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMatch {
    /// `:*`.
    Any,
    /// This port, the scheme's default when none was written.
    Exact(Option<u16>),
}

impl HostMatch {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Any => true,
            HostMatch::Exact(h) => h == host,
            HostMatch::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }

    fn parse(text: &str) -> Result<HostMatch, String> {
        let text = text.trim_end_matches('.').to_ascii_lowercase();
        if text == "*" {
            return Ok(HostMatch::Any);
        }
        if let Some(suffix) = text.strip_prefix("*.") {
            valid_name(suffix)?;
            return Ok(HostMatch::Subdomains(format!(".{suffix}")));
        }
        if let Ok(ip) = text.parse::<Ipv6Addr>() {
            return Ok(HostMatch::Exact(format!("[{ip}]")));
        }
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let ip: Ipv6Addr = inner
                .parse()
                .map_err(|_| format!("{text:?} is not an IPv6 address"))?;
            return Ok(HostMatch::Exact(format!("[{ip}]")));
        }
        valid_name(&text)?;
        Ok(HostMatch::Exact(text))
    }
}

/// A host name or IPv4 address as a URL carries it: no port, no user, no path.
fn valid_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a host name (letters, digits, '-', '.'; no port or path)"
        ))
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

fn valid_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

impl FromStr for OriginPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<OriginPattern, String> {
        let text = s.trim();
        match text {
            "*" => return Ok(OriginPattern::Any),
            "null" => return Ok(OriginPattern::Null),
            _ => {}
        }
        let bad = |why: &str| {
            format!(
                "allowed origin {text:?}: {why} (expected scheme://host[:port], e.g. \
                 https://app.example.com, http://localhost:*, https://*.example.com, or *)"
            )
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if !valid_scheme(&scheme) {
            return Err(bad("bad scheme"));
        }
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("an origin has no path, query or user"));
        }
        // The port is after the last ':' outside brackets.
        let split = match rest.rfind(':') {
            Some(i) if !rest[i..].contains(']') => Some(i),
            _ => None,
        };
        let (host, port) = match split {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let host = HostMatch::parse(host).map_err(|e| bad(&e))?;
        let port = match port {
            None => PortMatch::Exact(default_port(&scheme)),
            Some("*") => PortMatch::Any,
            Some(p) => PortMatch::Exact(Some(p.parse().map_err(|_| bad("bad port"))?)),
        };
        Ok(OriginPattern::Match { scheme, host, port })
    }
}

impl OriginPattern {
    fn matches(&self, origin: &Origin) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Null => origin.null,
            OriginPattern::Match { scheme, host, port } => {
                !origin.null
                    && *scheme == origin.scheme
                    && host.matches(&origin.host)
                    && match port {
                        PortMatch::Any => true,
                        PortMatch::Exact(p) => *p == origin.port,
                    }
            }
        }
    }
}

/// An `--allowed-hosts` entry: a name or address (any port) that a loopback listener answers
/// besides the loopback ones; `*` turns the Host check off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(HostMatch);

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<HostPattern, String> {
        let text = s.trim();
        let looks_like_port = text.parse::<Ipv6Addr>().is_err()
            && match text.rfind(':') {
                Some(i) => !text[i..].contains(']'),
                None => false,
            };
        if looks_like_port || text.contains(['/', '@']) {
            return Err(format!(
                "allowed host {text:?}: give a name or address without port or path \
                 (e.g. myhost.local, 192.168.1.5, *.example.com, or *)"
            ));
        }
        HostMatch::parse(text)
            .map(HostPattern)
            .map_err(|e| format!("allowed host {text:?}: {e}"))
    }
}

/// Parses a list of `--allowed-origins` / `--allowed-hosts` entries; empty entries are skipped,
/// so `--allowed-origins ''` is the empty list.
pub fn parse_list<T: FromStr<Err = String>>(entries: &[String]) -> Result<Vec<T>, String> {
    entries
        .iter()
        .flat_map(|e| e.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::parse)
        .collect()
}

/// The origins admitted when `--allowed-origins` is not given (besides same-origin): pages
/// served from this machine.
pub fn default_origins() -> Vec<OriginPattern> {
    let mut out = Vec::new();
    for scheme in ["http", "https"] {
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            out.push(OriginPattern::Match {
                scheme: scheme.into(),
                host: HostMatch::Exact(host.into()),
                port: PortMatch::Any,
            });
        }
    }
    out
}

/// The relay's extra default: the Sidekick VS Code panel (`vscode-webview://<id>`).
fn vscode_webview() -> OriginPattern {
    OriginPattern::Match {
        scheme: "vscode-webview".into(),
        host: HostMatch::Any,
        port: PortMatch::Any,
    }
}

/// An `Origin` header, parsed.
#[derive(Debug)]
struct Origin {
    null: bool,
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// `scheme://host[:port]` exactly, as browsers send it; `None` when malformed.
    fn parse(text: &str) -> Option<Origin> {
        if text == "null" {
            return Some(Origin {
                null: true,
                scheme: String::new(),
                host: String::new(),
                port: None,
            });
        }
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if !valid_scheme(&scheme) {
            return None;
        }
        let (host, port) = parse_authority(rest)?;
        Some(Origin {
            port: port.or(default_port(&scheme)),
            null: false,
            scheme,
            host,
        })
    }
}

/// `host[:port]` (a Host header, or an origin after its scheme) as a lower-case host (IPv6 in
/// brackets, a trailing dot dropped) and a port; `None` when malformed.
fn parse_authority(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty() || text.contains(['/', '?', '#', '@']) {
        return None;
    }
    let auth = Authority::from_str(text).ok()?;
    let port = match auth.port() {
        None => None,
        Some(p) => Some(p.as_str().parse::<u16>().ok()?),
    };
    let host = auth.host().trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => format!("[{}]", inner.parse::<Ipv6Addr>().ok()?),
        None => host,
    };
    Some((host, port))
}

/// Whether `host` (lower case, as [`parse_authority`] returns it) names this machine's loopback
/// interface.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok_and(|ip| {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        });
    }
    host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// The origin of this server's `/ui` page, which the relay admits from whatever port the page
/// is served on (the relay listens on another port, so same-origin does not cover it).
#[derive(Debug, Clone)]
struct PageOrigin {
    scheme: &'static str,
    http: SocketAddr,
}

impl PageOrigin {
    fn matches(&self, origin: &Origin, request_host: Option<&str>) -> bool {
        if origin.null || origin.scheme != self.scheme || origin.port != Some(self.http.port()) {
            return false;
        }
        let ip = self.http.ip();
        let bound = match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        request_host == Some(origin.host.as_str())
            || (!ip.is_unspecified() && origin.host == bound)
            || (is_loopback_host(&origin.host) && (ip.is_loopback() || ip.is_unspecified()))
    }
}

/// The settings a [`Guard`] is built from (`Config` fields).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `--allowed-origins`; `None`: the defaults.
    pub allowed_origins: Option<Vec<OriginPattern>>,
    /// `--allowed-hosts`.
    pub allowed_hosts: Vec<HostPattern>,
}

impl Policy {
    /// Whether every origin is admitted (`*`), worth a warning at start.
    pub fn admits_every_origin(&self) -> bool {
        self.allowed_origins
            .as_ref()
            .is_some_and(|l| l.contains(&OriginPattern::Any))
    }
}

/// Why a request was refused: its 403 line and its metric label.
#[derive(Debug)]
struct Refusal {
    reason: &'static str,
    /// What is logged once (the offending value, or a description).
    key: String,
    message: String,
}

/// One listener's checks, its metrics and its "already logged" set.
pub struct Guard {
    listener: &'static str,
    /// Scheme of pages served by this listener (same-origin).
    scheme: &'static str,
    allowed: Vec<OriginPattern>,
    page: Option<PageOrigin>,
    /// `None` when the listener is not on loopback (or `--allowed-hosts *`).
    hosts: Option<Vec<HostMatch>>,
    logged: Mutex<HashSet<String>>,
    refused_origin: Counter,
    refused_host: Counter,
}

impl Guard {
    /// The HTTP listener's guard: same-origin pages, the allowed (or default) origins.
    pub fn http(policy: &Policy, addr: SocketAddr, tls: bool) -> Guard {
        let scheme = if tls { "https" } else { "http" };
        let allowed = policy
            .allowed_origins
            .clone()
            .unwrap_or_else(default_origins);
        Guard::new("http", scheme, allowed, None, policy, addr)
    }

    /// The relay's guard (at `addr`, with TLS or not): as the HTTP listener's, plus the `/ui`
    /// page of the HTTP listener at `http` and, by default, the Sidekick VS Code panel.
    pub fn relay(
        policy: &Policy,
        addr: SocketAddr,
        tls: bool,
        http: SocketAddr,
        http_tls: bool,
    ) -> Guard {
        let allowed = policy.allowed_origins.clone().unwrap_or_else(|| {
            let mut d = default_origins();
            d.push(vscode_webview());
            d
        });
        let page = PageOrigin {
            scheme: if http_tls { "https" } else { "http" },
            http,
        };
        let scheme = if tls { "https" } else { "http" };
        Guard::new("relay", scheme, allowed, Some(page), policy, addr)
    }

    fn new(
        listener: &'static str,
        scheme: &'static str,
        allowed: Vec<OriginPattern>,
        page: Option<PageOrigin>,
        policy: &Policy,
        addr: SocketAddr,
    ) -> Guard {
        let hosts = policy.allowed_hosts.iter().map(|h| h.0.clone()).collect();
        let hosts = (addr.ip().is_loopback()
            && !policy.allowed_hosts.contains(&HostPattern(HostMatch::Any)))
        .then_some(hosts);
        let refused_origin =
            counter!("tether_refused_total", "reason" => "origin", "listener" => listener);
        let refused_host =
            counter!("tether_refused_total", "reason" => "host", "listener" => listener);
        // Listed from the start, so a scrape shows 0 rather than nothing.
        refused_origin.increment(0);
        refused_host.increment(0);
        Guard {
            listener,
            scheme,
            allowed,
            page,
            hosts,
            logged: Mutex::new(HashSet::new()),
            refused_origin,
            refused_host,
        }
    }

    /// The Host check (every request), then the Origin check (WebSocket upgrades and requests
    /// that change state, so that a page elsewhere cannot post a form or a `text/plain` fetch to
    /// REST either).
    fn check(&self, req: &Request) -> Result<(), Refusal> {
        let headers = req.headers();
        let host = request_host(headers)?;
        if let Some(allowed) = &self.hosts {
            // The URI's authority too: an absolute-form target names a host of its own.
            let named = [host.as_ref().map(|(h, _)| h.clone()), uri_host(req)?];
            for h in named.into_iter().flatten() {
                if !is_loopback_host(&h) && !allowed.iter().any(|m| m.matches(&h)) {
                    return Err(Refusal {
                        reason: "host",
                        key: format!("host {h}"),
                        message: format!(
                            "host {} is not allowed on this loopback listener (see --allowed-hosts)",
                            echo(&h)
                        ),
                    });
                }
            }
        }
        if !is_upgrade(headers) && req.method().is_safe() {
            return Ok(());
        }
        let mut values = headers.get_all(header::ORIGIN).iter();
        let Some(value) = values.next() else {
            return Ok(()); // not a browser: Python, websocat, sidekick-py
        };
        let malformed = || Refusal {
            reason: "origin",
            key: "malformed origin".into(),
            message: "malformed Origin header (see --allowed-origins)".into(),
        };
        if values.next().is_some() {
            return Err(malformed());
        }
        let text = value.to_str().map_err(|_| malformed())?;
        let origin = Origin::parse(text).ok_or_else(malformed)?;
        let request_host = host.as_ref().map(|(h, _)| h.as_str());
        let same_origin = host.as_ref().is_some_and(|(h, p)| {
            !origin.null
                && origin.scheme == self.scheme
                && origin.host == *h
                && origin.port == p.or(default_port(self.scheme))
        });
        let admitted = same_origin
            || self.allowed.iter().any(|p| p.matches(&origin))
            || self
                .page
                .as_ref()
                .is_some_and(|p| p.matches(&origin, request_host));
        if admitted {
            Ok(())
        } else {
            Err(Refusal {
                reason: "origin",
                key: format!("origin {text}"),
                message: format!(
                    "origin {} is not allowed (see --allowed-origins)",
                    echo(text)
                ),
            })
        }
    }

    /// Counts, logs (once per distinct value) and answers a refusal.
    fn refuse(&self, r: Refusal) -> Response {
        match r.reason {
            "host" => self.refused_host.increment(1),
            _ => self.refused_origin.increment(1),
        }
        let first = {
            let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
            if logged.len() < MAX_LOGGED {
                logged.insert(echo(&r.key).to_owned())
            } else {
                false
            }
        };
        if first {
            tracing::warn!(
                "{} listener refused a request: {} (logged once; counted in tether_refused_total)",
                self.listener,
                r.message
            );
        }
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", r.message),
        )
            .into_response()
    }
}

/// The request's `Host` as (host, port); `Ok(None)` without one (HTTP/1.0 clients, not
/// browsers); a refusal when it is repeated, not text or malformed.
fn request_host(headers: &HeaderMap) -> Result<Option<(String, Option<u16>)>, Refusal> {
    let malformed = || Refusal {
        reason: "host",
        key: "malformed host".into(),
        message: "malformed Host header".into(),
    };
    let mut values = headers.get_all(header::HOST).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(malformed());
    }
    let text = value.to_str().map_err(|_| malformed())?;
    parse_authority(text).map(Some).ok_or_else(malformed)
}

fn uri_host(req: &Request) -> Result<Option<String>, Refusal> {
    match req.uri().authority() {
        None => Ok(None),
        Some(a) => match parse_authority(a.as_str()) {
            Some((h, _)) => Ok(Some(h)),
            None => Err(Refusal {
                reason: "host",
                key: "malformed host".into(),
                message: "malformed request target".into(),
            }),
        },
    }
}

/// Whether the request asks for a protocol switch: any `Upgrade` header or WebSocket key, a
/// superset of what the WebSocket extractor accepts.
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) || headers.contains_key(header::SEC_WEBSOCKET_KEY)
}

/// At most [`MAX_ECHO`] bytes of a header value already known to be visible ASCII.
fn echo(text: &str) -> &str {
    match text.char_indices().nth(MAX_ECHO) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// The middleware: refuses with 403 what the listener's [`Guard`] does not admit.
pub async fn enforce(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    match guard.check(&req) {
        Ok(()) => next.run(req).await,
        Err(r) => guard.refuse(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().uri("/ws/rooms");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    fn upgrade(host: &str, origin: Option<&str>) -> Request {
        let mut h = vec![("host", host), ("upgrade", "websocket")];
        if let Some(o) = origin {
            h.push(("origin", o));
        }
        req(&h)
    }

    fn http_guard(policy: &Policy) -> Guard {
        Guard::http(policy, "127.0.0.1:8700".parse().unwrap(), false)
    }

    #[test]
    fn loopback_names_in_any_case() {
        for h in ["localhost", "LOCALHOST", "127.0.0.1", "127.0.0.2", "[::1]"] {
            assert!(is_loopback_host(&h.to_ascii_lowercase()), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1",
            "[2001:db8::1]",
            "localhost.example",
        ] {
            assert!(!is_loopback_host(&h.to_ascii_lowercase()), "{h}");
        }
    }

    #[test]
    fn state_changing_requests_are_checked_like_upgrades() {
        let g = http_guard(&Policy::default());
        let call = |method: &str, origin: Option<&str>| {
            let mut b = Request::builder()
                .method(method)
                .uri("/messages/send")
                .header("host", "127.0.0.1:8700");
            if let Some(o) = origin {
                b = b.header("origin", o);
            }
            g.check(&b.body(axum::body::Body::empty()).unwrap())
        };
        // A cross-site form or text/plain fetch: refused before the handler.
        assert!(call("POST", Some("http://evil.example")).is_err());
        assert!(call("DELETE", Some("http://evil.example")).is_err());
        // This server's pages, loopback pages and clients without Origin: admitted.
        assert!(call("POST", Some("http://127.0.0.1:8700")).is_ok());
        assert!(call("POST", Some("http://localhost:3000")).is_ok());
        assert!(call("POST", None).is_ok());
        // Reads are not checked for their Origin (no CORS headers: the page cannot read them).
        assert!(call("GET", Some("http://evil.example")).is_ok());
    }

    #[test]
    fn default_origins_are_same_origin_and_loopback_pages() {
        let g = http_guard(&Policy::default());
        let ok = |host: &str, origin: Option<&str>| g.check(&upgrade(host, origin)).is_ok();
        assert!(ok("127.0.0.1:8700", None));
        assert!(ok("127.0.0.1:8700", Some("http://127.0.0.1:8700")));
        assert!(ok("127.0.0.1:8700", Some("http://localhost:3000")));
        assert!(ok("127.0.0.1:8700", Some("https://LOCALHOST")));
        assert!(ok("127.0.0.1:8700", Some("http://[::1]:5173")));
        assert!(ok("localhost:8700", Some("http://localhost:8700")));
        assert!(!ok("127.0.0.1:8700", Some("http://evil.example")));
        assert!(!ok("127.0.0.1:8700", Some("http://127.0.0.2:8700")));
        assert!(!ok("127.0.0.1:8700", Some("null")));
        assert!(!ok("127.0.0.1:8700", Some("http://localhost.evil.example")));
        assert!(!ok("127.0.0.1:8700", Some("vscode-webview://abc")));
        // Malformed: refused, never a panic.
        for bad in [
            "",
            "evil",
            "http://",
            "http://a/b",
            "http://u@a",
            "http://a:99999",
            "1http://a",
            "http://[zz]",
        ] {
            assert!(!ok("127.0.0.1:8700", Some(bad)), "{bad:?}");
        }
        // Not an upgrade: the Origin is not looked at.
        assert!(
            g.check(&req(&[
                ("host", "127.0.0.1:8700"),
                ("origin", "http://evil.example")
            ]))
            .is_ok()
        );
    }

    #[test]
    fn same_origin_follows_the_host_and_the_listener_scheme() {
        let g = Guard::http(
            &Policy {
                allowed_origins: Some(vec![]),
                allowed_hosts: vec!["*".parse().unwrap()],
            },
            "0.0.0.0:443".parse().unwrap(),
            true,
        );
        let ok = |host: &str, origin: &str| g.check(&upgrade(host, Some(origin))).is_ok();
        assert!(ok("app.example.com", "https://app.example.com"));
        assert!(ok("app.example.com:443", "https://app.example.com"));
        assert!(ok("App.Example.com.", "https://app.example.com:443"));
        assert!(!ok("app.example.com", "http://app.example.com"));
        assert!(!ok("app.example.com", "https://app.example.com:8443"));
        // The list replaced the loopback defaults.
        assert!(!ok("app.example.com", "http://localhost:3000"));
    }

    #[test]
    fn patterns() {
        let p = |s: &str| s.parse::<OriginPattern>();
        let o = |s: &str| Origin::parse(s).unwrap();
        assert!(
            p("https://app.example.com")
                .unwrap()
                .matches(&o("https://app.example.com:443"))
        );
        assert!(
            !p("https://app.example.com")
                .unwrap()
                .matches(&o("https://app.example.com:8443"))
        );
        assert!(
            p("http://localhost:*")
                .unwrap()
                .matches(&o("http://localhost:1"))
        );
        assert!(
            p("https://*.example.com")
                .unwrap()
                .matches(&o("https://a.b.example.com"))
        );
        assert!(
            !p("https://*.example.com")
                .unwrap()
                .matches(&o("https://example.com"))
        );
        assert!(
            !p("https://*.example.com")
                .unwrap()
                .matches(&o("https://evilexample.com"))
        );
        assert!(
            p("vscode-webview://*")
                .unwrap()
                .matches(&o("vscode-webview://1a2b3c"))
        );
        assert!(
            p("http://[::1]:8000")
                .unwrap()
                .matches(&o("http://[0:0::1]:8000"))
        );
        assert!(p("*").unwrap().matches(&o("http://evil.example")));
        assert!(p("null").unwrap().matches(&o("null")));
        assert!(!p("null").unwrap().matches(&o("http://evil.example")));
        for bad in [
            "",
            "example.com",
            "https://a.com/",
            "https://a.com:x",
            "ftp//a",
            "https://u@a",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        let list: Vec<OriginPattern> =
            parse_list(&["http://a.com, https://b.com".into(), "".into()]).unwrap();
        assert_eq!(list.len(), 2);
        assert!(parse_list::<HostPattern>(&["myhost:8700".into()]).is_err());
        assert!(parse_list::<HostPattern>(&["::1".into(), "[::1]".into(), "*.lan".into()]).is_ok());
    }

    #[test]
    fn loopback_listeners_refuse_foreign_hosts() {
        let g = http_guard(&Policy::default());
        let host_ok = |h: &str| g.check(&req(&[("host", h)])).is_ok();
        for h in [
            "127.0.0.1:8700",
            "localhost",
            "a.localhost:1",
            "127.9.9.9",
            "[::1]:80",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(host_ok(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:8700",
            "10.0.0.1",
            "localhost.evil.example",
            "",
            "a b",
            "[::1",
        ] {
            assert!(!host_ok(h), "{h}");
        }
        assert!(g.check(&req(&[])).is_ok(), "no Host: not a browser");
        let two = {
            let mut r = req(&[("host", "127.0.0.1")]);
            r.headers_mut()
                .append(header::HOST, "evil.example".parse().unwrap());
            r
        };
        assert!(g.check(&two).is_err());
        let mut not_text = req(&[]);
        not_text.headers_mut().insert(
            header::HOST,
            axum::http::HeaderValue::from_bytes(b"\xffevil").unwrap(),
        );
        assert!(g.check(&not_text).is_err());
        let mut origin_not_text = upgrade("127.0.0.1", None);
        origin_not_text.headers_mut().insert(
            header::ORIGIN,
            axum::http::HeaderValue::from_bytes(b"http://\xfe").unwrap(),
        );
        assert!(g.check(&origin_not_text).is_err());
        let allowed = http_guard(&Policy {
            allowed_origins: None,
            allowed_hosts: parse_list(&["evil.example".into(), "*.lan".into()]).unwrap(),
        });
        assert!(
            allowed
                .check(&req(&[("host", "EVIL.example:8700")]))
                .is_ok()
        );
        assert!(allowed.check(&req(&[("host", "pi.lan")])).is_ok());
        assert!(allowed.check(&req(&[("host", "other.example")])).is_err());
        // Not on loopback: no Host check.
        let open = Guard::http(&Policy::default(), "0.0.0.0:8700".parse().unwrap(), false);
        assert!(open.check(&req(&[("host", "evil.example")])).is_ok());
    }

    #[test]
    fn relay_admits_the_ui_page_and_vscode() {
        let http: SocketAddr = "127.0.0.1:8700".parse().unwrap();
        let g = Guard::relay(
            &Policy::default(),
            "127.0.0.1:5163".parse().unwrap(),
            false,
            http,
            false,
        );
        let ok = |host: &str, origin: &str| g.check(&upgrade(host, Some(origin))).is_ok();
        assert!(ok("127.0.0.1:5163", "vscode-webview://0abc"));
        assert!(ok("127.0.0.1:5163", "http://127.0.0.1:8700"));
        assert!(!ok("127.0.0.1:5163", "http://evil.example:8700"));
        // With a list of its own, the /ui page still gets in (it is this server's), loopback
        // pages on other ports do not.
        let strict = Policy {
            allowed_origins: Some(vec![]),
            allowed_hosts: vec![],
        };
        let g = Guard::relay(
            &strict,
            "127.0.0.1:5163".parse().unwrap(),
            false,
            http,
            false,
        );
        let ok = |host: &str, origin: &str| g.check(&upgrade(host, Some(origin))).is_ok();
        assert!(ok("127.0.0.1:5163", "http://127.0.0.1:8700"));
        assert!(ok("127.0.0.1:5163", "http://localhost:8700"));
        assert!(!ok("127.0.0.1:5163", "https://127.0.0.1:8700"));
        assert!(!ok("127.0.0.1:5163", "http://127.0.0.1:3000"));
        assert!(!ok("127.0.0.1:5163", "vscode-webview://0abc"));
        // A relay on every interface: the page from the host the relay was dialled at.
        let g = Guard::relay(
            &strict,
            "0.0.0.0:5163".parse().unwrap(),
            false,
            "0.0.0.0:8700".parse().unwrap(),
            true,
        );
        let ok = |host: &str, origin: &str| g.check(&upgrade(host, Some(origin))).is_ok();
        assert!(ok("192.168.1.5:5163", "https://192.168.1.5:8700"));
        assert!(!ok("192.168.1.5:5163", "https://192.168.1.6:8700"));
    }

    #[test]
    fn refusals_are_one_line_and_bounded() {
        let g = http_guard(&Policy::default());
        let long = format!("http://{}.example", "a".repeat(5000));
        let Err(r) = g.check(&upgrade("127.0.0.1", Some(&long))) else {
            panic!("admitted");
        };
        assert!(r.message.len() < 300 && !r.message.contains('\n'));
        for i in 0..(MAX_LOGGED + 10) {
            let o = format!("http://evil{i}.example");
            let Err(r) = g.check(&upgrade("127.0.0.1", Some(&o))) else {
                panic!("admitted");
            };
            let resp = g.refuse(r);
            assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        }
        assert_eq!(g.logged.lock().unwrap().len(), MAX_LOGGED);
    }
}
