//! `axum::serve`, with connection tasks that capture themselves (each is
//! counted at the line that called `serve`). Replace
//!
//! ```text
//! axum::serve(listener, app).await?;
//! ```
//!
//! with
//!
//! ```text
//! taskscope_agent::axum::serve(listener, app).await?;
//! ```
//!
//! and keep the rest: `.with_graceful_shutdown(signal)`, `.local_addr()`,
//! `app.into_make_service()` and
//! `app.into_make_service_with_connect_info::<SocketAddr>()` (for the
//! `ConnectInfo` extractor), any [`Listener`] (`TcpListener`,
//! `UnixListener`, `listener.tap_io(…)`). For a connection-info type of
//! your own, implement `Connected<taskscope_agent::axum::IncomingStream<'_,
//! L>>` for it, as you would for axum's own `IncomingStream`.

pub use crate::server::{ConnBuilder, IncomingStream};
use crate::server::{Setup, run};
use ::axum::Router;
use ::axum::extract::Request;
use ::axum::extract::connect_info::Connected;
use ::axum::response::Response;
pub use ::axum::serve::Listener;
use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::io;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use tower::Service;

/// Serves `make_service` on `listener` like `axum::serve`, with each
/// connection's task wrapped for captures and counted at this call's line.
///
/// # Errors
///
/// None today: the `io::Result` is `axum::serve`'s (a listener's accept
/// errors are handled by the listener, as axum's `Listener` does).
///
/// # Panics
///
/// Awaited outside a tokio runtime: each connection is a task of its own,
/// spawned with `tokio::spawn`.
///
/// # Cancel safety
///
/// Dropping the future stops accepting; connections already accepted run
/// on in their own tasks until they end. For a shutdown that waits for
/// them, use [`Serve::with_graceful_shutdown`].
///
/// # Examples
///
/// ```no_run
/// use axum::{Router, routing::get};
///
/// # async fn doc() -> std::io::Result<()> {
/// let app = Router::new().route("/", get(|| async { "hello" }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// taskscope_agent::axum::serve(listener, app).await
/// # }
/// ```
#[track_caller]
pub fn serve<L, M, S>(listener: L, make_service: M) -> Serve<L, M, S>
where
    L: Listener,
    M: for<'a> Service<IncomingStream<'a, L>, Error = Infallible, Response = S>,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    Serve::new(
        listener,
        make_service,
        Setup {
            at: Location::caller(),
            configure: None,
        },
    )
}

/// A server from [`serve`]: await it, or add a graceful shutdown.
#[must_use = "a server does nothing until awaited"]
pub struct Serve<L, M, S> {
    listener: L,
    make_service: M,
    setup: Setup,
    _marker: PhantomData<fn() -> S>,
}

impl<L: Listener, M, S> Serve<L, M, S> {
    pub(crate) fn new(listener: L, make_service: M, setup: Setup) -> Self {
        Serve {
            listener,
            make_service,
            setup,
            _marker: PhantomData,
        }
    }

    /// Stops accepting when `signal` completes, lets the open connections
    /// finish their requests (HTTP/1 keep-alive connections close after
    /// their current request, HTTP/2 ones send `GOAWAY`), and completes
    /// when they all have.
    pub fn with_graceful_shutdown<F>(self, signal: F) -> WithGracefulShutdown<L, M, S, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        WithGracefulShutdown {
            serve: self,
            signal,
        }
    }

    /// Sets up each connection's builder (hyper-util's `auto` builder on
    /// the agent's executor): timeouts, HTTP/2 settings. For example, a
    /// read timeout on requests' headers, so that idle keep-alive
    /// connections close:
    ///
    /// ```no_run
    /// # async fn doc(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    /// use std::time::Duration;
    /// taskscope_agent::axum::serve(listener, app)
    ///     .configure(|b| {
    ///         b.http1()
    ///             .timer(hyper_util::rt::TokioTimer::new())
    ///             .header_read_timeout(Duration::from_secs(30));
    ///     })
    ///     .await
    /// # }
    /// ```
    pub fn configure(mut self, f: impl Fn(&mut ConnBuilder) + Send + Sync + 'static) -> Self {
        self.setup.configure = Some(Arc::new(f));
        self
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// The listener's own error, if it cannot tell.
    pub fn local_addr(&self) -> io::Result<L::Addr> {
        self.listener.local_addr()
    }
}

/// A server from [`Serve::with_graceful_shutdown`].
#[must_use = "a server does nothing until awaited"]
pub struct WithGracefulShutdown<L, M, S, F> {
    serve: Serve<L, M, S>,
    signal: F,
}

impl<L: Listener, M, S, F> WithGracefulShutdown<L, M, S, F> {
    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// The listener's own error, if it cannot tell.
    pub fn local_addr(&self) -> io::Result<L::Addr> {
        self.serve.listener.local_addr()
    }
}

/// A router serves every connection, as with `axum::serve`.
impl<L: Listener> Service<IncomingStream<'_, L>> for Router<()> {
    type Response = Router;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Router, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: IncomingStream<'_, L>) -> Self::Future {
        std::future::ready(Ok(self.clone().with_state(())))
    }
}

/// `ConnectInfo<SocketAddr>`, for
/// `app.into_make_service_with_connect_info::<SocketAddr>()`.
impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for std::net::SocketAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        *stream.remote_addr()
    }
}

type Served = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

fn serving<L, M, S, F>(serve: Serve<L, M, S>, signal: Option<F>) -> Served
where
    L: Listener,
    M: for<'a> Service<IncomingStream<'a, L>, Error = Infallible, Response = S> + Send + 'static,
    for<'a> <M as Service<IncomingStream<'a, L>>>::Future: Send,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    F: Future<Output = ()> + Send + 'static,
{
    let Serve {
        listener,
        make_service,
        setup,
        _marker,
    } = serve;
    Box::pin(async move {
        run(listener, setup, make_service, signal).await;
        Ok(())
    })
}

impl<L, M, S> IntoFuture for Serve<L, M, S>
where
    L: Listener,
    M: for<'a> Service<IncomingStream<'a, L>, Error = Infallible, Response = S> + Send + 'static,
    for<'a> <M as Service<IncomingStream<'a, L>>>::Future: Send,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Output = io::Result<()>;
    type IntoFuture = Served;

    fn into_future(self) -> Served {
        serving::<_, _, _, std::future::Pending<()>>(self, None)
    }
}

impl<L, M, S, F> IntoFuture for WithGracefulShutdown<L, M, S, F>
where
    L: Listener,
    M: for<'a> Service<IncomingStream<'a, L>, Error = Infallible, Response = S> + Send + 'static,
    for<'a> <M as Service<IncomingStream<'a, L>>>::Future: Send,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    F: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = Served;

    fn into_future(self) -> Served {
        serving(self.serve, Some(self.signal))
    }
}
