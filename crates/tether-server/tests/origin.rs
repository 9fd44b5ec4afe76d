//! Cross-site WebSocket hijacking and DNS rebinding, against the real binary: a browser-like
//! client with a foreign `Origin` is refused (403, nothing run) on every door (`/ws/rooms`,
//! `/ws/sync/demo`, `/ws/claude`, `/ws/exec/<name>`, the UI relay), clients without an Origin,
//! same-origin pages and loopback pages still work, a rebinding `Host` is refused on loopback
//! listeners, `--allowed-origins` / `--allowed-hosts` widen or narrow that, refusals are counted
//! and logged once, and exec endpoints with `token_env` want their token.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{
    HttpResponse, Server, ServerBuilder, TIMEOUT, TempDir, eventually, parse_http_response,
    tcp_connect,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const EVIL: &str = "http://evil.example";
const TOKEN: &str = "tok-9f8e7d6c5b4a";
const TOKEN_VAR: &str = "TETHER_ORIGIN_TEST_TOKEN";

type Ws = WebSocketStream<TcpStream>;

/// An upgrade refused before the handshake: its HTTP status and body.
#[derive(Debug)]
struct Refused {
    status: u16,
    body: String,
}

/// Opens a WebSocket to `path` on `addr`, as a browser would: with `Origin: origin` when given
/// and `Host: host` (default: `addr`), plus `headers`.
async fn dial(
    addr: SocketAddr,
    path: &str,
    origin: Option<&str>,
    host: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<Ws, Refused> {
    let host = host.map_or_else(|| addr.to_string(), str::to_owned);
    let mut req = format!("ws://{host}{path}")
        .into_client_request()
        .expect("a valid WebSocket URL");
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(o).expect("origin value"));
    }
    for (k, v) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
            .expect("header name");
        req.headers_mut()
            .insert(name, HeaderValue::from_str(v).expect("header value"));
    }
    let stream = tcp_connect(addr).await;
    match tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(req, stream))
        .await
        .expect("handshake answered in time")
    {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(Refused {
            status: resp.status().as_u16(),
            body: resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        }),
        Err(e) => panic!("handshake with {addr}{path} failed: {e}"),
    }
}

#[track_caller]
fn assert_refused(r: Result<Ws, Refused>, status: u16, what: &str) -> String {
    match r {
        Ok(_) => panic!("{what}: the upgrade was accepted"),
        Err(r) => {
            assert_eq!(r.status, status, "{what}: {r:?}");
            r.body
        }
    }
}

#[track_caller]
fn assert_admitted(r: Result<Ws, Refused>, what: &str) -> Ws {
    r.unwrap_or_else(|r| panic!("{what}: refused with {r:?}"))
}

/// The next text frame.
async fn text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// `hello` on `/ws/rooms` and its reply: the door works.
async fn rooms_hello(ws: &mut Ws, client: &str) {
    let req = json!({"id": 1, "cmd": "hello", "room": "main", "client": client});
    ws.send(Message::text(req.to_string())).await.expect("send");
    let reply: Value = serde_json::from_str(&text(ws).await).expect("JSON reply");
    assert_eq!(reply["ok"], json!(true), "{reply}");
}

/// A raw HTTP/1.1 GET with the `Host` header given (the shared client always sends the
/// listener's address).
async fn get_with_host(addr: SocketAddr, path: &str, host: &str) -> HttpResponse {
    let mut stream = tcp_connect(addr).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    parse_http_response(&raw).expect("an HTTP response")
}

