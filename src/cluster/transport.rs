//! Raft messages between members: one persistent mutual-TLS HTTP/1.1 connection per peer
//! (pinned cluster certificate, this member's server certificate as client certificate),
//! messages batched per peer into one `POST /internal/raft`, snapshots streamed as files with
//! `POST /internal/raft/snapshot`, reconnection with back-off.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use protobuf::Message as _;
use raft::prelude::{Message, MessageType};
use tokio::sync::mpsc;

use crate::client::Connection;
use crate::raft::{RaftHandle, SnapshotData, Transport};
use crate::tls::{KeyPairPem, ServerPin};

enum Outgoing {
    Messages(Vec<Message>),
    Snapshot(Message),
}

struct Peer {
    address: String,
    tx: mpsc::UnboundedSender<Outgoing>,
}

pub struct HttpTransport {
    peers: RwLock<HashMap<u64, Peer>>,
    cluster_fingerprint: String,
    identity: KeyPairPem,
    /// Where snapshot files live.
    dir: PathBuf,
    node: Arc<OnceLock<RaftHandle>>,
    /// This member's own address, which outgoing connections come from.
    source: Option<std::net::IpAddr>,
}

/// Why a batch of raft messages could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated raft message")]
    Truncated,
    #[error("invalid raft message: {0}")]
    Invalid(#[from] protobuf::ProtobufError),
}

/// Why a peer link failed (the peer is reported unreachable; raft retries).
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("request timed out")]
    RequestTimeout,
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error(transparent)]
    Request(#[from] http::Error),
    #[error("{status}: {body}")]
    Refused { status: http::StatusCode, body: String },
    #[error("snapshot {file}: {source}")]
    Snapshot { file: String, source: std::io::Error },
    #[error("snapshot data: {0}")]
    SnapshotData(#[from] serde_json::Error),
}

/// Length-prefixed protobuf messages: the body of `POST /internal/raft`.
pub fn encode(msgs: &[Message]) -> Bytes {
    let mut buf = BytesMut::new();
    for m in msgs {
        let bytes = m.write_to_bytes().unwrap_or_default();
        buf.put_u32(bytes.len() as u32);
        buf.put_slice(&bytes);
    }
    buf.freeze()
}

pub fn decode(mut body: &[u8]) -> Result<Vec<Message>, DecodeError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (head, rest) = body.split_first_chunk::<4>().ok_or(DecodeError::Truncated)?;
        let len = u32::from_be_bytes(*head) as usize;
        let data = rest.get(..len).ok_or(DecodeError::Truncated)?;
        out.push(Message::parse_from_bytes(data)?);
        body = &rest[len..];
    }
    Ok(out)
}

impl HttpTransport {
    pub fn new(
        cluster_fingerprint: String,
        identity: KeyPairPem,
        dir: PathBuf,
        source: Option<std::net::IpAddr>,
    ) -> Arc<HttpTransport> {
        Arc::new(HttpTransport {
            peers: RwLock::new(HashMap::new()),
            cluster_fingerprint,
            identity,
            dir,
            node: Arc::new(OnceLock::new()),
            source,
        })
    }

    pub fn source(&self) -> Option<std::net::IpAddr> {
        self.source
    }

    /// Connects the transport to the node it serves (for failure reports).
    pub fn attach(&self, node: RaftHandle) {
        let _ = self.node.set(node);
    }

    pub fn address_of(&self, id: u64) -> Option<String> {
        self.peers.read().ok()?.get(&id).map(|p| p.address.clone())
    }

    /// Drops the links to peers that no longer hold a replica.
    pub fn retain(&self, keep: impl Fn(u64) -> bool) {
        if let Ok(mut peers) = self.peers.write() {
            peers.retain(|id, _| keep(*id));
        }
    }

    pub fn addresses(&self) -> HashMap<u64, String> {
        self.peers.read().map(|p| p.iter().map(|(id, p)| (*id, p.address.clone())).collect()).unwrap_or_default()
    }

