//! The embedding hook: an embedder's fallback sees only what no built-in route answers, gets the
//! peer address, can hand requests back to the server's own fallback, and its connections are
//! drained with the server's.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use common::{Http, TIMEOUT};
use tether_server::config::ServeArgs;
use tether_server::server::{BUILTIN_ROUTES, Fallback, PeerAddr, Server, is_reserved};
use tokio_util::sync::CancellationToken;

async fn bound() -> Server {
    let args = ServeArgs {
        http: Some("127.0.0.1:0".parse().expect("addr")),
        tcp: Some("127.0.0.1:0".parse().expect("addr")),
        relay: Some(tether_server::config::RelayAddr::Off),
        ..ServeArgs::default()
    };
    Server::bind(args.resolve().expect("config"))
        .await
        .expect("bind")
}

#[tokio::test]
async fn fallback_sees_only_unrouted_requests_and_can_hand_them_back() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let fallback: Fallback = Arc::new(move |req| {
        seen.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if req.uri().path() != "/extra" {
                return Err(req);
            }
            let peer = req
                .extensions()
                .get::<ConnectInfo<PeerAddr>>()
                .map(|c| c.0.0.ip().to_string())
                .unwrap_or_default();
            Ok(format!("extra from {peer}").into_response())
        })
    });
    let server = bound().await.with_fallback(fallback);
    let http = Http::new(server.http_addr());
    let stop = CancellationToken::new();
    let task = tokio::spawn(server.serve(stop.clone().cancelled_owned()));

    let r = http.request("GET", "/extra", &[], None).await;
    assert_eq!((r.status, r.text()), (200, "extra from 127.0.0.1".into()));
    // Handed back: the server's own 404 and its embedded files.
    http.request("GET", "/nothing-here", &[], None)
        .await
        .assert_error(404, "NOT_FOUND");
    assert_eq!(
        http.request("GET", "/tether-client.js", &[], None)
            .await
            .status,
        200
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Built-in routes never reach it (whatever they answer a bare GET).
    assert_eq!(http.request("GET", "/health", &[], None).await.status, 200);
    for route in BUILTIN_ROUTES {
        let path = route.replace("{room}", "r1");
        http.request("GET", &path, &[], None).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "{path} reached the fallback"
        );
    }

    stop.cancel();
    tokio::time::timeout(TIMEOUT, task)
        .await
        .expect("drain")
        .expect("join")
        .expect("serve");
}

#[tokio::test]
async fn shutdown_signal_and_tracker_take_part_in_the_drain() {
    let server = bound().await;
    let (signal, tracker) = (server.shutdown_signal(), server.tracker());
    let finished = Arc::new(AtomicUsize::new(0));
    let f = finished.clone();
    tracker.spawn(async move {
        signal.cancelled().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        f.fetch_add(1, Ordering::SeqCst);
    });
    let stop = CancellationToken::new();
    let task = tokio::spawn(server.serve(stop.clone().cancelled_owned()));
    stop.cancel();
    tokio::time::timeout(TIMEOUT, task)
        .await
        .expect("drain")
        .expect("join")
        .expect("serve");
    assert_eq!(finished.load(Ordering::SeqCst), 1, "the drain waited");
}

#[test]
fn reserved_paths() {
    for p in BUILTIN_ROUTES.iter().filter(|p| !p.contains('{')) {
        assert!(is_reserved(p), "{p}");
    }
    assert!(is_reserved("/chatrooms/r1"));
    assert!(is_reserved("/tether-client.js"));
    assert!(is_reserved("/index.html"));
    assert!(!is_reserved("/ws/notes"));
    assert!(!is_reserved("/chatrooms/r1/x"));
    assert!(!is_reserved("/chat/"));
    assert!(!is_reserved("/ws"));
}