/// `tether_refused_total{reason, listener}` from `/metrics`.
async fn refused(server: &Server, reason: &str, listener: &str) -> u64 {
    let metrics = server.http().get("/metrics").await.text();
    metrics
        .lines()
        .find(|l| {
            l.starts_with("tether_refused_total{")
                && l.contains(&format!("reason=\"{reason}\""))
                && l.contains(&format!("listener=\"{listener}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no tether_refused_total{{{reason},{listener}}} in:\n{metrics}"))
}

/// Exec endpoints that append a line to `runs` whenever a process starts, so a spawn that
/// should not have happened leaves a trace: `claude` (the claude protocol, what `/ws/claude`
/// serves), `echo`, and `secret` whose token is in [`TOKEN_VAR`].
fn exec_config(dir: &TempDir, runs: &Path, claude_token: bool) -> String {
    let runs = runs.to_str().expect("utf-8 path");
    let token = if claude_token {
        format!("token_env = \"{TOKEN_VAR}\"\n")
    } else {
        String::new()
    };
    let text = format!(
        r#"
[[exec]]
name = "claude"
protocol = "claude"
argv = ["sh", "-c", "echo \"claude $1\" >> '{runs}'; echo ran", "claude", "{{prompt}}"]
{token}
[[exec]]
name = "echo"
argv = ["sh", "-c", "echo \"echo $1\" >> '{runs}'; printf '%s\n' \"$1\"", "echo", "{{text}}"]
[exec.params.text]
required = true

[[exec]]
name = "secret"
argv = ["sh", "-c", "echo \"secret $1\" >> '{runs}'; echo ran", "secret", "{{text}}"]
token_env = "{TOKEN_VAR}"
[exec.params.text]
required = true
"#
    );
    let path = dir.write("exec.toml", &text);
    path.to_str().expect("utf-8 path").to_owned()
}

fn runs_of(runs: &Path) -> Vec<String> {
    std::fs::read_to_string(runs)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs one request on an admitted exec socket and reads to the close.
async fn exec_run(mut ws: Ws, request: Value) -> Vec<String> {
    let info = text(&mut ws).await;
    assert!(info.starts_with(r#"{"info":"#), "{info}");
    ws.send(Message::text(request.to_string()))
        .await
        .expect("send");
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Text(t))) => frames.push(t.as_str().to_owned()),
            Some(Ok(Message::Close(f))) => {
                assert_eq!(f.map(|f| u16::from(f.code)), Some(1000), "{frames:?}");
                return frames;
            }
            Some(Ok(_)) => {}
            other => panic!("exec socket ended without a close frame: {other:?}"),
        }
    }
}

fn exec_server(dir: &TempDir, runs: &Path, args: &[&str]) -> Server {
    let config = exec_config(dir, runs, false);
    Server::builder()
        .args(["--config", &config])
        .args(args.iter().copied())
        .env(TOKEN_VAR, TOKEN)
        .start()
}

#[tokio::test]
async fn a_foreign_origin_is_refused_on_every_http_door_and_nothing_runs() {
    let dir = TempDir::new("origin-doors");
    let runs = dir.path.join("runs");
    let server = exec_server(&dir, &runs, &[]);
    assert_eq!(refused(&server, "origin", "http").await, 0);
    for path in ["/ws/rooms", "/ws/sync/demo", "/ws/claude", "/ws/exec/echo"] {
        let body = assert_refused(
            dial(server.http, path, Some(EVIL), None, &[]).await,
            403,
            path,
        );
        assert_eq!(
            body, "origin http://evil.example is not allowed (see --allowed-origins)\n",
            "{path}"
        );
    }
    // Another site's page with a port, in https, or one that only looks like localhost.
    for origin in [
        "https://evil.example:8443",
        "http://localhost.evil.example",
        "null",
    ] {
        assert_refused(
            dial(server.http, "/ws/exec/echo", Some(origin), None, &[]).await,
            403,
            origin,
        );
    }
    // Malformed or non-text Origin headers: refused, and the server carries on.
    for origin in [
        "evil",
        "http://a/b",
        "http://u@evil.example",
        "http://x:99999",
    ] {
        assert_refused(
            dial(server.http, "/ws/rooms", Some(origin), None, &[]).await,
            403,
            origin,
        );
    }
    let mut stream = tcp_connect(server.http).await;
    let mut raw = format!(
        "GET /ws/rooms HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        server.http
    )
    .into_bytes();
    raw.extend_from_slice(b"Origin: http://\xffevil\r\n\r\n");
    stream.write_all(&raw).await.expect("write");
    let mut resp = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut resp))
        .await
        .expect("answered")
        .expect("read");
    let resp = parse_http_response(&resp).expect("HTTP response");
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(
        resp.text(),
        "malformed Origin header (see --allowed-origins)\n"
    );

    // The same doors without an Origin (Python, websocat), same-origin, and from a page on
    // another port of this machine: all work; and only these runs reached a process.
    let other = format!("http://localhost:{}", server.http.port() + 1);
    let same = format!("http://{}", server.http);
    for (origin, who) in [
        (None, "none"),
        (Some(same.as_str()), "same"),
        (Some(other.as_str()), "local"),
    ] {
        let mut ws = assert_admitted(dial(server.http, "/ws/rooms", origin, None, &[]).await, who);
        rooms_hello(&mut ws, &format!("client-{who}")).await;
        let mut ws = assert_admitted(
            dial(server.http, "/ws/sync/demo", origin, None, &[]).await,
            who,
        );
        assert!(!text(&mut ws).await.is_empty());
        let ws = assert_admitted(
            dial(server.http, "/ws/claude", origin, None, &[]).await,
            who,
        );
        assert_eq!(exec_run(ws, json!({"prompt": who})).await, ["ran\n"]);
        let ws = assert_admitted(
            dial(server.http, "/ws/exec/echo", origin, None, &[]).await,
            who,
        );
        assert_eq!(
            exec_run(ws, json!({"text": who})).await,
            [format!("{who}\n")]
        );
    }
    assert_eq!(
        runs_of(&runs),
        [
            "claude none",
            "echo none",
            "claude same",
            "echo same",
            "claude local",
            "echo local"
        ]
    );
    let procs = server.http().get("/exec/processes").await.json();
    assert_eq!(procs["processes"], json!([]), "{procs}");
    assert_eq!(refused(&server, "origin", "http").await, 12);
}

