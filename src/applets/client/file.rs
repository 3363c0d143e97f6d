//! `lxc file push|pull|delete`: the files API, with `-p` (create parents) and `-r` (recursive).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use argh::FromArgs;
use rxd::client::Connection;

use super::Ctx;

#[derive(FromArgs)]
/// Manage files in instances.
#[argh(subcommand, name = "file")]
pub struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Push(Push),
    Pull(Pull),
    Delete(DeleteCmd),
}

#[derive(FromArgs)]
/// Push files into instances.
#[argh(subcommand, name = "push")]
struct Push {
    #[argh(positional, greedy)]
    /// sources then [<remote>:]<instance>/<path>: <source path>... [<remote>:]<instance>/<path>
    paths: Vec<String>,
    /// create any directories necessary
    #[argh(switch, short = 'p')]
    create_dirs: bool,
    /// push recursively
    #[argh(switch, short = 'r')]
    recursive: bool,
    /// set the file's uid on push
    #[argh(option)]
    uid: Option<u32>,
    /// set the file's gid on push
    #[argh(option)]
    gid: Option<u32>,
    /// set the file's perms on push (octal)
    #[argh(option)]
    mode: Option<String>,
}

#[derive(FromArgs)]
/// Pull files from instances.
#[argh(subcommand, name = "pull")]
struct Pull {
    #[argh(positional, greedy)]
    /// the target: [<remote>:]<instance>/<path>... <target path, or - for stdout>
    paths: Vec<String>,
    /// pull recursively
    #[argh(switch, short = 'r')]
    recursive: bool,
}

#[derive(FromArgs)]
/// Delete files in instances.
#[argh(subcommand, name = "delete")]
struct DeleteCmd {
    #[argh(positional, greedy)]
    /// the target: [<remote>:]<instance>/<path>...
    paths: Vec<String>,
}

/// Splits `[remote:]instance/path` into (remote, instance, path).
fn target(ctx: &Ctx, arg: &str) -> anyhow::Result<(String, String, String)> {
    let (remote, rest) = ctx.remote_of(arg);
    let (instance, path) =
        rest.split_once('/').ok_or_else(|| anyhow::anyhow!("Invalid target {arg}: expected <instance>/<path>"))?;
    Ok((remote, instance.to_string(), format!("/{path}")))
}

fn files_url(instance: &str, path: &str) -> String {
    format!("/1.0/instances/{instance}/files?path={}", rxd::client::connection::escape(path))
}

/// Owner and mode of a pushed entry.
struct Owner {
    uid: u32,
    gid: u32,
    mode: Option<u32>,
}

async fn post(conn: &Connection, instance: &str, path: &str, kind: &str, body: Vec<u8>, o: Owner) -> anyhow::Result<()> {
    let Owner { uid, gid, mode } = o;
    let mut headers = vec![("X-LXD-type", kind.to_string()), ("X-LXD-uid", uid.to_string()), ("X-LXD-gid", gid.to_string())];
    if let Some(m) = mode {
        headers.push(("X-LXD-mode", format!("{m:04o}")));
    }
    let (status, _, reply) = conn.raw("POST", &files_url(instance, path), Some(body), &headers).await?;
    if status != 200 {
        let env: rxd::api::Envelope = serde_json::from_slice(&reply)?;
        anyhow::bail!("{}", env.error);
    }
    Ok(())
}

