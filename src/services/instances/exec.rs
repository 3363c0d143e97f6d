//! `lxc exec` sessions. A session registers one secret per stream ("0", "1", "2", "control";
//! interactive: "0" and "control"); each stream is attached when the client connects it (the
//! HTTP server carries the frames, see `server::websocket`); once the required ones are in
//! (within 5 s, as LXD), the command runs and bytes are pumped: data in binary frames, an empty
//! text frame ends an output stream, the control stream carries signals and window sizes, and
//! the exit status becomes the operation's `return`. Without websockets the output goes to log
//! files (`record-output`) or nowhere.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::{Instances, driver_name, instance_resources, instance_task, instance_url};
use crate::api::ExecPost;
use crate::instance::exec::ExecRequest;
use crate::operations::{NewOp, Op, OpClass};
use crate::services::{Error, Result};
use crate::util::secret::random_hex;

/// A frame a client sent on a stream.
#[derive(Debug)]
pub enum FromClient {
    Binary(Vec<u8>),
    Text(String),
}

/// A frame to send to the client.
#[derive(Debug)]
pub enum ToClient {
    Binary(Vec<u8>),
    /// The empty text frame that ends an output stream.
    End,
}

/// One attached stream: what the client sends (the channel closes when it goes away) and
/// where to send to it (dropping the sender closes the stream).
pub struct Stream {
    pub from_client: mpsc::Receiver<FromClient>,
    pub to_client: mpsc::Sender<ToClient>,
}

/// Streams registered and waiting for their client, by secret.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, oneshot::Sender<Stream>>>);

/// A session's registered streams as the client learns them (name → secret) and as the
/// session waits for them (name → (secret, the stream once attached)).
type Registered = (serde_json::Map<String, serde_json::Value>, HashMap<String, (String, oneshot::Receiver<Stream>)>);

impl Sessions {
    fn register(&self, names: &[&str]) -> Registered {
        let mut fds = serde_json::Map::new();
        let mut receivers = HashMap::new();
        for n in names {
            let secret = random_hex(32);
            let (tx, rx) = oneshot::channel();
            if let Ok(mut p) = self.0.lock() {
                p.insert(secret.clone(), tx);
            }
            fds.insert((*n).into(), secret.clone().into());
            receivers.insert((*n).to_string(), (secret, rx));
        }
        (fds, receivers)
    }

