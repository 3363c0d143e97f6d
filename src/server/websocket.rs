//! Websockets: accepting the upgrade of a request (RFC 6455 handshake, then tungstenite on the
//! upgraded connection), carrying an exec stream's frames between the client and the session,
//! following the event stream, and proxying a client's socket to the member that runs the
//! operation it belongs to.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::response::Response;
use crate::cluster::Runtime;
use crate::services::events::{Next, Subscription};
use crate::services::instances::exec::{FromClient, Stream, ToClient};
use crate::util::shutdown::Shutdown;

pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// A websocket request: what the handshake needs of it.
pub struct Upgrade {
    headers: http::HeaderMap,
    upgrade: hyper::upgrade::OnUpgrade,
}

impl Upgrade {
    /// Takes the pending upgrade of a websocket route's request.
    pub fn take(req: &mut super::request::Request) -> Result<Upgrade, super::response::ApiError> {
        let upgrade = req.upgrade.take().ok_or_else(|| super::response::ApiError::bad_request("Not a websocket request"))?;
        Ok(Upgrade { headers: std::mem::take(&mut req.headers), upgrade })
    }
}

/// Answers the upgrade (101) and runs `serve` on the socket once the client switched.
pub fn accept<F, Fut>(request: Upgrade, serve: F) -> Response
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Upgrade { headers, upgrade } = request;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let wants_upgrade = header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let Some(key) = header("sec-websocket-key").filter(|_| wants_upgrade) else {
        return Response::error(400, "websocket: the client is not using the websocket protocol");
    };
    let accept_key = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                serve(socket).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut resp = http::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
    *resp.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
    h.insert(http::header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
    if let Ok(v) = http::HeaderValue::try_from(accept_key) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Response::Raw(Box::new(resp))
}

/// Carries one exec stream: the client's frames to the session, the session's to the client.
/// The socket closes when the session drops its side.
pub async fn carry(socket: Socket, attach: tokio::sync::oneshot::Sender<Stream>) {
    let (to_session, from_client) = mpsc::channel(64);
    let (to_client, mut from_session) = mpsc::channel(64);
    if attach.send(Stream { from_client, to_client }).is_err() {
        return;
    }
    let (mut sink, mut source) = socket.split();
    let inbound = async move {
        while let Some(Ok(m)) = source.next().await {
            let frame = match m {
                Message::Binary(b) => FromClient::Binary(b.to_vec()),
                Message::Text(t) => FromClient::Text(t.as_str().to_string()),
                Message::Close(_) => break,
                _ => continue,
            };
            if to_session.send(frame).await.is_err() {
                break;
            }
        }
    };
    let outbound = async move {
        while let Some(frame) = from_session.recv().await {
            let m = match frame {
                ToClient::Binary(b) => Message::binary(b),
                ToClient::End => Message::text(""),
            };
            if sink.send(m).await.is_err() {
                return;
            }
        }
        // The session is done with this stream.
        let _ = sink.flush().await;
    };
    // The session ending its side closes the socket; the client going away ends its side.
    tokio::select! {
        _ = outbound => {}
        _ = async { inbound.await; std::future::pending::<()>().await } => {}
    }
}

/// Sends the events the subscription yields, with a keepalive ping every 10 s as LXD sends,
/// until the client goes away, stops answering pings, or the daemon stops.
pub async fn follow_events(socket: Socket, mut subscription: Subscription, shutdown: Shutdown) {
    let (mut tx, mut incoming) = socket.split();
    if tx.send(Message::Ping("keepalive".into())).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(Duration::from_secs(10));
    ping.tick().await;
    let mut outstanding = 0u32;
    tracing::debug!("Event listener server handler started");
    loop {
        tokio::select! {
            _ = shutdown.requested() => break,
            next = subscription.next() => match next {
                Next::Event(ev) => {
                    let Ok(text) = serde_json::to_string(&*ev) else { continue };
                    if tx.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Next::Lagged(n) => tracing::warn!(skipped = n, "event listener too slow, events dropped"),
                Next::Closed => break,
            },
            msg = incoming.next() => match msg {
                Some(Ok(Message::Pong(_))) => outstanding = 0,
                Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
                _ => break,
            },
            _ = ping.tick() => {
                outstanding += 1;
                if outstanding > 2 || tx.send(Message::Ping("keepalive".into())).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Relays a client's socket to the member running operation `op_id`.
pub fn proxy(rt: Arc<Runtime>, request: Upgrade, secret: String, op_id: String) -> Response {
    accept(request, move |client| async move {
        let Some(owner) = rt.operation_owner(&op_id).await else {
            tracing::warn!(operation = %op_id, "Failed to proxy an operation websocket: Operation not found");
            return;
        };
        let path = format!("/1.0/operations/{op_id}/websocket?secret={secret}");
        let upstream = match rt.websocket(&owner, &path).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(operation = %op_id, error = %e, "Failed to proxy an operation websocket");
                return;
            }
        };
        let (mut up_tx, mut up_rx) = upstream.split();
        let (mut cl_tx, mut cl_rx) = client.split();
        let to_upstream = async {
            while let Some(Ok(m)) = cl_rx.next().await {
                let m = match m {
                    Message::Binary(_) | Message::Text(_) => m,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if up_tx.send(m).await.is_err() {
                    break;
                }
            }
        };
        let to_client = async {
            while let Some(Ok(m)) = up_rx.next().await {
                let m = match m {
                    Message::Binary(_) | Message::Text(_) => m,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if cl_tx.send(m).await.is_err() {
                    break;
                }
            }
        };
        // Either side ending ends the session: the other is closed by dropping it.
        tokio::select! {
            _ = to_upstream => {}
            _ = to_client => {}
        }
    })
}
