//! Drop-in servers whose connection tasks capture themselves:
//! [`crate::axum::serve`] for `axum::serve`, [`crate::tonic::serve`] for a
//! tonic server. Both serve HTTP/1 and HTTP/2 (hyper-util's `auto`
//! builder, as axum does), with graceful shutdown and the peer's address
//! in each request (axum's `ConnectInfo`, tonic's `remote_addr()`).
//!
//! axum's and tonic's own servers spawn each connection's task with
//! `tokio::spawn` inside the library: the agent counts those tasks but
//! cannot ask them what they wait on. Here each connection is spawned
//! wrapped for captures and counted at the line that started the server
//! (the caller of `serve`), so an idle keep-alive connection reads
//! "socket read" at `src/main.rs:42`, the server's line, instead of
//! `idle` at a line in axum's source. Its HTTP/2 streams, spawned by
//! hyper through the agent's executor, count at hyper's line, split by
//! the server's line.

pub mod axum;
pub mod tonic;

use crate::spawn::TracedExecutor;
use ::axum::body::Body;
use ::axum::extract::Request;
use ::axum::response::Response;
use ::axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::panic::Location;
use std::pin::pin;
use std::sync::Arc;
use tokio::sync::watch;
use tower::{Service, ServiceExt};

/// The connection builder the drop-ins serve with (hyper-util's `auto`
/// builder on the agent's executor), for
/// [`Serve::configure`](crate::axum::Serve::configure)-style
/// settings: timeouts, HTTP/2 windows and limits.
pub type ConnBuilder = Builder<TracedExecutor>;

/// A setting applied to each connection's builder.
pub(crate) type Configure = Arc<dyn Fn(&mut ConnBuilder) + Send + Sync>;

/// What one server run needs besides its listener and service.
#[derive(Clone)]
pub(crate) struct Setup {
    /// The line that started the server: where its connections count.
    pub at: &'static Location<'static>,
    pub configure: Option<Configure>,
}

impl Setup {
    fn builder(&self) -> ConnBuilder {
        let mut b = Builder::new(TracedExecutor::at(self.at));
        // CONNECT for HTTP/2 websockets, as axum's own server.
        b.http2().enable_connect_protocol();
        if let Some(f) = &self.configure {
            f(&mut b);
        }
        b
    }
}

/// What the make-service sees of a new connection, like axum's own
/// `IncomingStream` (which only axum can make).
pub struct IncomingStream<'a, L: Listener> {
    io: &'a TokioIo<L::Io>,
    remote_addr: L::Addr,
}

impl<L: Listener> IncomingStream<'_, L> {
    /// The connection.
    pub fn io(&self) -> &L::Io {
        self.io.inner()
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> &L::Addr {
        &self.remote_addr
    }
}

/// Accepts connections until `signal` (if any) completes, serving each on
/// a task of its own placed at `setup.at` and wrapped for captures; then,
/// with a signal, lets the open connections finish their requests and
/// waits for them. `make_service` makes each connection's service.
pub(crate) async fn run<L, M, S, Sig>(
    mut listener: L,
    setup: Setup,
    mut make_service: M,
    signal: Option<Sig>,
) where
    L: Listener,
    M: for<'a> Service<IncomingStream<'a, L>, Error = Infallible, Response = S>,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    Sig: Future<Output = ()>,
{
    let graceful = signal.is_some();
    let mut signal = pin!(async {
        match signal {
            Some(s) => s.await,
            None => std::future::pending().await,
        }
    });
    // Dropped when the signal fires: each connection then shuts down
    // gracefully. Each connection holds a receiver of `close` until it
    // ends, which the server then waits for.
    let (signal_tx, signal_rx) = watch::channel(());
    let (close_tx, close_rx) = watch::channel(());
    loop {
        let (io, remote_addr) = tokio::select! {
            conn = listener.accept() => conn,
            _ = &mut signal => break,
        };
        let io = TokioIo::new(io);
        let Ok(ready) = make_service.ready().await;
        let Ok(svc) = ready
            .call(IncomingStream {
                io: &io,
                remote_addr,
            })
            .await;
        let svc = svc.map_request(|req: http::Request<Incoming>| req.map(Body::new));
        let svc = TowerToHyperService::new(svc);
        let builder = setup.builder();
        let signal_tx = signal_tx.clone();
        let close_rx = close_rx.clone();
        crate::spawn::spawn_at(setup.at, false, async move {
            let mut conn = pin!(builder.serve_connection_with_upgrades(io, svc));
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = signal_tx.closed(), if graceful => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            drop(close_rx);
        });
    }
    drop(signal_rx);
    drop(close_rx);
    drop(listener);
    if graceful {
        close_tx.closed().await;
    }
}

/// A service with the request's extensions extended by `extra` (tonic's
/// connection info).
#[derive(Clone)]
pub struct WithExtension<S, T> {
    inner: S,
    extra: T,
}

impl<S, T, B> Service<http::Request<B>> for WithExtension<S, T>
where
    S: Service<http::Request<B>>,
    T: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.extra.clone());
        self.inner.call(req)
    }
}
