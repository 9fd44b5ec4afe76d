//! A listener's connection caps: how many sockets are open in all and per client address, and
//! the permit each admitted socket carries until it closes (through a WebSocket upgrade too).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use metrics::{Counter, Gauge, counter, gauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why a connection was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener has `max_connections` open.
    Full,
    /// The client's address has `max_connections_per_ip` open.
    PerIp,
}

#[derive(Default)]
struct State {
    open: usize,
    per_ip: HashMap<IpAddr, PerIp>,
    /// Whether "full" was logged since the listener was last below its cap.
    full_logged: bool,
}

struct PerIp {
    open: usize,
    /// Whether a refusal was logged since this address last had no connection.
    logged: bool,
}

/// One listener's caps and counts; shared by its accept loops (127.0.0.1 and [::1]).
pub struct Gate {
    name: &'static str,
    max: usize,
    max_per_ip: usize,
    state: Mutex<State>,
    open: Gauge,
    refused_full: Counter,
    refused_per_ip: Counter,
    refused_fd: Counter,
}

impl Gate {
    /// A gate for the listener `name` (`http`, `relay`, `tcp`: the metrics label).
    pub fn new(name: &'static str, max: usize, max_per_ip: usize) -> Arc<Gate> {
        let refused = |reason: &'static str| counter!("tether_listener_refused_total", "listener" => name, "reason" => reason);
        let open = gauge!("tether_listener_connections", "listener" => name);
        open.set(0.0);
        Arc::new(Gate {
            name,
            max,
            max_per_ip,
            state: Mutex::new(State::default()),
            open,
            refused_full: refused("full"),
            refused_per_ip: refused("per_ip"),
            refused_fd: refused("fd_limit"),
        })
    }

    /// The listener's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Counting cannot panic halfway; a poisoned lock still holds consistent counts.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `ip`, or counts and (once per address and burst) logs why not.
    pub fn admit(self: &Arc<Gate>, ip: IpAddr) -> Result<Permit, Refusal> {
        let key = client_key(ip);
        let mut st = self.lock();
        if st.open >= self.max {
            self.refused_full.increment(1);
            if !st.full_logged {
                st.full_logged = true;
                tracing::warn!(
                    "{} listener full: {} connections open (--max-connections); closing new \
                     ones at once until some close (counted in /metrics)",
                    self.name,
                    self.max
                );
            }
            return Err(Refusal::Full);
        }
        let entry = st.per_ip.entry(key).or_insert(PerIp {
            open: 0,
            logged: false,
        });
        if entry.open >= self.max_per_ip {
            self.refused_per_ip.increment(1);
            if !entry.logged {
                entry.logged = true;
                tracing::warn!(
                    "{} listener: {ip} has {} connections open (--max-connections-per-ip); \
                     closing its new ones at once (counted in /metrics, logged again once \
                     its connections are gone)",
                    self.name,
                    self.max_per_ip
                );
            }
            return Err(Refusal::PerIp);
        }
        entry.open += 1;
        st.open += 1;
        self.open.set(st.open as f64);
        Ok(Permit {
            gate: self.clone(),
            key,
        })
    }

    /// Counts a connection closed at accept because the process is out of file descriptors.
    pub fn refused_fd_limit(&self) {
        self.refused_fd.increment(1);
    }

    fn release(&self, key: IpAddr) {
        let mut st = self.lock();
        st.open = st.open.saturating_sub(1);
        if st.open < self.max {
            st.full_logged = false;
        }
        if let Some(e) = st.per_ip.get_mut(&key) {
            e.open = e.open.saturating_sub(1);
            if e.open == 0 {
                st.per_ip.remove(&key);
            }
        }
        self.open.set(st.open as f64);
    }

    /// Open connections (for tests and logs).
    pub fn open(&self) -> usize {
        self.lock().open
    }
}

/// What the per-address cap counts: an IPv4 address (IPv4-mapped IPv6 included), an IPv6
/// address's /64 (one client usually holds a whole /64), or `::1`.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) if !v6.is_loopback() => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        other => other,
    }
}

/// An admitted connection's place in its listener's counts, given back when dropped.
pub struct Permit {
    gate: Arc<Gate>,
    key: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release(self.key);
    }
}

/// A socket that holds its [`Permit`]: wherever the socket goes (into hyper, then into a
/// WebSocket after an upgrade), it counts until it is dropped.
pub struct Guarded<S> {
    inner: S,
    _permit: Permit,
}

impl<S> Guarded<S> {
    /// `inner`, counted by `permit` while it lives.
    pub fn new(inner: S, permit: Permit) -> Guarded<S> {
        Guarded {
            inner,
            _permit: permit,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn caps_count_per_address_and_in_all() {
        let gate = Gate::new("test", 3, 2);
        let a1 = gate.admit(ip("10.0.0.1")).expect("first");
        let a2 = gate.admit(ip("10.0.0.1")).expect("second");
        assert_eq!(gate.admit(ip("10.0.0.1")).err(), Some(Refusal::PerIp));
        // The same client through an IPv4-mapped IPv6 socket counts as itself.
        assert_eq!(
            gate.admit(ip("::ffff:10.0.0.1")).err(),
            Some(Refusal::PerIp)
        );
        let b = gate.admit(ip("10.0.0.2")).expect("another client");
        assert_eq!(gate.admit(ip("10.0.0.3")).err(), Some(Refusal::Full));
        assert_eq!(gate.open(), 3);
        drop(a1);
        let a3 = gate.admit(ip("10.0.0.1")).expect("a slot came back");
        drop((a2, a3, b));
        assert_eq!(gate.open(), 0);
        assert!(gate.lock().per_ip.is_empty(), "no entry left behind");
    }

    #[test]
    fn ipv6_clients_count_per_64_and_loopback_alone() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:bbbb::9")),
            client_key(ip("2001:db8:1:2:aaaa::1"))
        );
        assert_ne!(client_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::1")), ip("::1"));
        assert_eq!(client_key(ip("::ffff:127.0.0.2")), ip("127.0.0.2"));
    }
}
