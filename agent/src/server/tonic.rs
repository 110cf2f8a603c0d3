//! A tonic server whose connection tasks capture themselves (each is
//! counted at the line that called `serve`). Replace
//!
//! ```text
//! Server::builder().add_service(a).add_service(b).serve(addr).await?;
//! ```
//!
//! with
//!
//! ```text
//! let listener = tokio::net::TcpListener::bind(addr).await?;
//! taskscope_agent::tonic::serve(listener, Routes::new(a).add_service(b)).await?;
//! ```
//!
//! (`tonic::service::Routes`), and `serve_with_shutdown(addr, signal)`
//! with `.with_graceful_shutdown(signal)`. Requests carry their
//! connection's info as tonic's own server gives it
//! (`request.remote_addr()`). HTTP/2 settings and timeouts that tonic's
//! `Server` builder held go to [`Serve::configure`]; tower layers go on
//! the routes (`Routes::into_axum_router().layer(…)`).

pub use crate::server::WithExtension;
use crate::server::axum::Serve;
use crate::server::{IncomingStream, Setup};
use ::axum::Router;
use ::axum::serve::Listener;
use ::tonic::service::Routes;
use ::tonic::transport::server::Connected;
use std::convert::Infallible;
use std::panic::Location;
use tower::Service;

/// Serves `routes` on `listener` as a tonic server would, with each
/// connection's task wrapped for captures and counted at this call's line.
/// The server is [`axum::serve`](crate::axum::serve)'s: see there for its
/// errors, panics and cancel safety, and for
/// [`with_graceful_shutdown`](crate::axum::Serve::with_graceful_shutdown)
/// and [`configure`](crate::axum::Serve::configure).
///
/// # Examples
///
/// ```no_run
/// # async fn doc<S>(svc: S) -> std::io::Result<()>
/// # where S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
/// #     + tonic::server::NamedService + Clone + Send + Sync + 'static,
/// #     S::Response: axum::response::IntoResponse, S::Future: Send + 'static,
/// # {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
/// taskscope_agent::tonic::serve(listener, tonic::service::Routes::new(svc)).await
/// # }
/// ```
#[track_caller]
pub fn serve<L>(
    listener: L,
    routes: Routes,
) -> Serve<L, MakeGrpc, WithExtension<Router, <L::Io as Connected>::ConnectInfo>>
where
    L: Listener,
    L::Io: Connected,
{
    Serve::new(
        listener,
        MakeGrpc {
            router: routes.prepare().into_axum_router(),
        },
        Setup {
            at: Location::caller(),
            configure: None,
        },
    )
}

/// Makes each connection's service: the routes, with the connection's info
/// in every request.
#[derive(Clone)]
pub struct MakeGrpc {
    router: Router,
}

impl<L> Service<IncomingStream<'_, L>> for MakeGrpc
where
    L: Listener,
    L::Io: Connected,
{
    type Response = WithExtension<Router, <L::Io as Connected>::ConnectInfo>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, L>) -> Self::Future {
        std::future::ready(Ok(WithExtension {
            inner: self.router.clone(),
            extra: stream.io().connect_info(),
        }))
    }
}
