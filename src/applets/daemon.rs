//! `lxd`: the daemon (no subcommand), `lxd waitready`, `lxd shutdown`, `lxd init`, `lxd version`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use rxd::client::Connection;
use rxd::paths::Paths;
use rxd::services::Member;

use super::{fail, parse, runtime};

#[derive(FromArgs)]
/// The rxd daemon: an LXD-compatible system container manager.
struct Lxd {
    /// group that may use the unix socket
    #[argh(option)]
    group: Option<String>,
    /// show all debug messages
    #[argh(switch, short = 'd')]
    debug: bool,
    /// show all information messages
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// path to the log file
    #[argh(option)]
    logfile: Option<String>,
    #[argh(subcommand)]
    command: Option<Sub>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Sub {
    Waitready(Waitready),
    Shutdown(Shutdown),
    Init(Init),
    Version(Version),
    Sql(Sql),
    Cluster(super::admin::ClusterAdmin),
}

#[derive(FromArgs)]
/// Run a SQL query against the local or global database (`-` reads it from standard input;
/// `.dump` and `.schema` print the database as SQL).
#[argh(subcommand, name = "sql")]
struct Sql {
    /// local or global
    #[argh(positional)]
    database: String,
    /// the query, `-`, `.dump` or `.schema`
    #[argh(positional)]
    query: String,
}

#[derive(FromArgs)]
/// Wait for the daemon to be ready to process requests.
#[argh(subcommand, name = "waitready")]
struct Waitready {
    /// number of seconds to wait before giving up (0: forever)
    #[argh(option, short = 't', default = "0")]
    timeout: u64,
}

#[derive(FromArgs)]
/// Tell the daemon to shut down.
#[argh(subcommand, name = "shutdown")]
struct Shutdown {
    /// number of seconds to wait before giving up
    #[argh(option, short = 't', default = "60")]
    timeout: u64,
}

#[derive(FromArgs)]
/// Configure the daemon.
#[argh(subcommand, name = "init")]
struct Init {
    /// read a YAML preseed document from standard input
    #[argh(switch)]
    preseed: bool,
    /// apply defaults without asking questions
    #[argh(switch)]
    auto: bool,
    /// address to bind to (with --auto)
    #[argh(option)]
    network_address: Option<String>,
    /// port to bind to (with --auto)
    #[argh(option)]
    network_port: Option<u16>,
    /// password required to add new clients (with --auto)
    #[argh(option)]
    trust_password: Option<String>,
    /// storage backend to use (with --auto; only dir)
    #[argh(option, default = "String::from(\"dir\")")]
    storage_backend: String,
    /// print the applied preseed
    #[argh(switch)]
    dump: bool,
}

#[derive(FromArgs)]
/// Show the version.
#[argh(subcommand, name = "version")]
struct Version {}

pub fn main(name: &str, mut args: Vec<String>) -> ExitCode {
    // `lxd sql <db> -` reads the query from stdin; argh would take "-" for a flag.
    if args.iter().any(|a| a == "sql") && args.last().map(String::as_str) == Some("-") {
        let at = args.len() - 1;
        args.insert(at, "--".into());
    }
    super::admin::expand_alias(&mut args);
    let opts: Lxd = match parse(name, &args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    match opts.command {
        None => run_daemon(opts.group, opts.debug, opts.verbose, opts.logfile),
        Some(Sub::Version(_)) => {
            println!("{}", rxd::api::SERVER_VERSION);
            ExitCode::SUCCESS
        }
        Some(Sub::Waitready(w)) => client_call(|c| waitready(c, w.timeout)),
        Some(Sub::Shutdown(s)) => client_call(|c| shutdown(c, s.timeout)),
        Some(Sub::Init(i)) => client_call(|c| init(c, i)),
        Some(Sub::Sql(q)) => client_call(|c| sql(c, q)),
        Some(Sub::Cluster(c)) => client_call(|_| super::admin::run(c)),
    }
}

fn local_connection() -> Connection {
    Connection::unix(Paths::from_env().socket())
}

fn client_call<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce(Connection) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match rt.block_on(f(local_connection())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn waitready(conn: Connection, timeout: u64) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(r) = conn.get("/internal/ready").await
            && r.status == 200
        {
            return Ok(());
        }
        if timeout > 0 && start.elapsed() >= Duration::from_secs(timeout) {
            anyhow::bail!("Daemon still not running after {timeout}s timeout");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn shutdown(conn: Connection, timeout: u64) -> anyhow::Result<()> {
    conn.request("PUT", "/internal/shutdown", None, None).await?;
    let start = Instant::now();
    // The API stops first; the daemon then stops its instances and leaves the cluster while it
    // still holds its directory lock.
    let paths = Paths::from_env();
    while conn.open().await.is_ok() || rxd::paths::running_pid(&paths).is_some() {
        if start.elapsed() >= Duration::from_secs(timeout) {
            anyhow::bail!("Daemon still running after {timeout}s timeout");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// A left-aligned table with an outer border and no lines between rows (`lxd sql` output).
fn sql_table(columns: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let border = format!("+{}+", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    let line = |cells: &[String]| {
        let cols: Vec<String> =
            widths.iter().enumerate().map(|(i, w)| format!(" {:<w$} ", cells.get(i).map(String::as_str).unwrap_or(""))).collect();
        format!("|{}|", cols.join("|"))
    };
    let mut out = vec![border.clone(), line(columns), border.clone()];
    out.extend(rows.iter().map(|r| line(r)));
    out.push(border);
    out.join("\n") + "\n"
}

async fn sql(conn: Connection, q: Sql) -> anyhow::Result<()> {
    use std::io::Read;
    if q.database != "local" && q.database != "global" {
        anyhow::bail!("Invalid database type");
    }
    let query = if q.query == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        q.query
    };
    if conn.open().await.is_err() {
        return sql_offline(&q.database, &query).await;
    }
    if query == ".dump" || query == ".schema" {
        let schema = if query == ".schema" { "&schema=1" } else { "" };
        let v: serde_json::Value = conn.get_json(&format!("/internal/sql?database={}{schema}", q.database)).await?;
        print!("{}", v["text"].as_str().unwrap_or_default());
        return Ok(());
    }
    let body = serde_json::json!({"database": q.database, "query": query});
    let reply = conn.request("POST", "/internal/sql", Some(&body), None).await?;
    print_sql_results(reply.envelope.metadata["Results"].as_array().cloned().unwrap_or_default());
    Ok(())
}

/// `lxd sql local` with the daemon stopped: the member's local database file, directly.
async fn sql_offline(database: &str, query: &str) -> anyhow::Result<()> {
    let paths = Paths::from_env();
    if database != "local" {
        anyhow::bail!(
            "The LXD daemon doesn't appear to be started (socket path: {}); `lxd sql global` needs the daemon running (and, in a cluster, a quorum)",
            paths.socket().display()
        );
    }
    if !paths.local_db().exists() {
        anyhow::bail!("Failed to open local database: {} does not exist", paths.local_db().display());
    }
    let local = rxd::store::local::LocalDb::open(&paths.local_db()).await?;
    let db = rxd::store::sql::SqlDb::Local(local.database());
    if query == ".dump" || query == ".schema" {
        print!("{}", rxd::store::sql::dump(db, query == ".schema").await?);
    } else {
        let results = rxd::store::sql::run(db, query).await?;
        print_sql_results(serde_json::to_value(results)?.as_array().cloned().unwrap_or_default());
    }
    local.database().close().await;
    Ok(())
}

fn print_sql_results(results: Vec<serde_json::Value>) {
    let many = results.len() > 1;
    for (i, r) in results.iter().enumerate() {
        if many {
            println!("=> Query {i}:\n");
        }
        if r["type"] == "select" {
            let columns: Vec<String> =
                r["columns"].as_array().into_iter().flatten().map(|c| c.as_str().unwrap_or_default().to_string()).collect();
            let rows: Vec<Vec<String>> = r["rows"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|row| row.as_array().into_iter().flatten().map(rxd::api::config_value_to_string).collect())
                .collect();
            print!("{}", sql_table(&columns, &rows));
        } else {
            println!("Rows affected: {}", r["rows_affected"]);
        }
        if many {
            println!();
        }
    }
}

async fn init(conn: Connection, opts: Init) -> anyhow::Result<()> {
    use std::io::Read;
    let text = if opts.preseed {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else if opts.auto {
        rxd::client::preseed::auto_preseed(
            opts.network_address.as_deref(),
            opts.network_port,
            opts.trust_password.as_deref(),
            &opts.storage_backend,
        )
    } else {
        return super::init::interactive(&conn, &Paths::from_env().dir).await;
    };
    rxd::client::preseed::apply(&conn, &text).await?;
    if opts.dump {
        print!("{text}");
    }
    Ok(())
}

fn init_logging(hub: Arc<rxd::events::EventHub>, debug: bool, verbose: bool, logfile: Option<&str>) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = if debug {
        "debug"
    } else if verbose {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RXD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warn,rxd={level}")));
    let events = rxd::events::logging::LoggingLayer { hub };
    let registry = tracing_subscriber::registry().with(events);
    match logfile {
        Some(path) => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(std::sync::Mutex::new(file))
                        .with_ansi(false)
                        .with_filter(filter),
                )
                .init();
        }
        None => registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter)).init(),
    }
    Ok(())
}

use tracing_subscriber::Layer;

fn run_daemon(group: Option<String>, debug: bool, verbose: bool, logfile: Option<String>) -> ExitCode {
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match rt.block_on(serve(group, debug, verbose, logfile)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn serve(group: Option<String>, debug: bool, verbose: bool, logfile: Option<String>) -> anyhow::Result<()> {
    let paths = Paths::from_env();
    let member = Member::open(paths.clone()).await?;
    init_logging(member.events.clone(), debug, verbose, logfile.as_deref())?;
    let socket = paths.socket();
    // We hold the directory lock, so any socket file left here is stale.
    match std::fs::remove_file(&socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            anyhow::bail!("cannot remove the stale socket {}: {e}", socket.display())
        }
        _ => {}
    }
    let listener =
        tokio::net::UnixListener::bind(&socket).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", socket.display()))?;
    set_socket_access(&socket, group.as_deref())?;

    member.config.set_listeners(
        rxd::server::listeners::HttpsListeners::new(&member),
        rxd::server::listeners::HttpsListeners::new(&member),
    );
    member.config.listen().await?;
    member.resume().await.map_err(|e| anyhow::anyhow!("cannot resume cluster membership: {e}"))?;
    tracing::info!(dir = %paths.dir.display(), "rxd daemon started");
    let server = tokio::spawn(rxd::server::serve_unix(member.clone(), listener));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        _ = member.shutdown.requested() => {}
        _ = term.recv() => member.shutdown.begin(),
        _ = int.recv() => member.shutdown.begin(),
    }
    tracing::info!("shutting down");
    member.stop().await;
    if let Err(e) = server.await {
        tracing::warn!(error = %e, "the unix socket server ended abnormally");
    }
    member.config.close_listeners();
    // Let in-flight responses (such as the answer to `lxd shutdown`) reach their clients.
    tokio::time::sleep(Duration::from_millis(20)).await;
    member.close().await;
    if let Err(e) = std::fs::remove_file(&socket) {
        tracing::debug!(error = %e, "the socket was already gone");
    }
    match member.shutdown.fatal_reason() {
        Some(reason) => Err(anyhow::anyhow!(reason)),
        None => Ok(()),
    }
}

fn set_socket_access(socket: &std::path::Path, group: Option<&str>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(g) = group {
        let grp = nix::unistd::Group::from_name(g)?.ok_or_else(|| anyhow::anyhow!("unknown group \"{g}\""))?;
        nix::unistd::chown(socket, None, Some(grp.gid))?;
    }
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))?;
    Ok(())
}