#[tokio::test]
async fn the_relay_refuses_foreign_pages_and_admits_sidekick_vscode_and_the_ui_page() {
    let server = Server::start(&[]);
    let relay = server.relay.expect("the relay runs");
    assert_eq!(refused(&server, "origin", "relay").await, 0);
    let body = assert_refused(
        dial(relay, "/?session=s", Some(EVIL), None, &[]).await,
        403,
        "relay",
    );
    assert_eq!(
        body,
        "origin http://evil.example is not allowed (see --allowed-origins)\n"
    );
    // A page on another site whose port is the HTTP listener's is still another site.
    let evil_port = format!("http://evil.example:{}", server.http.port());
    assert_refused(
        dial(relay, "/", Some(&evil_port), None, &[]).await,
        403,
        &evil_port,
    );
    assert_eq!(refused(&server, "origin", "relay").await, 2);
    assert_eq!(
        refused(&server, "origin", "http").await,
        0,
        "counted per listener"
    );

    let ui_page = format!("http://{}", server.http);
    let vscode = "vscode-webview://1b2c3d4e5f";
    let local = "http://localhost:5173";
    for origin in [None, Some(ui_page.as_str()), Some(vscode), Some(local)] {
        let mut ws = assert_admitted(
            dial(relay, "/?session=s", origin, None, &[]).await,
            &format!("{origin:?}"),
        );
        ws.send(Message::Ping(Default::default()))
            .await
            .expect("ping");
        loop {
            match tokio::time::timeout(TIMEOUT, ws.next())
                .await
                .expect("pong in time")
            {
                Some(Ok(Message::Pong(_))) => break,
                Some(Ok(_)) => {}
                other => panic!("relay socket ended: {other:?}"),
            }
        }
    }
    // The HTTP listener does not take vscode-webview pages (it is the relay's extra).
    assert_refused(
        dial(server.http, "/ws/rooms", Some(vscode), None, &[]).await,
        403,
        vscode,
    );
}

