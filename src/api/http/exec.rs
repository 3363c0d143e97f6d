//! `lxc exec` over LXD's websocket protocol. `POST …/exec` registers one secret per stream
//! ("0", "1", "2", "control"; interactive: "0" and "control"); the client connects each through
//! `GET /1.0/operations/<id>/websocket?secret=…`; once the required ones are in, the command
//! runs and bytes are pumped: binary frames carry data, an empty text frame ends a stream, the
//! control socket carries signals and window sizes, and the exit status becomes the
//! operation's `return`. A member without the operation proxies the socket to the member that
//! has it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use warp::ws::{Message, WebSocket, Ws};

use super::response::Response;
use crate::daemon::Daemon;
use crate::instance::exec::ExecRequest;

type Pending = HashMap<String, oneshot::Sender<WebSocket>>;

fn pending() -> &'static Mutex<Pending> {
    static P: OnceLock<Mutex<Pending>> = OnceLock::new();
    P.get_or_init(|| Mutex::new(HashMap::new()))
}

fn secret() -> String {
    let mut b = [0u8; 32];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The streams of one session, registered and waiting for their sockets.
pub struct Streams {
    pub fds: serde_json::Map<String, serde_json::Value>,
    receivers: HashMap<String, oneshot::Receiver<WebSocket>>,
}

pub fn register(interactive: bool) -> Streams {
    let names: &[&str] = if interactive { &["0", "control"] } else { &["0", "1", "2", "control"] };
    let mut fds = serde_json::Map::new();
    let mut receivers = HashMap::new();
    for n in names {
        let s = secret();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = pending().lock() {
            p.insert(s.clone(), tx);
        }
        fds.insert((*n).into(), s.into());
        receivers.insert((*n).to_string(), rx);
    }
    Streams { fds, receivers }
}

impl Drop for Streams {
    fn drop(&mut self) {
        if let Ok(mut p) = pending().lock() {
            for s in self.fds.values().filter_map(|v| v.as_str()) {
                p.remove(s);
            }
        }
    }
}

/// `GET /1.0/operations/<id>/websocket?secret=…`.
pub fn upgrade(daemon: Arc<Daemon>, ws: Ws, op_id: String, query: HashMap<String, String>) -> warp::reply::Response {
    use warp::Reply;
    let secret = query.get("secret").cloned().unwrap_or_default();
    let local = pending().lock().ok().and_then(|mut p| p.remove(&secret));
    match local {
        Some(tx) => ws
            .on_upgrade(move |socket| async move {
                let _ = tx.send(socket);
            })
            .into_response(),
        None if daemon.operations.get(&op_id).is_none() && daemon.cluster_runtime().is_some() => ws
            .on_upgrade(move |socket| async move {
                if let Err(e) = proxy(&daemon, socket, &op_id, &secret).await {
                    tracing::warn!(operation = %op_id, error = %e, "Failed to proxy an operation websocket");
                }
            })
            .into_response(),
        None => Response::error(403, "Invalid websocket secret").into_reply(),
    }
}

/// Relays a client's socket to the member running the operation.
async fn proxy(daemon: &Arc<Daemon>, client: WebSocket, op_id: &str, secret: &str) -> Result<(), String> {
    let rt = daemon.cluster_runtime().ok_or("not clustered")?;
    let path = format!("/1.0/operations/{op_id}");
    let owner = match rt.operation_owners.owner(op_id) {
        Some(known) => known,
        None => {
            let mut found = None;
            for address in crate::cluster::forward::online_others(daemon).await.map_err(|e| e.to_string())? {
                if let Ok((200, _, _)) = crate::cluster::forward::send(daemon, &address, "GET", &path, None, &[]).await {
                    found = Some(address);
                    break;
                }
            }
            found.ok_or("Operation not found")?
        }
    };
    let conn = rt.connect(&owner).map_err(|e| e.to_string())?;
    let upstream =
        conn.websocket(&format!("/1.0/operations/{op_id}/websocket?secret={secret}")).await.map_err(|e| e.to_string())?;
    let (mut up_tx, mut up_rx) = upstream.split();
    let (mut cl_tx, mut cl_rx) = client.split();
    use tokio_tungstenite::tungstenite::Message as T;
    let to_upstream = async {
        while let Some(Ok(m)) = cl_rx.next().await {
            let t = if m.is_binary() {
                T::binary(m.into_bytes())
            } else if m.is_text() {
                T::text(m.to_str().unwrap_or("").to_string())
            } else if m.is_close() {
                break;
            } else {
                continue;
            };
            if up_tx.send(t).await.is_err() {
                break;
            }
        }
    };
    let to_client = async {
        while let Some(Ok(m)) = up_rx.next().await {
            let w = match m {
                T::Binary(b) => Message::binary(b),
                T::Text(t) => Message::text(t.as_str()),
                T::Close(_) => break,
                _ => continue,
            };
            if cl_tx.send(w).await.is_err() {
                break;
            }
        }
    };
    // Either side ending ends the session: the other is closed by dropping it.
    tokio::select! {
        _ = to_upstream => {}
        _ = to_client => {}
    }
    Ok(())
}

/// Waits for the required sockets (5 s, as LXD); control is taken if the client connected it.
async fn connect_all(mut streams: Streams, interactive: bool) -> Result<HashMap<String, WebSocket>, String> {
    let required: &[&str] = if interactive { &["0", "control"] } else { &["0", "1", "2"] };
    let mut out = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for name in required {
        let rx = streams.receivers.remove(*name).ok_or("missing stream")?;
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(ws)) => {
                out.insert(name.to_string(), ws);
            }
            _ => return Err("Timed out waiting for websockets to connect".into()),
        }
    }
    if let Some(mut rx) = streams.receivers.remove("control") {
        // The client connects control first; give a late one a moment.
        let ws = match rx.try_recv() {
            Ok(ws) => Some(ws),
            Err(_) => tokio::time::timeout(Duration::from_millis(200), rx).await.ok().and_then(|r| r.ok()),
        };
        if let Some(ws) = ws {
            out.insert("control".into(), ws);
        }
    }
    Ok(out)
}

