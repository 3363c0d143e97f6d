//! `lxc`: the command line client, one file per noun. Global flags (`--debug`, `--verbose`,
//! `--quiet`, `--project`, `--force-local`) are accepted anywhere before `--`, as LXD's are.

/// Declares a subcommand taking one positional argument.
macro_rules! one_arg {
    ($ty:ident, $name:literal, $doc:literal, $field:ident, $fdoc:literal) => {
        #[derive(argh::FromArgs)]
        #[doc = $doc]
        #[argh(subcommand, name = $name)]
        pub struct $ty {
            #[doc = $fdoc]
            #[argh(positional)]
            pub $field: String,
        }
    };
}

/// Declares a subcommand taking an object and a key.
macro_rules! object_key {
    ($ty:ident, $name:literal, $doc:literal, $field:ident, $fdoc:literal) => {
        #[derive(argh::FromArgs)]
        #[doc = $doc]
        #[argh(subcommand, name = $name)]
        pub struct $ty {
            #[doc = $fdoc]
            #[argh(positional)]
            pub $field: String,
            /// key
            #[argh(positional)]
            pub key: String,
        }
    };
}

/// Declares a `list` subcommand: an optional `[<remote>:]` and `--format`.
macro_rules! list_cmd {
    ($ty:ident, $doc:literal) => {
        #[derive(argh::FromArgs)]
        #[doc = $doc]
        #[argh(subcommand, name = "list")]
        pub struct $ty {
            /// the target: [<remote>:]
            #[argh(positional)]
            pub remote: Option<String>,
            /// format (table, csv, json, yaml, compact)
            #[argh(option, short = 'f', default = "Format::Table")]
            pub format: Format,
        }
    };
}

mod cluster;
mod cluster_group;
mod config;
mod device;
mod exec;
mod file;
pub(crate) mod format;
mod image;
pub(crate) mod instance;
mod monitor;
mod operation;
mod profile;
mod project;
mod query;
mod remote;
mod storage;

use std::process::ExitCode;

use argh::FromArgs;
use rxd::client::Connection;
use rxd::client::config::ClientConfig;

use super::{fail, parse, runtime};

/// What every command gets: the client configuration and the global flags.
pub struct Ctx {
    pub config: ClientConfig,
    pub quiet: bool,
    pub project: Option<String>,
    pub force_local: bool,
}

impl Ctx {
    /// Connection to `remote`, honouring `--project` and `--force-local`.
    pub fn connect(&self, remote: &str) -> anyhow::Result<Connection> {
        let mut conn =
            if self.force_local { Connection::unix(rxd::client::config::local_socket()) } else { self.config.connect(remote)? };
        if let Some(p) = &self.project {
            conn = conn.with_query("project", p);
        }
        Ok(conn)
    }

    /// Splits `[remote:]rest`.
    pub fn remote_of<'a>(&self, arg: &'a str) -> (String, &'a str) {
        self.config.parse_remote(arg)
    }
}

#[derive(FromArgs)]
/// Command line client for rxd, an LXD-compatible container manager.
struct Lxc {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Cluster(cluster::Args),
    Config(config::Args),
    Copy(instance::Copy),
    Delete(instance::Delete),
    Exec(exec::Args),
    File(file::Args),
    Image(image::Args),
    Info(Info),
    Init(instance::Init),
    Launch(instance::Launch),
    List(instance::List),
    Move(instance::Move),
    Restart(instance::Restart),
    Restore(instance::Restore),
    Snapshot(instance::Snapshot),
    Start(instance::Start),
    Stop(instance::Stop),
    Monitor(monitor::Args),
    Operation(operation::Args),
    Profile(profile::Args),
    Project(project::Args),
    Query(query::Args),
    Remote(remote::Args),
    Storage(storage::Args),
    Version(VersionCmd),
}

#[derive(FromArgs)]
/// Show server information.
#[argh(subcommand, name = "info")]
struct Info {
    /// the target: [<remote>:][<instance>]
    #[argh(positional)]
    remote: Option<String>,
    /// show the instance's log
    #[argh(switch)]
    show_log: bool,
}

/// An exit status to leave with (the command run by `lxc exec` decides it).
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

#[derive(FromArgs)]
/// Show local and remote versions.
#[argh(subcommand, name = "version")]
struct VersionCmd {
    /// the target: [<remote>:]
    #[argh(positional)]
    remote: Option<String>,
}

