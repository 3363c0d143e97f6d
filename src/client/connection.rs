//! A connection target (unix socket or HTTPS) and the request/response cycle over it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::keepalive::KeepAlive;
use super::{ClientError, Result};
use crate::api::{Envelope, Operation};
use crate::tls::{self, KeyPairPem, ServerPin};

/// Any byte stream a request can travel over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Clone)]
pub enum Target {
    Unix(PathBuf),
    Https { host_port: String, tls: Arc<rustls::ClientConfig> },
}

/// A decoded reply: HTTP status, headers and envelope.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub envelope: Envelope,
}

impl Reply {
    pub fn etag(&self) -> Option<String> {
        self.headers.get("etag").and_then(|v| v.to_str().ok()).map(|s| s.trim_matches('"').to_string())
    }
}

#[derive(Clone)]
pub struct Connection {
    pub target: Target,
    /// What to call the server in messages ("unix.socket", "127.0.0.1:8443").
    pub host: String,
    pub user_agent: String,
    /// Extra query parameters added to every request (project, target).
    pub query: Vec<(String, String)>,
    /// Local address outgoing TCP connections are bound to (members use their own address, so
    /// traffic between members is attributable and filterable per member).
    pub bind: Option<std::net::IpAddr>,
    /// Where connections are kept between requests (members talking to members); None opens
    /// one connection per request.
    pub keep_alive: Option<Arc<KeepAlive>>,
}

