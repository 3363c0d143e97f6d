//! The HTTP server: accept loops for the unix socket and the HTTPS listener (rustls, client
//! certificate requested), routing, authentication and the event and operation endpoints.

pub mod events;
pub mod exec;
pub mod handlers;
pub mod listeners;
pub mod request;
pub mod response;
pub mod router;

use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};

pub use request::{PeerInfo, Transport};

use crate::daemon::Daemon;

/// A hyper service that stamps the connection's [`PeerInfo`] on each request before handing it
/// to the warp filter.
#[derive(Clone)]
struct WithPeer<S> {
    inner: S,
    peer: PeerInfo,
}

impl<S, B> hyper::service::Service<http::Request<B>> for WithPeer<S>
where
    S: tower_service::Service<http::Request<B>> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.peer.clone());
        let mut inner = self.inner.clone();
        inner.call(req)
    }
}

/// Serves one accepted connection (HTTP/1.1, upgrades allowed for websockets).
pub fn serve_connection<IO>(daemon: Arc<Daemon>, io: IO, peer: PeerInfo)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = WithPeer { inner: warp::service(router::routes(daemon)), peer };
    tokio::spawn(async move {
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(io), svc).await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}

/// Accepts connections on the unix socket until the daemon shuts down.
pub async fn serve_unix(daemon: Arc<Daemon>, listener: tokio::net::UnixListener) {
    loop {
        tokio::select! {
            _ = daemon.shutdown_requested() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let uid = stream.peer_cred().ok().map(|c| c.uid());
                    let peer = PeerInfo { transport: Transport::Unix, remote: "@".into(), uid, cert_der: None, fingerprint: None };
                    serve_connection(daemon.clone(), stream, peer);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unix socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}
