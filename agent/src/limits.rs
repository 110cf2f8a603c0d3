//! Bounds on what clients can hold of the agent: connections at once, and
//! how long a connection may stay silent. A connection over the cap is
//! closed as it is accepted; one the agent has not answered within
//! [`Limits::first_reply`] of opening (its request never came, or comes a
//! byte at a time), or that moves no byte either way for [`Limits::idle`],
//! is closed. tonic's server has no such timeout for HTTP/1: a silent or
//! slow client would otherwise hold its socket and buffers for good. A
//! watching viewer is never idle: the agent writes to it every second.
//!
//! One peer address holds at most [`Limits::per_peer`] of the slots, so a
//! single host cannot take them all; and when accepting fails (the process
//! is out of file descriptors: the connection stays queued, and accepting
//! again fails at once) the agent waits before the next try, 10 ms doubling
//! to 1 s, instead of spinning a core on a loop of failures.
//!
//! The bounds on the agent's own work are here too: the threads it runs
//! walks on ([`MAX_BLOCKING_THREADS`]) and the size of a reply
//! ([`MAX_REPLY`]).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Most threads the agent's server runs blocking work on, beside its own
/// thread: one each for a scrape (`/metrics` or the task profile), a
/// request for waits' walk, a gRPC walk, the groups' publisher and the
/// token file's check. Each holds its slot until the work ends, even when
/// the client that asked has gone (the next one is busy meanwhile), so
/// they never queue behind each other. Idle ones end after tokio's 10 s.
pub const MAX_BLOCKING_THREADS: usize = 5;

/// Most bytes in one gRPC message the agent sends (a reply for waits
/// lists up to 200 000 tasks; the groups of a large service): the
/// console's own limit does not apply to them.
pub(crate) const MAX_REPLY: usize = 256 * 1024 * 1024;

/// The agent's bounds on its clients, set with
/// [`Builder::limits`](crate::Builder::limits).
///
/// A connection over [`connections`](Limits::connections) (or over its
/// peer's share, [`per_peer`](Limits::per_peer)) is closed as it is
/// accepted; one the agent has not answered within
/// [`first_reply`](Limits::first_reply) of opening, or that moves no byte
/// either way for [`idle`](Limits::idle), is closed. A watching viewer is
/// never idle: the agent writes to it every second.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use taskscope_agent::Limits;
///
/// let limits = Limits {
///     connections: 16,
///     idle: Duration::from_secs(30),
///     ..Limits::default()
/// };
/// assert_eq!(limits.per_peer, 16);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; more are closed when accepted.
    pub connections: usize,
    /// Of those, connections from one peer address (TCP: an IPv4 address,
    /// an IPv6 /64; a Unix socket's clients are the service's own user).
    /// Clients that all arrive from loopback (through `kubectl
    /// port-forward`, `ssh -L` or a mesh sidecar) share one peer's slots.
    pub per_peer: usize,
    /// How long a new connection may go before the agent's first reply
    /// byte (HTTP/2's settings, or an HTTP/1 response): its request must
    /// have arrived by then.
    pub first_reply: Duration,
    /// How long a connection may move no byte in either direction.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 64,
            per_peer: 16,
            first_reply: Duration::from_secs(10),
            idle: Duration::from_secs(120),
        }
    }
}

/// Counts of what the bounds did, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) open: AtomicU64,
    /// Closed as accepted: over the cap, or over the peer's share.
    pub(crate) refused: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    /// Accepts that failed (out of file descriptors, mostly).
    pub(crate) accept_failed: AtomicU64,
}

/// The address a peer's share is counted under: an IPv4 address (also
/// when mapped into IPv6), or an IPv6 address's /64, which one host
/// usually holds whole.
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// Where a connection comes from, for the per-peer share.
pub(crate) trait Peer {
    fn peer_ip(&self) -> Option<IpAddr>;
}

impl Peer for tokio::net::TcpStream {
    fn peer_ip(&self) -> Option<IpAddr> {
        self.peer_addr().ok().map(|a| a.ip())
    }
}

#[cfg(unix)]
impl Peer for tokio::net::UnixStream {
    fn peer_ip(&self) -> Option<IpAddr> {
        None
    }
}

/// Hands out connection slots.
#[derive(Clone)]
pub(crate) struct Gate {
    limits: Limits,
    slots: Arc<Semaphore>,
    counters: Arc<Counters>,
    peers: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// A peer's share of the slots, given back when its connection closes.
struct PeerShare {
    ip: IpAddr,
    peers: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for PeerShare {
    fn drop(&mut self) {
        let mut peers = self.peers.lock();
        if let Some(n) = peers.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                peers.remove(&self.ip);
            }
        }
    }
}

