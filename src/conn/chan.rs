//! The channel every call to a target goes through: it presents the
//! agent's token (`authorization: Bearer …`), when the user gave one, on
//! the console's calls and the agent's alike.

use std::task::{Context, Poll};
use tonic::codegen::http;
use tonic::transport::Channel;

/// A connection to one target, with the token to present (if any).
#[derive(Clone, Debug)]
pub struct Chan {
    inner: Channel,
    auth: Option<http::HeaderValue>,
}

impl Chan {
    pub fn new(inner: Channel, token: Option<&super::Credential>) -> Chan {
        Chan {
            inner,
            auth: token.map(super::Credential::header),
        }
    }

    /// The channel once it takes a call, for a generated client: the
    /// client waits for that too, but reports a channel that fails as
    /// `UNKNOWN` ("Service was not ready"), and the callers tell an
    /// unreachable agent by this error.
    pub async fn ready(mut self) -> Result<Chan, tonic::transport::Error> {
        tower::ServiceExt::<http::Request<tonic::body::Body>>::ready(&mut self).await?;
        Ok(self)
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Chan {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = tonic::transport::channel::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> Self::Future {
        if let Some(a) = &self.auth {
            req.headers_mut()
                .insert(http::header::AUTHORIZATION, a.clone());
        }
        tower::Service::call(&mut self.inner, req)
    }
}