async fn push_tree(conn: &Connection, instance: &str, local: &Path, remote: &str, a: &Push) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(local)?;
    let uid = a.uid.unwrap_or(meta.uid());
    let gid = a.gid.unwrap_or(meta.gid());
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(local)?;
        let body = target.to_string_lossy().as_bytes().to_vec();
        return post(conn, instance, remote, "symlink", body, Owner { uid, gid, mode: Some(0o777) }).await;
    }
    if meta.is_dir() {
        let mode = Some(meta.permissions().mode() & 0o7777);
        post(conn, instance, remote, "directory", Vec::new(), Owner { uid, gid, mode }).await?;
        let mut entries: Vec<PathBuf> = std::fs::read_dir(local)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            let name = e.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            Box::pin(push_tree(conn, instance, &e, &format!("{}/{name}", remote.trim_end_matches('/')), a)).await?;
        }
        return Ok(());
    }
    let mode = match &a.mode {
        Some(m) => Some(u32::from_str_radix(m.trim_start_matches("0o"), 8)?),
        None => Some(meta.permissions().mode() & 0o7777),
    };
    post(conn, instance, remote, "file", std::fs::read(local)?, Owner { uid, gid, mode }).await
}

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::Push(a) => {
            let (dest, sources) = a.paths.split_last().ok_or_else(|| anyhow::anyhow!("Missing target"))?;
            let (remote, instance, mut path) = target(&ctx, dest)?;
            let conn = ctx.connect(&remote)?;
            if a.create_dirs {
                let parent = if path.ends_with('/') {
                    path.clone()
                } else {
                    Path::new(&path).parent().map(|p| p.display().to_string()).unwrap_or_default()
                };
                let mut acc = String::new();
                for part in parent.split('/').filter(|p| !p.is_empty()) {
                    acc.push('/');
                    acc.push_str(part);
                    let owner = Owner { uid: a.uid.unwrap_or(0), gid: a.gid.unwrap_or(0), mode: None };
                    post(&conn, &instance, &acc, "directory", Vec::new(), owner).await?;
                }
            }
            for s in sources {
                let local = Path::new(s);
                let base = local.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                let remote_path = if path.ends_with('/') || sources.len() > 1 || a.recursive {
                    format!("{}/{base}", path.trim_end_matches('/'))
                } else {
                    path.clone()
                };
                if local.is_dir() && !a.recursive {
                    anyhow::bail!("{s} is a directory: use --recursive");
                }
                push_tree(&conn, &instance, local, &remote_path, &a).await?;
            }
            path.clear();
            Ok(())
        }
        Cmd::Pull(a) => {
            let (dest, sources) = a.paths.split_last().ok_or_else(|| anyhow::anyhow!("Missing target"))?;
            for s in sources {
                let (remote, instance, path) = target(&ctx, s)?;
                let conn = ctx.connect(&remote)?;
                if dest == "-" {
                    // To stdout a symlink is followed (inside the instance), as LXD's client does.
                    let mut current = path.clone();
                    for _ in 0..40 {
                        let (status, headers, body) = conn.raw("GET", &files_url(&instance, &current), None, &[]).await?;
                        if status != 200 {
                            let env: rxd::api::Envelope = serde_json::from_slice(&body)?;
                            anyhow::bail!("{}", env.error);
                        }
                        if headers.get("x-lxd-type").and_then(|v| v.to_str().ok()) == Some("symlink") {
                            current = String::from_utf8_lossy(&body).to_string();
                            continue;
                        }
                        use std::io::Write;
                        std::io::stdout().write_all(&body)?;
                        break;
                    }
                    continue;
                }
                let local = Path::new(dest);
                let base = Path::new(&path).file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                let target_path = if local.is_dir() { local.join(&base) } else { local.to_path_buf() };
                pull_tree(&conn, &instance, &path, &target_path, a.recursive).await?;
            }
            Ok(())
        }
        Cmd::Delete(a) => {
            for p in &a.paths {
                let (remote, instance, path) = target(&ctx, p)?;
                ctx.connect(&remote)?.request("DELETE", &files_url(&instance, &path), None, None).await?;
            }
            Ok(())
        }
    }
}

async fn pull_tree(conn: &Connection, instance: &str, path: &str, local: &Path, recursive: bool) -> anyhow::Result<()> {
    let (status, headers, body) = conn.raw("GET", &files_url(instance, path), None, &[]).await?;
    if status != 200 {
        let env: rxd::api::Envelope = serde_json::from_slice(&body)?;
        anyhow::bail!("{}", env.error);
    }
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mode = u32::from_str_radix(header("x-lxd-mode").trim_start_matches('0'), 8).unwrap_or(0o644);
    match header("x-lxd-type").as_str() {
        "directory" => {
            if !recursive {
                anyhow::bail!("{path} is a directory: use --recursive");
            }
            let env: rxd::api::Envelope = serde_json::from_slice(&body)?;
            let names: Vec<String> = serde_json::from_value(env.metadata)?;
            std::fs::create_dir_all(local)?;
            std::fs::set_permissions(local, std::fs::Permissions::from_mode(mode))?;
            for n in names {
                Box::pin(pull_tree(conn, instance, &format!("{}/{n}", path.trim_end_matches('/')), &local.join(&n), true))
                    .await?;
            }
        }
        "symlink" => {
            let _ = std::fs::remove_file(local);
            std::os::unix::fs::symlink(String::from_utf8_lossy(&body).to_string(), local)?;
        }
        _ => {
            std::fs::write(local, &body)?;
            std::fs::set_permissions(local, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}