struct Globals {
    debug: bool,
    quiet: bool,
    project: Option<String>,
    force_local: bool,
}

/// Pulls the global flags out of `args`, wherever they appear before `--`.
fn take_globals(args: Vec<String>) -> Result<(Globals, Vec<String>), String> {
    let mut g = Globals { debug: false, quiet: false, project: None, force_local: false };
    let mut rest = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--" => {
                rest.push(a);
                rest.extend(it.by_ref());
                break;
            }
            "--debug" => g.debug = true,
            "--verbose" | "-v" => {}
            "--quiet" | "-q" => g.quiet = true,
            "--force-local" => g.force_local = true,
            "--project" => g.project = Some(it.next().ok_or("--project needs a value")?),
            other if other.starts_with("--project=") => g.project = Some(other["--project=".len()..].to_string()),
            _ => rest.push(a),
        }
    }
    Ok((g, rest))
}

/// Rewrites LXD's aliases (`ls`, `rm`, `show` …) so argh finds the subcommand.
fn expand_aliases(mut args: Vec<String>) -> Vec<String> {
    if let Some(first) = args.first_mut() {
        let full = match first.as_str() {
            "rename" | "mv" => Some("move"),
            "cp" => Some("copy"),
            _ => None,
        };
        if let Some(f) = full {
            *first = f.into();
        }
    }
    for a in args.iter_mut().take(2) {
        let full = match a.as_str() {
            "ls" => "list",
            "rm" => "remove",
            _ => continue,
        };
        *a = full.into();
    }
    if (args.first().map(String::as_str) == Some("profile")
        || args.first().map(String::as_str) == Some("storage")
        || args.first().map(String::as_str) == Some("project"))
        && let Some(a) = args.get_mut(1)
        && a == "remove"
    {
        *a = "delete".into();
    }
    args
}

