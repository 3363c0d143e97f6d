//! The HTTP server of the LXD 5.0 REST API: accept loops for the unix socket and the HTTPS
//! listeners, one route table ([`routes`]) that every request goes through ([`dispatch`]),
//! forwarding to the member a request belongs to ([`forward`]), websockets, and one action
//! type per endpoint under [`handlers`] that parses the request and calls one service.
//! Handlers never touch the store or the container driver.
//!
//! May call: services, cluster, operations, events, api, config, tls, util.

pub mod dispatch;
pub mod forward;
pub mod handlers;
pub mod listeners;
pub mod request;
pub mod response;
pub mod routes;
pub mod websocket;

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};

pub use request::{PeerInfo, Transport};

use crate::services::Member;

/// Serves one request of a connection.
async fn serve_request(
    member: Arc<Member>,
    peer: PeerInfo,
    mut req: http::Request<hyper::body::Incoming>,
) -> Result<response::Reply, std::convert::Infallible> {
    let upgrade = Some(hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(dispatch::refused(response::ApiError::bad_request(format!("reading the request: {e}"))).into_reply()),
    };
    let incoming = dispatch::Incoming {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body,
        peer,
        upgrade,
    };
    Ok(dispatch::dispatch(&member, incoming).await.into_reply())
}

/// Serves one accepted connection (HTTP/1.1 with upgrades for websockets, or HTTP/2).
pub fn serve_connection<IO>(member: Arc<Member>, io: IO, peer: PeerInfo)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| serve_request(member.clone(), peer.clone(), req));
    tokio::spawn(async move {
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(io), svc).await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}

/// Accepts connections on the unix socket until the daemon shuts down.
pub async fn serve_unix(member: Arc<Member>, listener: tokio::net::UnixListener) {
    loop {
        tokio::select! {
            _ = member.shutdown.requested() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let uid = stream.peer_cred().ok().map(|c| c.uid());
                    let peer = PeerInfo { transport: Transport::Unix, remote: "@".into(), uid, cert_der: None, fingerprint: None };
                    serve_connection(member.clone(), stream, peer);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unix socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}