fn connection_closes(headers: &http::HeaderMap) -> bool {
    headers.get("connection").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Connection {
    pub fn unix(path: PathBuf) -> Connection {
        Connection {
            target: Target::Unix(path),
            host: "unix.socket".into(),
            user_agent: user_agent(),
            query: Vec::new(),
            bind: None,
            keep_alive: None,
        }
    }

    /// HTTPS to `host_port`, pinning `pin` and presenting `identity`.
    pub fn https(host_port: &str, pin: ServerPin, identity: Option<&KeyPairPem>) -> Result<Connection> {
        let tls = tls::client_config(pin, identity).map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(Connection {
            target: Target::Https { host_port: host_port.to_string(), tls },
            host: host_port.to_string(),
            user_agent: user_agent(),
            query: Vec::new(),
            bind: None,
            keep_alive: None,
        })
    }

    /// Binds outgoing connections to `ip`.
    pub fn bound_to(mut self, ip: Option<std::net::IpAddr>) -> Connection {
        self.bind = ip;
        self
    }

    /// Reuses connections kept in `pool` (and keeps this one's there).
    pub fn kept_in(mut self, pool: Arc<KeepAlive>) -> Connection {
        self.keep_alive = Some(pool);
        self
    }

    pub fn with_query(mut self, key: &str, value: &str) -> Connection {
        self.query.retain(|(k, _)| k != key);
        self.query.push((key.into(), value.into()));
        self
    }

    /// Opens the byte stream (TLS handshake included). Returns the stream and, for HTTPS, the
    /// server's certificate.
    pub async fn open(&self) -> Result<(Box<dyn Io>, Option<Vec<u8>>)> {
        match &self.target {
            Target::Unix(path) => {
                let s = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| ClientError::Connect { addr: path.display().to_string(), reason: e.to_string() })?;
                Ok((Box::new(s), None))
            }
            Target::Https { host_port, tls } => {
                let err = |reason: String| ClientError::Connect { addr: host_port.clone(), reason };
                let connect = async {
                    let Some(local) = self.bind else { return tokio::net::TcpStream::connect(host_port).await };
                    let remote = tokio::net::lookup_host(host_port)
                        .await?
                        .find(|a| a.is_ipv4() == local.is_ipv4())
                        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address of the same family"))?;
                    let socket =
                        if local.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
                    socket.bind(std::net::SocketAddr::new(local, 0))?;
                    socket.connect(remote).await
                };
                let tcp = tokio::time::timeout(Duration::from_secs(10), connect)
                    .await
                    .map_err(|_| err("connection timed out".into()))?
                    .map_err(|e| err(e.to_string()))?;
                let _ = tcp.set_nodelay(true);
                let host = host_port.rsplit_once(':').map(|(h, _)| h).unwrap_or(host_port).trim_matches(['[', ']']);
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .unwrap_or_else(|_| rustls::pki_types::ServerName::try_from("localhost").expect("static name"));
                let stream =
                    tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await.map_err(|e| err(e.to_string()))?;
                let cert = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
                Ok((Box::new(stream), cert))
            }
        }
    }

    /// The request target with the connection's extra query parameters merged in.
    pub fn url(&self, path: &str) -> String {
        if self.query.is_empty() {
            return path.to_string();
        }
        let (base, existing) = path.split_once('?').unwrap_or((path, ""));
        let mut parts: Vec<String> = existing.split('&').filter(|p| !p.is_empty()).map(str::to_string).collect();
        for (k, v) in &self.query {
            if !parts.iter().any(|p| p.split('=').next() == Some(k.as_str())) {
                parts.push(format!("{k}={}", escape(v)));
            }
        }
        format!("{base}?{}", parts.join("&"))
    }

    /// Sends one request; returns status, headers and raw body.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, String)],
    ) -> Result<(u16, http::HeaderMap, Bytes)> {
        let uri = self.url(path);
        tracing::debug!(method, url = %format!("{}{uri}", self.host), "Sending request to LXD");
        let mut req =
            http::Request::builder().method(method).uri(&uri).header("Host", &self.host).header("User-Agent", &self.user_agent);
        if self.keep_alive.is_none() {
            req = req.header("Connection", "close");
        }
        let has_body = body.is_some();
        if has_body {
            req = req.header("Content-Type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let mut req = req.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(|e| ClientError::Http(e.to_string()))?;
        let http_err = |e: hyper::Error| ClientError::Http(e.to_string());
        // A kept connection the server closed meanwhile hands the request back unsent.
        let (sender, resp) = loop {
            let Some(mut sender) = self.kept_sender().await else {
                let mut sender = self.handshake().await?;
                let resp = sender.send_request(req).await.map_err(http_err)?;
                break (sender, resp);
            };
            match sender.try_send_request(req).await {
                Ok(resp) => break (sender, resp),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(http_err(e.into_error())),
                },
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.map_err(http_err)?.to_bytes();
        if let (Some(pool), false) = (&self.keep_alive, connection_closes(&headers)) {
            pool.put(&self.host, sender);
        }
        Ok((status, headers, body))
    }

    async fn kept_sender(&self) -> Option<SendRequest<Full<Bytes>>> {
        self.keep_alive.as_ref()?.take(&self.host).await
    }

    /// A new connection ready for a request (its driving task runs until it closes).
    async fn handshake(&self) -> Result<SendRequest<Full<Bytes>>> {
        let (stream, _) = self.open().await?;
        let (sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Uploads `data` as a chunked body (as LXD's client streams files and images), calling
    /// `progress(sent, total)` as chunks go out; returns status, headers and raw body.
    pub async fn upload(
        &self,
        path: &str,
        data: Bytes,
        headers: &[(&str, String)],
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<(u16, http::HeaderMap, Bytes)> {
        use futures_util::StreamExt;
        let (stream, _) = self.open().await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let total = data.len() as u64;
        let chunks: Vec<Bytes> =
            (0..data.len()).step_by(64 * 1024).map(|i| data.slice(i..(i + 64 * 1024).min(data.len()))).collect();
        let mut sent = 0u64;
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(chunks).map(move |c| {
            sent += c.len() as u64;
            progress(sent, total);
            Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(c))
        }));
        let mut req = http::Request::builder()
            .method("POST")
            .uri(self.url(path))
            .header("Host", &self.host)
            .header("User-Agent", &self.user_agent)
            .header("Connection", "close")
            .header("Transfer-Encoding", "chunked");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(body).map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| ClientError::Http(e.to_string()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.map_err(|e| ClientError::Http(e.to_string()))?.to_bytes();
        Ok((status, headers, body))
    }

    /// Sends a JSON request and decodes the envelope; an error envelope becomes `Err`.
    pub async fn request(&self, method: &str, path: &str, body: Option<&serde_json::Value>, etag: Option<&str>) -> Result<Reply> {
        let data = body.map(|b| {
            let mut v = serde_json::to_vec(b).unwrap_or_default();
            v.push(b'\n');
            v
        });
        let mut headers = Vec::new();
        if let Some(e) = etag {
            headers.push(("If-Match", format!("\"{e}\"")));
        }
        let (status, headers, raw) = self.raw(method, path, data, &headers).await?;
        let envelope: Envelope = serde_json::from_slice(&raw)
            .map_err(|_| ClientError::api(status, format!("Failed to fetch {}: {status}", self.url(path))))?;
        if envelope.kind == "error" {
            return Err(ClientError::api(status, envelope.error));
        }
        Ok(Reply { status, headers, envelope })
    }

    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.request("GET", path, None, None).await
    }

    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let reply = self.get(path).await?;
        serde_json::from_value(reply.envelope.metadata).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Waits for an operation to finish (server-side wait) and returns its final state;
    /// a failed or cancelled operation is an error carrying its `err`.
    pub async fn wait_operation(&self, id: &str) -> Result<Operation> {
        loop {
            let reply = self.get(&format!("/1.0/operations/{id}/wait?timeout=30")).await?;
            let op: Operation =
                serde_json::from_value(reply.envelope.metadata).map_err(|e| ClientError::Decode(e.to_string()))?;
            if op.status_code >= 200 {
                if op.status_code != 200 {
                    return Err(ClientError::api(0, op.err));
                }
                return Ok(op);
            }
        }
    }

    /// Opens a websocket on `path` (e.g. `/1.0/events`).
    pub async fn websocket(&self, path: &str) -> Result<tokio_tungstenite::WebSocketStream<Box<dyn Io>>> {
        let (stream, _) = self.open().await?;
        let scheme = match self.target {
            Target::Unix(_) => "ws",
            Target::Https { .. } => "wss",
        };
        let url = format!("{scheme}://{}{}", self.host, self.url(path));
        let (ws, _) =
            tokio_tungstenite::client_async(url, stream).await.map_err(|e| ClientError::Http(format!("websocket: {e}")))?;
        Ok(ws)
    }
}

pub fn user_agent() -> String {
    format!("rxd {} (Linux; {})", env!("CARGO_PKG_VERSION"), std::env::consts::ARCH)
}