pub fn main(name: &str, args: Vec<String>) -> ExitCode {
    let (globals, rest) = match take_globals(args) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let rest = expand_aliases(rest);
    let opts: Lxc = match parse(name, &rest) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let config = match ClientConfig::load() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if globals.debug {
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("rxd=debug").init();
    }
    let ctx = Ctx { config, quiet: globals.quiet, project: globals.project, force_local: globals.force_local };
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result = rt.block_on(async move {
        match opts.command {
            Command::Cluster(a) => cluster::run(ctx, a).await,
            Command::Config(a) => config::run(ctx, a).await,
            Command::Copy(a) => instance::copy(ctx, a).await,
            Command::Delete(a) => instance::delete(ctx, a).await,
            Command::Exec(a) => exec::run(ctx, a).await,
            Command::File(a) => file::run(ctx, a).await,
            Command::Image(a) => image::run(ctx, a).await,
            Command::Info(a) => info(ctx, a).await,
            Command::Init(a) => instance::init(ctx, a).await,
            Command::Launch(a) => instance::launch(ctx, a).await,
            Command::List(a) => instance::list(ctx, a).await,
            Command::Move(a) => instance::move_cmd(ctx, a).await,
            Command::Restart(a) => instance::restart(ctx, a).await,
            Command::Restore(a) => instance::restore(ctx, a).await,
            Command::Snapshot(a) => instance::snapshot(ctx, a).await,
            Command::Start(a) => instance::start(ctx, a).await,
            Command::Stop(a) => instance::stop(ctx, a).await,
            Command::Monitor(a) => monitor::run(ctx, a).await,
            Command::Operation(a) => operation::run(ctx, a).await,
            Command::Profile(a) => profile::run(ctx, a).await,
            Command::Project(a) => project::run(ctx, a).await,
            Command::Query(a) => query::run(ctx, a).await,
            Command::Remote(a) => remote::run(ctx, a).await,
            Command::Storage(a) => storage::run(ctx, a).await,
            Command::Version(a) => version(ctx, a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => ExitCode::from(*code),
            None => fail(e),
        },
    }
}

async fn info(ctx: Ctx, args: Info) -> anyhow::Result<()> {
    let (remote, instance) = ctx.remote_of(args.remote.as_deref().unwrap_or(""));
    if !instance.is_empty() {
        return instance::info(&ctx, &remote, instance, args.show_log).await;
    }
    let conn = ctx.connect(&remote)?;
    let reply = conn.get("/1.0").await?;
    print!("{}", format::yaml(&reply.envelope.metadata)?);
    Ok(())
}

async fn version(ctx: Ctx, args: VersionCmd) -> anyhow::Result<()> {
    println!("Client version: {}", env!("CARGO_PKG_VERSION"));
    let (remote, _) = ctx.remote_of(args.remote.as_deref().unwrap_or(""));
    let server = match ctx.connect(&remote) {
        Ok(conn) => match conn.get_json::<rxd::api::Server>("/1.0").await {
            Ok(s) => s.environment.server_version,
            Err(_) => "unreachable".into(),
        },
        Err(_) => "unreachable".into(),
    };
    println!("Server version: {server}");
    Ok(())
}

/// `show` commands: GET `path` on `remote` and print the object as LXD's YAML.
pub async fn show<T: serde::de::DeserializeOwned + serde::Serialize>(ctx: &Ctx, remote: &str, path: &str) -> anyhow::Result<()> {
    let value: T = ctx.connect(remote)?.get_json(path).await?;
    print!("{}", format::yaml(&value)?);
    Ok(())
}

/// Read-modify-write as LXD's client does it: GET `path` as `T`, let `edit` turn it into the
/// body, PUT that back with the ETag.
pub async fn modify<T: serde::de::DeserializeOwned, B: serde::Serialize>(
    ctx: &Ctx,
    remote: &str,
    path: &str,
    edit: impl FnOnce(T) -> anyhow::Result<B>,
) -> anyhow::Result<()> {
    let conn = ctx.connect(remote)?;
    let reply = conn.get(path).await?;
    let etag = reply.etag();
    let body = edit(serde_json::from_value(reply.envelope.metadata)?)?;
    conn.request("PUT", path, Some(&serde_json::to_value(body)?), etag.as_deref()).await?;
    Ok(())
}

/// Rename and delete commands: one request, then `done` unless `--quiet`.
pub async fn act(
    ctx: &Ctx,
    remote: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
    done: String,
) -> anyhow::Result<()> {
    ctx.connect(remote)?.request(method, path, body.as_ref(), None).await?;
    if !ctx.quiet {
        println!("{done}");
    }
    Ok(())
}

/// `edit` commands: GET `path`, let the user edit its writable part (`writable` picks it) as
/// YAML, PUT the result back with the ETag.
pub async fn edit_object<T, W>(ctx: &Ctx, remote: &str, path: &str, writable: impl FnOnce(T) -> W) -> anyhow::Result<()>
where
    T: serde::de::DeserializeOwned,
    W: serde::Serialize + serde::de::DeserializeOwned,
{
    let conn = ctx.connect(remote)?;
    let reply = conn.get(path).await?;
    let etag = reply.etag();
    let current = writable(serde_json::from_value(reply.envelope.metadata)?);
    let text = edit_text(&format::yaml(&current)?)?;
    let put: W = serde_yaml::from_str(&text)?;
    conn.request("PUT", path, Some(&serde_json::to_value(put)?), etag.as_deref()).await?;
    Ok(())
}

/// Reads YAML for an `edit` command: standard input when it is not a terminal, else the
/// user's editor on `current`.
pub fn edit_text(current: &str) -> anyhow::Result<String> {
    use std::io::{IsTerminal, Read};
    if !std::io::stdin().is_terminal() {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        return Ok(s);
    }
    let editor = std::env::var("VISUAL").or_else(|_| std::env::var("EDITOR")).unwrap_or_else(|_| "vi".into());
    let path = std::env::temp_dir().join(format!("rxd-edit-{}.yaml", std::process::id()));
    std::fs::write(&path, current)?;
    let status = std::process::Command::new("sh").arg("-c").arg(format!("{editor} \"$1\"")).arg("sh").arg(&path).status()?;
    let text = std::fs::read_to_string(&path);
    let _ = std::fs::remove_file(&path);
    if !status.success() {
        anyhow::bail!("editor exited with {status}");
    }
    Ok(text?)
}

/// Parses `k=v` pairs, or a single `k v` pair.
pub fn key_values(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    if args.len() == 2 && !args[0].contains('=') {
        return Ok(vec![(args[0].clone(), args[1].clone())]);
    }
    args.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("Invalid key=value configuration: {a}"))
        })
        .collect()
}

/// Asks on the terminal; returns the trimmed answer.
pub fn ask(question: &str) -> anyhow::Result<String> {
    use std::io::Write;
    print!("{question}");
    std::io::stdout().flush()?;
    let mut s = String::new();
    std::io::stdin().read_line(&mut s)?;
    Ok(s.trim().to_string())
}
