//! `tether exec`: the `/ws/claude` and `/ws/exec/<name>` endpoints that run one configured
//! command per WebSocket connection, plus `GET /exec/endpoints` and `GET /exec/processes`.
//! The rules live in the sans-IO `tether-exec` crate; this module spawns the processes
//! ([`child`]), answers for every process they start until it is gone ([`tree`]) and drives one
//! session per socket ([`conn`]).

mod child;
mod conn;
mod hub;
mod tree;

pub use hub::{ExecHub, MAX_CLIENT_FRAME};

pub use tree::{become_subreaper, reap_adopted};

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use metrics::counter;
use serde::Deserialize;
use tether_exec::Endpoint;

use crate::socket::{Tuning, error_response, page};

/// 8 KiB to read, tungstenite's default write threshold, client frames up to
/// [`MAX_CLIENT_FRAME`].
const TUNING: Tuning = Tuning {
    write_buffer: 128 * 1024,
    ..Tuning::new(MAX_CLIENT_FRAME)
};

/// The exec routes, served by `hub`.
pub fn router<S>(hub: Arc<ExecHub>) -> Router<S> {
    Router::new()
        .route("/ws/claude", get(claude))
        .route("/ws/exec/{name}", get(named))
        .route("/exec", get(exec_page))
        .route("/exec/endpoints", get(endpoints))
        .route("/exec/processes", get(processes))
        .with_state(hub)
}

/// The upgrade, or why the request is not one (answered only once the endpoint is known).
type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

/// The `token` query parameter (other parameters are the request frame's business).
#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The `?token=` query, or why it could not be read (then there is no token).
type TokenParam = Result<Query<TokenQuery>, QueryRejection>;

async fn claude(
    ws: Upgrade,
    State(hub): State<Arc<ExecHub>>,
    headers: HeaderMap,
    query: TokenParam,
) -> Response {
    upgrade(ws, hub, "claude", &headers, query)
}

async fn named(
    ws: Upgrade,
    State(hub): State<Arc<ExecHub>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    query: TokenParam,
) -> Response {
    upgrade(ws, hub, &name, &headers, query)
}

/// Whether the request carries `ep`'s token (when it has one) as `?token=` or
/// `Authorization: Bearer`.
fn authorized(ep: &Endpoint, headers: &HeaderMap, query: TokenParam) -> bool {
    let Some(token) = &ep.token else {
        return true;
    };
    let from_query = query.ok().and_then(|Query(q)| q.token);
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    // Both compared, so the time taken does not say which one was given.
    let q = from_query.is_some_and(|t| token.matches(&t));
    let h = from_header.is_some_and(|t| token.matches(&t));
    q | h
}

fn upgrade(
    ws: Upgrade,
    hub: Arc<ExecHub>,
    name: &str,
    headers: &HeaderMap,
    query: TokenParam,
) -> Response {
    let Some(ep) = hub.endpoint(name) else {
        return error_response(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("no exec endpoint {name:?} (GET /exec/endpoints lists them)"),
        );
    };
    if !authorized(&ep, headers, query) {
        counter!("tether_refused_total", "reason" => "token", "listener" => "http").increment(1);
        let mut resp = error_response(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            &format!(
                "exec endpoint {name:?} needs its token: ?token=TOKEN or Authorization: Bearer TOKEN"
            ),
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
        return resp;
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let shutdown = hub.drain.shutdown.clone();
    hub.drain.clone().upgrade(ws, TUNING, move |socket| {
        conn::run(hub, ep, socket, shutdown)
    })
}

/// `GET /exec`: the page that runs the endpoints (`web/exec.html`).
async fn exec_page() -> Response {
    page("exec.html")
}

async fn endpoints(State(hub): State<Arc<ExecHub>>) -> Response {
    Json(hub.describe()).into_response()
}

async fn processes(State(hub): State<Arc<ExecHub>>) -> Response {
    Json(hub.processes()).into_response()
}

/// Names the exec metrics for `/metrics`.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!("tether_exec_running", "Exec processes running now.");
    describe_counter!(
        "tether_exec_started_total",
        "Exec processes started, by endpoint."
    );
    describe_counter!(
        "tether_exec_killed_total",
        "Signals sent to exec process groups (TERM on timeout/close/shutdown, KILL after the grace), by endpoint and signal."
    );
    describe_counter!(
        "tether_exec_descendants_stopped_total",
        "Processes an exec command left behind (a background job, a descendant that left its process group) found still running after its connection and stopped, by endpoint."
    );
    describe_counter!(
        "tether_exec_refused_total",
        "Exec requests refused because a process limit was full, by endpoint and limit."
    );
}