/// Sends what `reader` yields as binary frames until EOF, then the empty text frame that ends a
/// stream.
async fn pump_out<S>(mut reader: impl tokio::io::AsyncRead + Unpin, mut ws: S)
where
    S: futures_util::Sink<Message> + Unpin,
{
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if ws.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = ws.send(Message::text("")).await;
    let _ = ws.flush().await;
}

fn deliver_signal(pid: i32, signal: i64) {
    if let Ok(sig) = nix::sys::signal::Signal::try_from(signal as i32) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

#[derive(serde::Deserialize)]
struct Control {
    #[serde(default)]
    command: String,
    #[serde(default)]
    args: Option<HashMap<String, String>>,
    #[serde(default)]
    signal: i64,
}

/// Runs the command once its sockets are connected; returns its exit status.
pub async fn run(daemon: Arc<Daemon>, key: String, streams: Streams, req: ExecRequest) -> Result<i32, String> {
    let interactive = req.interactive;
    let mut sockets = connect_all(streams, interactive).await?;
    let stdio = if interactive {
        [std::process::Stdio::null(), std::process::Stdio::null(), std::process::Stdio::null()]
    } else {
        [std::process::Stdio::piped(), std::process::Stdio::piped(), std::process::Stdio::piped()]
    };
    tracing::debug!(interactive, "exec sockets connected");
    let (mut child, started) = daemon.driver.exec(&key, &req, stdio).await.map_err(|e| e.to_string())?;
    let pid = started.pid;
    let control = sockets.remove("control");
    let master_raw = started.pty.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let control_task = control.map(|ws| {
        tokio::spawn(async move {
            let (_tx, mut rx) = ws.split();
            while let Some(msg) = rx.next().await {
                let Ok(m) = msg else { break };
                if m.is_close() {
                    break;
                }
                let Ok(c) = serde_json::from_slice::<Control>(m.as_bytes()) else { continue };
                match c.command.as_str() {
                    "signal" => deliver_signal(pid, c.signal),
                    "window-resize" => {
                        if let (Some(fd), Some(args)) = (master_raw, c.args) {
                            let w = args.get("width").and_then(|v| v.parse().ok()).unwrap_or(0);
                            let h = args.get("height").and_then(|v| v.parse().ok()).unwrap_or(0);
                            crate::instance::exec::set_window(fd, w, h);
                        }
                    }
                    _ => {}
                }
            }
            // The control socket went away while the command runs: LXD kills it.
            deliver_signal(pid, libc::SIGKILL as i64);
        })
    });
    let mut outputs = Vec::new();
    if let Some(master) = started.pty {
        let ws = sockets.remove("0").ok_or("missing stream 0")?;
        let (tx_ws, mut rx_ws) = ws.split();
        let writer = std::fs::File::from(master.try_clone().map_err(|e| e.to_string())?);
        let reader = tokio::fs::File::from_std(std::fs::File::from(master));
        let mut writer = tokio::fs::File::from_std(writer);
        tokio::spawn(async move {
            while let Some(Ok(m)) = rx_ws.next().await {
                if m.is_binary() && writer.write_all(m.as_bytes()).await.is_err() {
                    break;
                }
                if m.is_close() {
                    break;
                }
            }
        });
        // The pty ends with EIO once the last process holding it exits: that ends the stream.
        outputs.push(tokio::spawn(pump_out(reader, tx_ws)));
    } else {
        if let (Some(ws), Some(mut stdin)) = (sockets.remove("0"), child.stdin.take()) {
            tokio::spawn(async move {
                let (_tx, mut rx) = ws.split();
                while let Some(Ok(m)) = rx.next().await {
                    if m.is_binary() {
                        if stdin.write_all(m.as_bytes()).await.is_err() {
                            break;
                        }
                    } else if m.is_text() && m.as_bytes().is_empty() || m.is_close() {
                        break;
                    }
                }
                drop(stdin);
            });
        }
        if let (Some(ws), Some(out)) = (sockets.remove("1"), child.stdout.take()) {
            outputs.push(tokio::spawn(pump_out(out, ws)));
        }
        if let (Some(ws), Some(err)) = (sockets.remove("2"), child.stderr.take()) {
            outputs.push(tokio::spawn(pump_out(err, ws)));
        }
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    tracing::debug!(pid, ?status, "exec command ended");
    for o in outputs {
        let _ = tokio::time::timeout(Duration::from_secs(5), o).await;
    }
    if let Some(c) = control_task {
        c.abort();
    }
    Ok(status.code().unwrap_or(-1))
}
