//! The HTTP/1.1 serve loop of the HTTP and the relay listeners: hyper with a request-head
//! timeout (`axum::serve` has none), WebSocket upgrades, the peer address for handlers, TLS
//! when configured, and a graceful stop.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use super::accept::Acceptor;
use super::gate::Guarded;
use crate::tls;

/// The peer address of an HTTP connection, for handlers (`ConnectInfo<PeerAddr>`), with or
/// without TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Serves `app` on every acceptor (one listener may be bound on 127.0.0.1 and [::1]) until
/// `stop` is cancelled; then stops accepting, lets requests in progress finish and closes idle
/// connections, and returns once every connection not upgraded has closed. Upgraded
/// connections (WebSockets) belong to their handlers from then on.
pub async fn serve_http(
    acceptors: Vec<Acceptor>,
    tls: Option<TlsAcceptor>,
    header_timeout: Duration,
    app: Router,
    stop: CancellationToken,
) {
    let conns = TaskTracker::new();
    let mut loops = Vec::new();
    for mut acceptor in acceptors {
        let (tls, app, stop, conns) = (tls.clone(), app.clone(), stop.clone(), conns.clone());
        loops.push(tokio::spawn(async move {
            loop {
                let (sock, peer, permit) = tokio::select! {
                    _ = stop.cancelled() => break,
                    c = acceptor.accept() => c,
                };
                let io = Guarded::new(sock, permit);
                let listener = acceptor.name();
                let (tls, app, stop) = (tls.clone(), app.clone(), stop.clone());
                conns.spawn(async move {
                    match tls {
                        None => connection(io, peer, app, header_timeout, stop).await,
                        Some(acc) => {
                            if let Some(s) = tls::handshake(&acc, io, peer, listener).await {
                                connection(s, peer, app, header_timeout, stop).await;
                            }
                        }
                    }
                });
            }
        }));
    }
    for l in loops {
        let _ = l.await;
    }
    conns.close();
    conns.wait().await;
}

/// One connection: HTTP/1.1 requests until the client leaves, a head takes longer than
/// `header_timeout` (hyper answers a partial one with 408 and closes; an idle kept-alive one
/// is closed silently), the connection is upgraded, or `stop`.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
        // A Router is always ready; cloning it is a reference count.
        let mut app = app.clone();
        async move { Ok::<_, Infallible>(app.call(req).await.unwrap_or_else(|e| match e {})) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut conn = pin!(
        builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
    );
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "http connection ended: {e}");
    }
}
