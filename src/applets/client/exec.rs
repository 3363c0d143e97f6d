//! `lxc exec <instance> [--] <command…>` over LXD's websocket protocol: non-interactive with
//! separate stdin/stdout/stderr streams, or interactive through the container's pty with the
//! terminal in raw mode and window-size changes sent on the control socket. Signals the client
//! receives are forwarded; the command's exit status becomes ours.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use argh::FromArgs;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

use super::{Ctx, Exit};

#[derive(FromArgs)]
/// Execute commands in instances.
#[argh(subcommand, name = "exec")]
pub struct Args {
    #[argh(positional)]
    /// the target: [<remote>:]<instance>
    instance: String,
    #[argh(positional, greedy)]
    /// command and arguments
    command: Vec<String>,
    /// environment variable KEY=VALUE (repeatable)
    #[argh(option)]
    env: Vec<String>,
    /// directory to run the command in
    #[argh(option)]
    cwd: Option<String>,
    /// user ID to run the command as
    #[argh(option)]
    user: Option<u32>,
    /// group ID to run the command as
    #[argh(option)]
    group: Option<u32>,
    /// force pseudo-terminal allocation
    #[argh(switch, short = 't')]
    force_interactive: bool,
    /// disable pseudo-terminal allocation
    #[argh(switch, short = 'T')]
    force_noninteractive: bool,
    /// disable stdin (reads from /dev/null)
    #[argh(switch, short = 'n')]
    disable_stdin: bool,
}

fn terminal_size() -> (u16, u16) {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ fills a winsize for a terminal on stdout.
    if unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0 { (ws.ws_col, ws.ws_row) } else { (0, 0) }
}

/// Restores the terminal's mode when dropped.
struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enable() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = nix::sys::termios::tcgetattr(&stdin) else { return RawMode(None) };
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

pub async fn run(ctx: Ctx, mut a: Args) -> anyhow::Result<()> {
    if a.command.first().map(String::as_str) == Some("--") {
        a.command.remove(0);
    }
    if a.command.is_empty() {
        anyhow::bail!("Missing command to run");
    }
    let (remote, name) = ctx.remote_of(&a.instance);
    let conn = ctx.connect(&remote)?;
    let interactive = if a.force_interactive {
        true
    } else if a.force_noninteractive || a.disable_stdin {
        false
    } else {
        std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
    };
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(term) = std::env::var("TERM") {
        env.insert("TERM".into(), term);
    }
    for e in &a.env {
        let (k, v) = e.split_once('=').ok_or_else(|| anyhow::anyhow!("Bad key=value pair: {e}"))?;
        env.insert(k.into(), v.into());
    }
    let (width, height) = if std::io::stdout().is_terminal() { terminal_size() } else { (0, 0) };
    let body = serde_json::json!({
        "command": a.command, "wait-for-websocket": true, "interactive": interactive, "environment": env,
        "width": width, "height": height, "record-output": false,
        "user": a.user.unwrap_or(0), "group": a.group.unwrap_or(0), "cwd": a.cwd.clone().unwrap_or_default(),
    });
    let reply = conn.request("POST", &format!("/1.0/instances/{name}/exec"), Some(&body), None).await?;
    let op: rxd::api::Operation = serde_json::from_value(reply.envelope.metadata)?;
    let fds = op.metadata.get("fds").cloned().unwrap_or_default();
    let secret = |k: &str| fds.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let socket = |k: &'static str| {
        let conn = conn.clone();
        let id = op.id.clone();
        let s = secret(k);
        async move {
            let s = s.ok_or_else(|| anyhow::anyhow!("the server sent no {k} stream"))?;
            Ok::<_, anyhow::Error>(conn.websocket(&format!("/1.0/operations/{id}/websocket?secret={s}")).await?)
        }
    };
    let control = socket("control").await?;
    let (mut control_tx, _control_rx) = control.split();
    let stdin_ws = socket("0").await?;

    // Signals and window sizes go over the control socket.
    let (ctl_send, mut ctl_recv) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(m) = ctl_recv.recv().await {
            if control_tx.send(Message::text(m)).await.is_err() {
                break;
            }
        }
    });
    {
        use tokio::signal::unix::{SignalKind, signal};
        for (kind, num) in [
            (SignalKind::interrupt(), libc::SIGINT),
            (SignalKind::terminate(), libc::SIGTERM),
            (SignalKind::quit(), libc::SIGQUIT),
            (SignalKind::hangup(), libc::SIGHUP),
            (SignalKind::user_defined1(), libc::SIGUSR1),
            (SignalKind::user_defined2(), libc::SIGUSR2),
        ] {
            if let Ok(mut s) = signal(kind) {
                let tx = ctl_send.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        let _ = tx.send(format!("{{\"command\":\"signal\",\"args\":null,\"signal\":{num}}}"));
                    }
                });
            }
        }
        if interactive && let Ok(mut s) = signal(SignalKind::window_change()) {
            let tx = ctl_send.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    let (w, h) = terminal_size();
                    let _ = tx.send(format!(
                        "{{\"command\":\"window-resize\",\"args\":{{\"height\":\"{h}\",\"width\":\"{w}\"}},\"signal\":0}}"
                    ));
                }
            });
        }
    }

    let feed_stdin = !a.disable_stdin;
    if interactive {
        let _raw = std::io::stdin().is_terminal().then(RawMode::enable);
        let (mut tx, mut rx) = stdin_ws.split();
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 4096];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Message::text("")).await;
                        break;
                    }
                    Ok(n) => {
                        if tx.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut out = std::io::stdout();
        while let Some(Ok(m)) = rx.next().await {
            match m {
                Message::Binary(b) => {
                    let _ = out.write_all(&b);
                    let _ = out.flush();
                }
                Message::Text(t) if t.is_empty() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
    } else {
        let stdout_ws = socket("1").await?;
        let stderr_ws = socket("2").await?;
        let (mut tx, _rx) = stdin_ws.split();
        tokio::spawn(async move {
            if feed_stdin {
                let mut stdin = tokio::io::stdin();
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match stdin.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            let _ = tx.send(Message::text("")).await;
            // Keep the socket open until the command ends.
            std::future::pending::<()>().await;
        });
        let copy = |ws: tokio_tungstenite::WebSocketStream<Box<dyn rxd::client::connection::Io>>, err: bool| async move {
            let (_tx, mut rx) = ws.split();
            while let Some(Ok(m)) = rx.next().await {
                match m {
                    Message::Binary(b) => {
                        if err {
                            let _ = std::io::stderr().write_all(&b);
                        } else {
                            let mut o = std::io::stdout();
                            let _ = o.write_all(&b);
                            let _ = o.flush();
                        }
                    }
                    Message::Text(t) if t.is_empty() => break,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        };
        tokio::join!(copy(stdout_ws, false), copy(stderr_ws, true));
    }
    let done = conn.wait_operation(&op.id).await?;
    let code = done.metadata.get("return").and_then(|v| v.as_i64()).unwrap_or(-1);
    if code != 0 {
        return Err(Exit(code.clamp(0, 255) as u8).into());
    }
    Ok(())
}