    fn spawn_peer(&self, id: u64, address: String) -> mpsc::UnboundedSender<Outgoing> {
        let (tx, rx) = mpsc::unbounded_channel();
        let link = Link {
            id,
            address,
            pin: ServerPin::Fingerprint(self.cluster_fingerprint.clone()),
            identity: self.identity.clone(),
            dir: self.dir.clone(),
            node: self.node.clone(),
            source: self.source,
        };
        tokio::spawn(link.run(rx));
        tx
    }
}

impl Transport for HttpTransport {
    fn send(&self, msgs: Vec<Message>) {
        let Ok(peers) = self.peers.read() else { return };
        let mut by_peer: HashMap<u64, Vec<Message>> = HashMap::new();
        for m in msgs {
            if m.get_msg_type() == MessageType::MsgSnapshot {
                if let Some(p) = peers.get(&m.to) {
                    let _ = p.tx.send(Outgoing::Snapshot(m));
                }
                continue;
            }
            by_peer.entry(m.to).or_default().push(m);
        }
        for (to, batch) in by_peer {
            match peers.get(&to) {
                Some(p) => {
                    let _ = p.tx.send(Outgoing::Messages(batch));
                }
                None => {
                    if let Some(node) = self.node.get() {
                        node.report_unreachable(to);
                    }
                }
            }
        }
    }

    fn set_peer(&self, id: u64, address: &str) {
        let Ok(mut peers) = self.peers.write() else { return };
        if peers.get(&id).is_some_and(|p| p.address == address) {
            return;
        }
        let tx = self.spawn_peer(id, address.to_string());
        peers.insert(id, Peer { address: address.to_string(), tx });
    }
}

/// The sending side of one peer connection.
struct Link {
    id: u64,
    address: String,
    pin: ServerPin,
    identity: KeyPairPem,
    dir: PathBuf,
    node: Arc<OnceLock<RaftHandle>>,
    source: Option<std::net::IpAddr>,
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;
type Sender = hyper::client::conn::http1::SendRequest<Body>;

/// Size of the pieces a snapshot file is streamed in.
const SNAPSHOT_CHUNK: usize = 1024 * 1024;

fn full(body: Bytes) -> Body {
    Full::new(body).map_err(|never| match never {}).boxed()
}

/// A file as a request body read and sent in `SNAPSHOT_CHUNK` pieces, never whole in memory.
fn file_body(file: tokio::fs::File) -> Body {
    use tokio::io::AsyncReadExt;
    let chunks = futures_util::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let mut buf = vec![0u8; SNAPSHOT_CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(hyper::body::Frame::data(Bytes::from(buf))), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    http_body_util::StreamBody::new(chunks).boxed()
}

impl Link {
    async fn connect(&self) -> Result<Sender, LinkError> {
        let conn = Connection::https(&self.address, self.pin.clone(), Some(&self.identity))?.bound_to(self.source);
        let (stream, _) =
            tokio::time::timeout(Duration::from_secs(2), conn.open()).await.map_err(|_| LinkError::ConnectTimeout)??;
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = driver.await;
        });
        Ok(sender)
    }

