//! What every listener shares: connection caps (in total and per client address), an accept
//! loop that stays healthy when file descriptors run out, and the HTTP/1.1 serve loop with a
//! request-head timeout that the HTTP and the relay listeners both run.

mod accept;
mod gate;
mod http;

use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;

pub use accept::Acceptor;
pub use gate::{Gate, Guarded, Permit};
pub use http::{PeerAddr, serve_http};

/// Sockets the relay listener admits beyond the engine's `max_connections`, so that a client
/// over the engine's cap still gets its 1013 close frame instead of a dropped socket.
pub const RELAY_LISTENER_SLACK: usize = 64;

/// The listeners' timeouts and caps (`--header-timeout`, `--max-connections`,
/// `--max-connections-per-ip`).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Time for a complete request head, from the moment the server waits for one (a new
    /// connection, after TLS; or a kept-alive one, after its previous response).
    pub header_timeout: Duration,
    /// Open connections per listener (HTTP, rooms TCP).
    pub max_connections: usize,
    /// Open connections per client address (IPv6: per /64), per listener.
    pub max_connections_per_ip: usize,
}

/// The default per-address cap, unless an eighth of the open-file limit is lower.
const MAX_PER_IP: usize = 1024;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(5),
            max_connections: 10_000,
            max_connections_per_ip: default_per_ip(fd_limit()),
        }
    }
}

/// 1024, or an eighth of the open-file limit when that is lower (at least 8): one client
/// address never holds more than an eighth of the descriptors.
fn default_per_ip(fd_limit: Option<libc::rlim_t>) -> usize {
    match fd_limit.map(|n| usize::try_from(n / 8).unwrap_or(usize::MAX)) {
        Some(eighth) => eighth.clamp(8, MAX_PER_IP),
        None => MAX_PER_IP,
    }
}

impl Limits {
    /// The limits from the merged settings, defaults filled in and checked.
    pub fn resolve(
        header_timeout: Option<f64>,
        max_connections: Option<usize>,
        max_connections_per_ip: Option<usize>,
    ) -> Result<Limits, String> {
        let d = Limits::default();
        let header_timeout = match header_timeout {
            None => d.header_timeout,
            Some(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Duration::from_secs_f64(s),
            Some(s) => return Err(format!("header_timeout {s} must be in (0, 3600] seconds")),
        };
        let max_connections = max_connections.unwrap_or(d.max_connections);
        let max_connections_per_ip = max_connections_per_ip.unwrap_or(d.max_connections_per_ip);
        for (name, v) in [
            ("max_connections", max_connections),
            ("max_connections_per_ip", max_connections_per_ip),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        Ok(Limits {
            header_timeout,
            max_connections,
            max_connections_per_ip,
        })
    }
}

/// Binds `[::1]` on `primary`'s port, for a `localhost` listener whose 127.0.0.1 side is
/// `primary`. No IPv6, or the port taken there, only warns: 127.0.0.1 still serves.
pub async fn bind_ipv6_loopback(primary: &TcpListener, what: &str) -> Option<TcpListener> {
    let port = primary.local_addr().ok()?.port();
    let addr = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!("{what} listens on 127.0.0.1:{port} only: cannot listen on {addr}: {e}");
            None
        }
    }
}

/// The soft limit on open files.
fn fd_limit() -> Option<libc::rlim_t> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed by pointer.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur)
}

/// Raises the soft limit on open files to the hard limit, as systemd advises programs that
/// need many descriptors to do (the `tether` binary does, before reading its settings; an
/// embedding process decides for itself); returns the soft limit in force.
pub fn raise_fd_limit() -> Option<libc::rlim_t> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    Some(lim.rlim_cur)
}

/// Describes the listener metrics for `/metrics`.
pub fn describe_metrics() {
    metrics::describe_gauge!(
        "tether_listener_connections",
        "Open connections by listener (http, relay, tcp)."
    );
    metrics::describe_counter!(
        "tether_listener_refused_total",
        "Connections closed at accept, by listener and reason (per_ip, full, fd_limit)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_address_default_follows_a_low_fd_limit() {
        assert_eq!(default_per_ip(None), 1024);
        assert_eq!(default_per_ip(Some(1_048_576)), 1024);
        assert_eq!(default_per_ip(Some(8192)), 1024);
        assert_eq!(default_per_ip(Some(1024)), 128);
        assert_eq!(default_per_ip(Some(256)), 32);
        assert_eq!(default_per_ip(Some(20)), 8);
    }

    #[test]
    fn limits_are_checked() {
        let l = Limits::resolve(Some(0.5), Some(7), Some(3)).expect("valid");
        assert_eq!(l.header_timeout, Duration::from_millis(500));
        assert_eq!((l.max_connections, l.max_connections_per_ip), (7, 3));
        let d = Limits::resolve(None, None, None).expect("defaults");
        assert_eq!(d.header_timeout, Duration::from_secs(5));
        assert_eq!(d.max_connections, 10_000);
        assert!((8..=1024).contains(&d.max_connections_per_ip));
        for bad in [
            Limits::resolve(Some(0.0), None, None),
            Limits::resolve(Some(f64::NAN), None, None),
            Limits::resolve(None, Some(0), None),
            Limits::resolve(None, None, Some(0)),
        ] {
            assert!(bad.is_err(), "{bad:?}");
        }
    }
}