    fn forget(&self, secrets: impl Iterator<Item = String>) {
        if let Ok(mut p) = self.0.lock() {
            for s in secrets {
                p.remove(&s);
            }
        }
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

fn deliver_signal(pid: i32, signal: i64) {
    if let Ok(sig) = nix::sys::signal::Signal::try_from(signal as i32) {
        // The process may have exited already: nothing to deliver then.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

/// Sends what `reader` yields until EOF, then the frame that ends the stream.
async fn pump_out(mut reader: impl tokio::io::AsyncRead + Unpin, to_client: mpsc::Sender<ToClient>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to_client.send(ToClient::Binary(buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
    // The client may be gone already; the stream ends either way.
    let _ = to_client.send(ToClient::End).await;
}

/// What a finished exec reports in its operation.
fn outcome(metadata: serde_json::Value, code: i32) -> serde_json::Value {
    let mut md = metadata;
    md["return"] = code.into();
    md
}

impl Instances {
    /// Attaches a client's stream to the session that registered `secret`; None when no
    /// session here waits for it.
    pub fn attach(&self, secret: &str) -> Option<oneshot::Sender<Stream>> {
        self.sessions.0.lock().ok()?.remove(secret)
    }

    /// `POST /1.0/instances/<name>/exec`.
    pub async fn exec(self: &Arc<Self>, project: &str, name: &str, body: ExecPost) -> Result<Arc<Op>> {
        let key = driver_name(project, name);
        if self.driver.init_pid(&key).is_none() {
            // Not running here: either no such instance (404) or a stopped one.
            self.row(project, name).await?;
            return Err(Error::BadRequest("Instance is not running".into()));
        }
        if body.command.is_empty() {
            return Err(Error::BadRequest("No command given".into()));
        }
        let mut env = BTreeMap::from([
            ("PATH".to_string(), crate::instance::monitor::DEFAULT_PATH.to_string()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("HOME".to_string(), if body.user == 0 { "/root".to_string() } else { "/".to_string() }),
            ("USER".to_string(), if body.user == 0 { "root".to_string() } else { String::new() }),
        ]);
        env.extend(body.environment.clone());
        let request = ExecRequest {
            command: body.command.clone(),
            environment: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            cwd: body.cwd.clone(),
            uid: body.user,
            gid: body.group,
            interactive: body.interactive,
            width: body.width.clamp(0, u16::MAX as i64) as u16,
            height: body.height.clamp(0, u16::MAX as i64) as u16,
        };
        self.events.lifecycle(project, "instance-exec", instance_url(project, name), None);
        if body.wait_for_websocket {
            return Ok(self.exec_with_streams(project, name, key, body, env, request));
        }
        Ok(self.exec_to_logs(project, name, key, body.record_output, request))
    }

    fn exec_with_streams(
        self: &Arc<Self>,
        project: &str,
        name: &str,
        key: String,
        body: ExecPost,
        env: BTreeMap<String, String>,
        request: ExecRequest,
    ) -> Arc<Op> {
        let names: &[&str] = if body.interactive { &["0", "control"] } else { &["0", "1", "2", "control"] };
        let (fds, receivers) = self.sessions.register(names);
        let metadata = serde_json::json!({
            "command": body.command,
            "environment": env,
            "fds": serde_json::Value::Object(fds),
            "interactive": body.interactive,
        });
        let op = self.operations.start(NewOp {
            class: OpClass::Websocket,
            description: "Executing command".into(),
            project: project.to_string(),
            resources: instance_resources(project, name),
            metadata: metadata.clone(),
            may_cancel: false,
        });
        let (instances, id) = (self.clone(), op.id.clone());
        tokio::spawn(async move {
            let secrets: Vec<String> = receivers.values().map(|(s, _)| s.clone()).collect();
            let result = instances.run_session(key, receivers, request).await;
            instances.sessions.forget(secrets.into_iter());
            let outcome = result.map(|code| Some(outcome(metadata, code))).map_err(crate::operations::Failure::of);
            instances.operations.finish(&id, outcome);
        });
        op
    }

    /// Waits for the required streams, runs the command and pumps its I/O; returns its exit
    /// status.
    async fn run_session(
        &self,
        key: String,
        mut receivers: HashMap<String, (String, oneshot::Receiver<Stream>)>,
        req: ExecRequest,
    ) -> Result<i32> {
        let interactive = req.interactive;
        let required: &[&str] = if interactive { &["0", "control"] } else { &["0", "1", "2"] };
        let mut streams: HashMap<String, Stream> = HashMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        for name in required {
            let (_, rx) = receivers.remove(*name).ok_or_else(|| Error::Internal("missing stream".into()))?;
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(s)) => {
                    streams.insert(name.to_string(), s);
                }
                _ => return Err(Error::BadRequest("Timed out waiting for websockets to connect".into())),
            }
        }
        if let Some((_, mut rx)) = receivers.remove("control") {
            // The client connects control first; give a late one a moment.
            let s = match rx.try_recv() {
                Ok(s) => Some(s),
                Err(_) => tokio::time::timeout(Duration::from_millis(200), rx).await.ok().and_then(|r| r.ok()),
            };
            if let Some(s) = s {
                streams.insert("control".into(), s);
            }
        }
        tracing::debug!(interactive, "exec streams connected");
        let stdio = if interactive {
            [std::process::Stdio::null(), std::process::Stdio::null(), std::process::Stdio::null()]
        } else {
            [std::process::Stdio::piped(), std::process::Stdio::piped(), std::process::Stdio::piped()]
        };
        let (mut child, started) = self.driver.exec(&key, &req, stdio).await?;
        let pid = started.pid;
        let master_raw = started.pty.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        let control_task = streams.remove("control").map(|mut control| {
            tokio::spawn(async move {
                // Held while the control stream lives: dropping it closes the stream.
                let _to_client = control.to_client;
                while let Some(frame) = control.from_client.recv().await {
                    let bytes = match &frame {
                        FromClient::Binary(b) => b.as_slice(),
                        FromClient::Text(t) => t.as_bytes(),
                    };
                    let Ok(c) = serde_json::from_slice::<Control>(bytes) else { continue };
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
                // The control stream went away while the command runs: LXD kills it.
                deliver_signal(pid, libc::SIGKILL as i64);
            })
        });
        let mut outputs = Vec::new();
        if let Some(master) = started.pty {
            let mut stream = streams.remove("0").ok_or_else(|| Error::Internal("missing stream 0".into()))?;
            let writer = std::fs::File::from(master.try_clone().map_err(|e| Error::Internal(format!("the pty: {e}")))?);
            let reader = tokio::fs::File::from_std(std::fs::File::from(master));
            let mut writer = tokio::fs::File::from_std(writer);
            tokio::spawn(async move {
                while let Some(frame) = stream.from_client.recv().await {
                    if let FromClient::Binary(b) = frame
                        && writer.write_all(&b).await.is_err()
                    {
                        break;
                    }
                }
            });
            // The pty ends with EIO once the last process holding it exits: that ends the stream.
            outputs.push(tokio::spawn(pump_out(reader, stream.to_client)));
        } else {
            if let (Some(mut stream), Some(mut stdin)) = (streams.remove("0"), child.stdin.take()) {
                tokio::spawn(async move {
                    // Held until stdin ends: dropping it closes the stream.
                    let _to_client = stream.to_client;
                    while let Some(frame) = stream.from_client.recv().await {
                        match frame {
                            FromClient::Binary(b) => {
                                if stdin.write_all(&b).await.is_err() {
                                    break;
                                }
                            }
                            FromClient::Text(t) if t.is_empty() => break,
                            FromClient::Text(_) => {}
                        }
                    }
                    drop(stdin);
                });
            }
            if let (Some(stream), Some(out)) = (streams.remove("1"), child.stdout.take()) {
                outputs.push(tokio::spawn(pump_out(out, stream.to_client)));
            }
            if let (Some(stream), Some(err)) = (streams.remove("2"), child.stderr.take()) {
                outputs.push(tokio::spawn(pump_out(err, stream.to_client)));
            }
        }
        let status = child.wait().await.map_err(|e| Error::Internal(format!("waiting for the command: {e}")))?;
        tracing::debug!(pid, ?status, "exec command ended");
        for o in outputs {
            // Output still buffered gets a moment to reach the client.
            let _ = tokio::time::timeout(Duration::from_secs(5), o).await;
        }
        if let Some(c) = control_task {
            c.abort();
        }
        Ok(status.code().unwrap_or(-1))
    }

    /// Without websockets: output to log files (record-output) or discarded.
    fn exec_to_logs(self: &Arc<Self>, project: &str, name: &str, key: String, record: bool, request: ExecRequest) -> Arc<Op> {
        let instances = self.clone();
        let name_s = name.to_string();
        let op_id = Arc::new(std::sync::OnceLock::<String>::new());
        let op_id2 = op_id.clone();
        let op = self.operations.spawn_task(instance_task(project, name, "Executing command"), async move {
            // The operation id names the log files; wait for it to be known.
            let id = loop {
                if let Some(id) = op_id2.get() {
                    break id.clone();
                }
                tokio::task::yield_now().await;
            };
            let logs = instances.driver.log_dir(&key);
            std::fs::create_dir_all(&logs).map_err(Error::io("creating", &logs))?;
            let (out, err) = if record {
                let out_path = logs.join(format!("exec_{id}.stdout"));
                let err_path = logs.join(format!("exec_{id}.stderr"));
                let o = std::fs::File::create(&out_path).map_err(Error::io("creating", &out_path))?;
                let e = std::fs::File::create(&err_path).map_err(Error::io("creating", &err_path))?;
                (std::process::Stdio::from(o), std::process::Stdio::from(e))
            } else {
                (std::process::Stdio::null(), std::process::Stdio::null())
            };
            let (mut child, _) = instances.driver.exec(&key, &request, [std::process::Stdio::null(), out, err]).await?;
            let code =
                child.wait().await.map_err(|e| Error::Internal(format!("waiting for the command: {e}")))?.code().unwrap_or(-1);
            let mut md = serde_json::json!({"return": code});
            if record {
                md["output"] = serde_json::json!({
                    "1": format!("/1.0/instances/{name_s}/logs/exec_{id}.stdout"),
                    "2": format!("/1.0/instances/{name_s}/logs/exec_{id}.stderr"),
                });
            }
            Ok::<_, Error>(Some(md))
        });
        // Set once, right after the operation exists.
        let _ = op_id.set(op.id.clone());
        op
    }
}