impl Gate {
    pub(crate) fn new(limits: Limits, counters: Arc<Counters>) -> Gate {
        Gate {
            limits,
            slots: Arc::new(Semaphore::new(limits.connections.max(1))),
            counters,
            peers: Arc::default(),
        }
    }

    /// The accepted connection, bounded; `None` (and it is dropped, so
    /// closed) when every slot is taken, or its peer holds its share.
    pub(crate) fn admit<T: Peer>(&self, io: T) -> Option<Bounded<T>> {
        let refuse = || {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            None
        };
        let share = match io.peer_ip().map(peer_key) {
            Some(ip) => {
                let mut peers = self.peers.lock();
                let n = peers.entry(ip).or_default();
                if *n >= self.limits.per_peer.max(1) {
                    return refuse();
                }
                *n += 1;
                Some(PeerShare {
                    ip,
                    peers: self.peers.clone(),
                })
            }
            None => None,
        };
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return refuse();
        };
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        Some(Bounded {
            io,
            _permit: permit,
            _share: share,
            counters: self.counters.clone(),
            deadline: Box::pin(tokio::time::sleep(self.limits.first_reply)),
            idle: self.limits.idle,
            answered: false,
            expired: false,
        })
    }
}

/// A connection holding one slot; closed when silent too long.
pub(crate) struct Bounded<T> {
    io: T,
    _permit: OwnedSemaphorePermit,
    _share: Option<PeerShare>,
    counters: Arc<Counters>,
    deadline: Pin<Box<Sleep>>,
    idle: Duration,
    /// Whether the agent wrote anything yet (until then, the deadline is
    /// the first reply's).
    answered: bool,
    /// Whether this connection's time ran out (counted once, however many
    /// of its reads and writes see it).
    expired: bool,
}

impl<T> Drop for Bounded<T> {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<T> Bounded<T> {
    fn wrote(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if !self.answered {
            self.answered = true;
            let next = Instant::now() + self.idle;
            self.deadline.as_mut().reset(next);
        }
        self.moved();
    }

    fn moved(&mut self) {
        let next = Instant::now() + self.idle;
        // Resetting a timer costs a lock in tokio's wheel: at most once a
        // second of traffic.
        if next > self.deadline.deadline() + Duration::from_secs(1) {
            self.deadline.as_mut().reset(next);
        }
    }

    /// While the inner I/O waits: whether the connection's time is up.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.expired {
            return true;
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired = true;
            self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "taskscope-agent: connection silent too long",
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for Bounded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && self.answered {
                    self.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Bounded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                self.wrote(n);
                Poll::Ready(Ok(n))
            }
            // A reader that never reads (its window full) is silent too.
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                self.wrote(n);
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Bounded<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// The listener's connections that get a slot (the others are closed as
/// accepted), waiting after a failed accept rather than trying again at
/// once. Never ends while the listener does not, and yields no errors:
/// tonic would only log them.
pub(crate) struct Admitted<S> {
    incoming: S,
    gate: Gate,
    backoff: Option<Pin<Box<Sleep>>>,
    delay: Duration,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl<S> Admitted<S> {
    pub(crate) fn new(gate: Gate, incoming: S) -> Admitted<S> {
        Admitted {
            incoming,
            gate,
            backoff: None,
            delay: FIRST_BACKOFF,
        }
    }
}

impl<S, T> tokio_stream::Stream for Admitted<S>
where
    S: tokio_stream::Stream<Item = io::Result<T>> + Unpin,
    T: Peer,
{
    type Item = io::Result<Bounded<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(wait) = this.backoff.as_mut() {
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.backoff = None;
            }
            match Pin::new(&mut this.incoming).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Ok(io))) => {
                    this.delay = FIRST_BACKOFF;
                    if let Some(c) = this.gate.admit(io) {
                        return Poll::Ready(Some(Ok(c)));
                    }
                }
                Poll::Ready(Some(Err(_))) => {
                    this.gate
                        .counters
                        .accept_failed
                        .fetch_add(1, Ordering::Relaxed);
                    this.backoff = Some(Box::pin(tokio::time::sleep(this.delay)));
                    this.delay = (this.delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Most leaf futures kept per capture (a `select!` over many), and most
/// frames per leaf.
#[cfg(taskdumps)]
pub const MAX_LEAVES: usize = 16;
#[cfg(taskdumps)]
pub const MAX_FRAMES: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_host_s_slash_64_is_one_peer() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(peer_key(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(peer_key(v4), v4);
    }
}