    async fn post(&self, sender: &mut Sender, path: &str, body: Body, headers: &[(&str, String)]) -> Result<(), LinkError> {
        sender.ready().await?;
        let mut req = http::Request::post(path).header("Host", &self.address).header("User-Agent", super::NOTIFIER_AGENT);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(body)?;
        let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
            .await
            .map_err(|_| LinkError::RequestTimeout)??;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(LinkError::Refused { status, body: String::from_utf8_lossy(&body).into_owned() });
        }
        Ok(())
    }

    fn unreachable(&self) {
        if let Some(node) = self.node.get() {
            node.report_unreachable(self.id);
        }
    }

    async fn send_snapshot(&self, sender: &mut Sender, m: Message) -> Result<(), LinkError> {
        let data: SnapshotData = serde_json::from_slice(&m.get_snapshot().data)?;
        let file = tokio::fs::File::open(self.dir.join(&data.file))
            .await
            .map_err(|source| LinkError::Snapshot { file: data.file.clone(), source })?;
        let header = base64::engine::general_purpose::STANDARD.encode(m.write_to_bytes().unwrap_or_default());
        let headers = [("X-Raft-Message", header), ("Content-Length", data.size.to_string())];
        self.post(sender, "/internal/raft/snapshot", file_body(file), &headers).await
    }

    async fn run(self, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
        let mut sender: Option<Sender> = None;
        let mut backoff = Duration::from_millis(50);
        while let Some(first) = rx.recv().await {
            let mut batch = Vec::new();
            let mut snapshots = Vec::new();
            let mut push = |o: Outgoing| match o {
                Outgoing::Messages(m) => batch.extend(m),
                Outgoing::Snapshot(m) => snapshots.push(m),
            };
            push(first);
            while let Ok(o) = rx.try_recv() {
                push(o);
            }
            if sender.as_ref().is_none_or(|s| s.is_closed()) {
                match self.connect().await {
                    Ok(s) => {
                        sender = Some(s);
                        backoff = Duration::from_millis(50);
                    }
                    Err(e) => {
                        tracing::debug!(peer = self.id, address = %self.address, error = %e, "raft peer unreachable");
                        self.unreachable();
                        for _ in &snapshots {
                            if let Some(node) = self.node.get() {
                                node.report_snapshot(self.id, false);
                            }
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                }
            }
            let Some(s) = sender.as_mut() else { continue };
            if !batch.is_empty()
                && let Err(e) = self.post(s, "/internal/raft", full(encode(&batch)), &[]).await
            {
                tracing::debug!(peer = self.id, error = %e, "raft send failed");
                sender = None;
                self.unreachable();
                continue;
            }
            for m in snapshots {
                let ok = match sender.as_mut() {
                    Some(s) => self.send_snapshot(s, m).await,
                    None => Err(LinkError::ConnectTimeout),
                };
                if let Err(e) = &ok {
                    tracing::warn!(peer = self.id, error = %e, "snapshot transfer failed");
                    sender = None;
                }
                if let Some(node) = self.node.get() {
                    node.report_snapshot(self.id, ok.is_ok());
                }
            }
        }
    }
}

/// Why a message or snapshot from a peer was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("This member holds no database replica")]
    NoReplica,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("missing X-Raft-Message")]
    MissingHeader,
    #[error("invalid X-Raft-Message: {0}")]
    Header(String),
    #[error("snapshot file does not match its announced size and checksum")]
    Mismatch,
    #[error("storing the snapshot {path}: {source}")]
    Store { path: String, source: std::io::Error },
}

impl ReceiveError {
    pub fn status(&self) -> u16 {
        match self {
            ReceiveError::NoReplica => 503,
            ReceiveError::Store { .. } => 500,
            _ => 400,
        }
    }
}

/// `POST /internal/raft` on this member: a batch of raft messages from a peer.
pub fn receive_messages(rt: &super::Runtime, body: &[u8]) -> Result<(), ReceiveError> {
    let node = rt.raft().ok_or(ReceiveError::NoReplica)?;
    for m in decode(body)? {
        node.step(m);
    }
    Ok(())
}

/// `POST /internal/raft/snapshot` on this member: a snapshot file, with its raft message in a
/// header. The file is checked against the size and checksum the message announces before
/// raft sees it.
pub async fn receive_snapshot(rt: &super::Runtime, header: Option<&str>, body: &[u8]) -> Result<(), ReceiveError> {
    use sha2::Digest;
    let node = rt.raft().ok_or(ReceiveError::NoReplica)?;
    let header = header.ok_or(ReceiveError::MissingHeader)?;
    let raw = base64::engine::general_purpose::STANDARD.decode(header).map_err(|e| ReceiveError::Header(e.to_string()))?;
    let msg = Message::parse_from_bytes(&raw).map_err(|e| ReceiveError::Header(e.to_string()))?;
    let data: SnapshotData = serde_json::from_slice(&msg.get_snapshot().data).map_err(|e| ReceiveError::Header(e.to_string()))?;
    let sum = format!("{:x}", sha2::Sha256::digest(body));
    if body.len() as u64 != data.size || sum != data.sha256 {
        return Err(ReceiveError::Mismatch);
    }
    let path = rt.env.paths.global_dir().join(format!("incoming-{}", data.file));
    tokio::fs::write(&path, body).await.map_err(|source| ReceiveError::Store { path: path.display().to_string(), source })?;
    node.step_snapshot(msg, path);
    Ok(())
}