#[tokio::test]
async fn a_rebinding_host_is_refused_on_loopback_listeners() {
    let server = Server::start(&[]);
    let relay = server.relay.expect("the relay runs");
    assert_eq!(refused(&server, "host", "http").await, 0);
    // REST routes, pages and upgrades alike.
    for path in ["/health", "/server/status", "/chat", "/exec/endpoints"] {
        let resp = get_with_host(server.http, path, "evil.example").await;
        assert_eq!(resp.status, 403, "{path}: {}", resp.text());
        assert_eq!(
            resp.text(),
            "host evil.example is not allowed on this loopback listener (see --allowed-hosts)\n"
        );
        let resp = get_with_host(
            server.http,
            path,
            &format!("evil.example:{}", server.http.port()),
        )
        .await;
        assert_eq!(resp.status, 403, "{path}");
    }
    assert_refused(
        dial(server.http, "/ws/rooms", None, Some("evil.example"), &[]).await,
        403,
        "ws with a rebinding host",
    );
    assert_refused(
        dial(
            relay,
            "/",
            None,
            Some(&format!("evil.example:{}", relay.port())),
            &[],
        )
        .await,
        403,
        "relay with a rebinding host",
    );
    let resp = get_with_host(relay, "/", "evil.example").await;
    assert_eq!(resp.status, 403, "the relay's non-upgrade answer too");
    // Loopback names and addresses are this machine.
    for host in [
        "localhost",
        "LOCALHOST:1",
        "app.localhost",
        "127.0.0.1",
        "127.1.2.3:80",
        "[::1]:8700",
    ] {
        let resp = get_with_host(server.http, "/health", host).await;
        assert_eq!(resp.status, 200, "{host}: {}", resp.text());
    }
    let mut ws = assert_admitted(
        dial(
            server.http,
            "/ws/rooms",
            None,
            Some(&format!("localhost:{}", server.http.port())),
            &[],
        )
        .await,
        "localhost",
    );
    rooms_hello(&mut ws, "loopback").await;
    assert_eq!(refused(&server, "host", "http").await, 9);
    assert_eq!(refused(&server, "host", "relay").await, 2);
    // Logged once per host, however often it is tried: wait for a later, different refusal's
    // line before counting.
    get_with_host(server.http, "/health", "later.example").await;
    let stderr = eventually("the later refusal's log line", || async {
        let s = server.stderr();
        s.contains("host later.example").then_some(s)
    })
    .await;
    let http_lines = stderr
        .lines()
        .filter(|l| l.contains("http listener") && l.contains("host evil.example is not allowed"))
        .count();
    assert_eq!(http_lines, 1, "{stderr}");
}

#[tokio::test]
async fn allowed_hosts_admits_a_name_on_both_listeners() {
    let server = Server::builder()
        .env("TETHER_ALLOWED_HOSTS", "evil.example,*.lan")
        .start();
    let relay = server.relay.expect("the relay runs");
    for host in ["evil.example", "EVIL.example:8700", "pi.lan"] {
        let resp = get_with_host(server.http, "/health", host).await;
        assert_eq!(resp.status, 200, "{host}: {}", resp.text());
    }
    assert_eq!(
        get_with_host(server.http, "/health", "other.example")
            .await
            .status,
        403
    );
    let mut ws = assert_admitted(
        dial(server.http, "/ws/rooms", None, Some("evil.example"), &[]).await,
        "ws",
    );
    rooms_hello(&mut ws, "named").await;
    assert_admitted(
        dial(relay, "/", None, Some("evil.example"), &[]).await,
        "relay",
    );
    // The host is admitted; a page of that name is same-origin for the HTTP listener.
    let port = server.http.port();
    assert_admitted(
        dial(
            server.http,
            "/ws/rooms",
            Some(&format!("http://evil.example:{port}")),
            Some(&format!("evil.example:{port}")),
            &[],
        )
        .await,
        "same-origin under an allowed host",
    );
}

