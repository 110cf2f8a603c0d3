//! Bounds on what clients can hold of the agent: connections at once, and
//! how long a connection may stay silent. A connection over the cap is
//! closed as it is accepted; one the agent has not answered within
//! [`Limits::first_reply`] of opening (its request never came, or comes a
//! byte at a time), or that moves no byte either way for [`Limits::idle`],
//! is closed. tonic's server has no such timeout for HTTP/1: a silent or
//! slow client would otherwise hold its socket and buffers for good. A
//! watching viewer is never idle: the agent writes to it every second.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// The agent's bounds on its clients.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once; more are closed when accepted.
    pub connections: usize,
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
            first_reply: Duration::from_secs(10),
            idle: Duration::from_secs(120),
        }
    }
}

/// Counts of what the bounds did, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub open: AtomicU64,
    pub refused: AtomicU64,
    pub timed_out: AtomicU64,
}

/// Hands out connection slots.
#[derive(Clone)]
pub struct Gate {
    limits: Limits,
    slots: Arc<Semaphore>,
    counters: Arc<Counters>,
}

impl Gate {
    pub fn new(limits: Limits, counters: Arc<Counters>) -> Gate {
        Gate {
            limits,
            slots: Arc::new(Semaphore::new(limits.connections.max(1))),
            counters,
        }
    }

    /// The accepted connection, bounded; `None` (and it is dropped, so
    /// closed) when every slot is taken.
    pub fn admit<T>(&self, io: T) -> Option<Bounded<T>> {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        Some(Bounded {
            io,
            _permit: permit,
            counters: self.counters.clone(),
            deadline: Box::pin(tokio::time::sleep(self.limits.first_reply)),
            idle: self.limits.idle,
            answered: false,
        })
    }
}

/// A connection holding one slot; closed when silent too long.
pub struct Bounded<T> {
    io: T,
    _permit: OwnedSemaphorePermit,
    counters: Arc<Counters>,
    deadline: Pin<Box<Sleep>>,
    idle: Duration,
    /// Whether the agent wrote anything yet (until then, the deadline is
    /// the first reply's).
    answered: bool,
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
        if self.deadline.as_mut().poll(cx).is_ready() {
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