#[tokio::test]
async fn allowed_origins_replaces_the_loopback_defaults() {
    let dir = TempDir::new("origin-list");
    let file = dir.write(
        "t.toml",
        "allowed_origins = [\"https://app.example.com\", \"http://*.example.org:*\"]\n",
    );
    let server = Server::builder()
        .args(["--config", file.to_str().expect("utf-8")])
        .start();
    let relay = server.relay.expect("the relay runs");
    for origin in ["https://app.example.com", "http://a.b.example.org:9000"] {
        let mut ws = assert_admitted(
            dial(server.http, "/ws/rooms", Some(origin), None, &[]).await,
            origin,
        );
        rooms_hello(&mut ws, &format!("c{}", origin.len())).await;
        assert_admitted(dial(relay, "/", Some(origin), None, &[]).await, origin);
    }
    for origin in [
        "http://app.example.com",
        "https://app.example.com:8443",
        "http://example.org",
        "http://localhost:3000",
        "vscode-webview://abc",
        EVIL,
    ] {
        assert_refused(
            dial(server.http, "/ws/rooms", Some(origin), None, &[]).await,
            403,
            origin,
        );
        assert_refused(dial(relay, "/", Some(origin), None, &[]).await, 403, origin);
    }
    // Same-origin, no Origin and (on the relay) this server's /ui page stay admitted.
    let same = format!("http://{}", server.http);
    assert_admitted(
        dial(server.http, "/ws/rooms", Some(&same), None, &[]).await,
        "same",
    );
    assert_admitted(
        dial(server.http, "/ws/rooms", None, None, &[]).await,
        "none",
    );
    assert_admitted(
        dial(relay, "/", Some(&same), None, &[]).await,
        "the /ui page",
    );
    assert_admitted(dial(relay, "/", None, None, &[]).await, "sidekick-py");

    // The flag wins over the file; an empty list leaves same-origin only.
    let server = Server::builder()
        .args(["--config", file.to_str().expect("utf-8")])
        .args(["--allowed-origins", ""])
        .start();
    assert_refused(
        dial(
            server.http,
            "/ws/rooms",
            Some("https://app.example.com"),
            None,
            &[],
        )
        .await,
        403,
        "not in the flag's list",
    );
    let same = format!("http://{}", server.http);
    assert_admitted(
        dial(server.http, "/ws/rooms", Some(&same), None, &[]).await,
        "same",
    );
}

#[tokio::test]
async fn a_star_admits_every_origin_with_a_warning() {
    let server = Server::start(&["--allowed-origins", "*"]);
    let relay = server.relay.expect("the relay runs");
    let mut ws = assert_admitted(
        dial(server.http, "/ws/rooms", Some(EVIL), None, &[]).await,
        "ws",
    );
    rooms_hello(&mut ws, "anyone").await;
    assert_admitted(dial(relay, "/", Some(EVIL), None, &[]).await, "relay");
    assert_eq!(refused(&server, "origin", "http").await, 0);
    let stderr = eventually("the start-up warning", || async {
        let s = server.stderr();
        s.contains("--allowed-origins includes *").then_some(s)
    })
    .await;
    assert!(stderr.contains("WARN"), "{stderr}");
    // The Host check is separate: * origins do not open a loopback listener to other names.
    assert_eq!(
        get_with_host(server.http, "/health", "evil.example")
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn exec_tokens_are_checked_before_the_upgrade() {
    let dir = TempDir::new("origin-token");
    let runs = dir.path.join("runs");
    let config = exec_config(&dir, &runs, true);
    let server = Server::builder()
        .args(["--config", &config])
        .env(TOKEN_VAR, TOKEN)
        .env("TETHER_LOG", "debug")
        .start();
    let endpoints = server.http().get("/exec/endpoints").await.json();
    let tokens: Vec<(String, bool)> = endpoints["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").to_owned(),
                e["token"] == json!(true),
            )
        })
        .collect();
    assert_eq!(
        tokens,
        [
            ("claude".into(), true),
            ("echo".into(), false),
            ("secret".into(), true)
        ]
    );
    let wrong_bearer = "Bearer tok-9f8e7d6c5b4b".to_owned();
    let cases: [(&str, Vec<(&str, &str)>); 5] = [
        ("/ws/exec/secret", vec![]),
        ("/ws/exec/secret?token=tok-9f8e7d6c5b4", vec![]),
        ("/ws/exec/secret?token=", vec![]),
        (
            "/ws/exec/secret",
            vec![("authorization", wrong_bearer.as_str())],
        ),
        (
            "/ws/claude",
            vec![("authorization", "Basic dG9rLTlmOGU3ZDZjNWI0YQ==")],
        ),
    ];
    assert_eq!(refused(&server, "token", "http").await, 0);
    for (path, headers) in &cases {
        let body = assert_refused(
            dial(server.http, path, None, None, headers).await,
            401,
            path,
        );
        let v: Value = serde_json::from_str(&body).expect("JSON error");
        assert_eq!(v["error"], json!("UNAUTHORIZED"), "{v}");
    }
    // A plain GET gets the 401 too (with its WWW-Authenticate), not a hint to upgrade.
    let resp = server.http().get("/ws/exec/secret").await;
    assert_eq!(resp.status, 401);
    assert!(
        resp.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("www-authenticate") && v == "Bearer"),
        "{:?}",
        resp.headers
    );
    assert_eq!(refused(&server, "token", "http").await, 6);

    // The right token, either way; an open endpoint needs none.
    let q = format!("/ws/exec/secret?token={TOKEN}");
    let ws = assert_admitted(dial(server.http, &q, None, None, &[]).await, "query");
    assert_eq!(exec_run(ws, json!({"text": "q"})).await, ["ran\n"]);
    let bearer = format!("bearer {TOKEN}");
    let ws = assert_admitted(
        dial(
            server.http,
            "/ws/exec/secret",
            None,
            None,
            &[("authorization", &bearer)],
        )
        .await,
        "header",
    );
    assert_eq!(exec_run(ws, json!({"text": "h"})).await, ["ran\n"]);
    let ws = assert_admitted(
        dial(
            server.http,
            &format!("/ws/claude?token={TOKEN}"),
            None,
            None,
            &[],
        )
        .await,
        "claude",
    );
    assert_eq!(exec_run(ws, json!({"prompt": "c"})).await, ["ran\n"]);
    let ws = assert_admitted(
        dial(server.http, "/ws/exec/echo", None, None, &[]).await,
        "echo",
    );
    assert_eq!(exec_run(ws, json!({"text": "e"})).await, ["e\n"]);
    // The token does not replace the Origin check.
    assert_refused(
        dial(server.http, &q, Some(EVIL), None, &[]).await,
        403,
        "token, foreign page",
    );

    assert_eq!(
        runs_of(&runs),
        ["secret q", "secret h", "claude c", "echo e"]
    );
    let stderr = server.stderr();
    assert!(
        !stderr.contains(TOKEN),
        "the token reached the log:\n{stderr}"
    );
}

#[test]
fn a_token_env_naming_an_unset_variable_stops_the_start() {
    let dir = TempDir::new("origin-unset");
    let runs = dir.path.join("runs");
    let config = exec_config(&dir, &runs, false);
    for value in [None, Some("")] {
        let mut cmd = ServerBuilder::new().args(["--config", &config]).command();
        cmd.env_remove(TOKEN_VAR);
        if let Some(v) = value {
            cmd.env(TOKEN_VAR, v);
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .expect("running the binary");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value:?}: {stderr}");
        assert!(
            stderr.contains(&format!("exec \"secret\": token_env names {TOKEN_VAR}")),
            "{value:?}: {stderr}"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).is_empty(),
            "it did not listen"
        );
    }
}

#[tokio::test]
async fn the_guard_answers_fast_under_many_refusals() {
    // Refusals cost no handler and no log line after the first: 500 foreign upgrades in a row
    // leave the server answering, and one line in the log.
    let server = Server::start(&[]);
    let started = std::time::Instant::now();
    for _ in 0..500 {
        assert_refused(
            dial(server.http, "/ws/rooms", Some(EVIL), None, &[]).await,
            403,
            "evil",
        );
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    assert_eq!(refused(&server, "origin", "http").await, 500);
    assert_refused(
        dial(
            server.http,
            "/ws/rooms",
            Some("http://later.example"),
            None,
            &[],
        )
        .await,
        403,
        "later",
    );
    let stderr = eventually("the later refusal's log line", || async {
        let s = server.stderr();
        s.contains("origin http://later.example").then_some(s)
    })
    .await;
    let n = stderr
        .lines()
        .filter(|l| l.contains("origin http://evil.example is not allowed"))
        .count();
    assert_eq!(n, 1, "{stderr}");
    eprintln!("500 refused upgrades in {elapsed:?}");
}
