//! Instance commands: `lxc launch|init|start|stop|restart|delete|list|move|info <instance>`.

use std::collections::BTreeMap;

use argh::FromArgs;
use rxd::api::{Instance, Operation};
use rxd::client::Connection;

use super::format::{self, Format};
use super::{Ctx, key_values};

/// `launch` and `init` take the same arguments.
macro_rules! create_cmd {
    ($ty:ident, $name:literal, $doc:literal) => {
        #[derive(FromArgs)]
        #[doc = $doc]
        #[argh(subcommand, name = $name)]
        pub struct $ty {
            #[argh(positional)]
            /// the image: [<remote>:]<image>
            image: String,
            #[argh(positional)]
            /// instance name
            name: Option<String>,
            /// config key=value to apply to the new instance
            #[argh(option, short = 'c')]
            config: Vec<String>,
            /// profile to apply (repeatable)
            #[argh(option, short = 'p')]
            profile: Vec<String>,
            /// cluster member name
            #[argh(option)]
            target: Option<String>,
            /// ephemeral instance
            #[argh(switch, short = 'e')]
            ephemeral: bool,
        }
    };
}

create_cmd!(Launch, "launch", "Create and start instances from images.");
create_cmd!(Init, "init", "Create instances from images.");

#[derive(FromArgs)]
/// Start instances.
#[argh(subcommand, name = "start")]
pub struct Start {
    #[argh(positional)]
    /// the target: [<remote>:]<instance> ...
    names: Vec<String>,
}

/// `stop` and `restart` take the same arguments.
macro_rules! stop_cmd {
    ($ty:ident, $name:literal, $doc:literal) => {
        #[derive(FromArgs)]
        #[doc = $doc]
        #[argh(subcommand, name = $name)]
        pub struct $ty {
            #[argh(positional)]
            /// the target: [<remote>:]<instance> ...
            names: Vec<String>,
            /// force the instance to stop
            #[argh(switch, short = 'f')]
            force: bool,
            /// time to wait for the instance to shut down cleanly (seconds)
            #[argh(option, default = "-1")]
            timeout: i64,
        }
    };
}

stop_cmd!(Stop, "stop", "Stop instances.");
stop_cmd!(Restart, "restart", "Restart instances.");

#[derive(FromArgs)]
/// Delete instances.
#[argh(subcommand, name = "delete")]
pub struct Delete {
    #[argh(positional)]
    /// the target: [<remote>:]<instance> ...
    names: Vec<String>,
    /// force the removal of running instances
    #[argh(switch, short = 'f')]
    force: bool,
}

#[derive(FromArgs)]
/// List instances.
#[argh(subcommand, name = "list")]
pub struct List {
    #[argh(positional)]
    /// the target: [<remote>:]
    remote: Option<String>,
    /// format (table, csv, json, yaml, compact)
    #[argh(option, short = 'f', default = "Format::Table")]
    format: Format,
    /// columns (n name, s state, t type, L location, 4 IPv4, 6 IPv6, S snapshots)
    #[argh(option, short = 'c')]
    columns: Option<String>,
}

#[derive(FromArgs)]
/// Move (rename) instances, or move them to another cluster member with --target.
#[argh(subcommand, name = "move")]
pub struct Move {
    #[argh(positional)]
    /// the target: [<remote>:]<instance>
    name: String,
    #[argh(positional)]
    /// new name
    new_name: Option<String>,
    /// cluster member to move the instance to
    #[argh(option)]
    target: Option<String>,
}

#[derive(FromArgs)]
/// Create instance snapshots.
#[argh(subcommand, name = "snapshot")]
pub struct Snapshot {
    #[argh(positional)]
    /// the instance: [<remote>:]<instance>
    instance: String,
    #[argh(positional)]
    /// snapshot name (default snap<N>)
    name: Option<String>,
}

#[derive(FromArgs)]
/// Restore instances from snapshots.
#[argh(subcommand, name = "restore")]
pub struct Restore {
    #[argh(positional)]
    /// the instance: [<remote>:]<instance>
    instance: String,
    #[argh(positional)]
    /// snapshot name
    snapshot: String,
}

pub async fn snapshot(ctx: Ctx, a: Snapshot) -> anyhow::Result<()> {
    let (remote, name) = ctx.remote_of(&a.instance);
    let conn = ctx.connect(&remote)?;
    let body = serde_json::json!({"name": a.name.unwrap_or_default(), "stateful": false});
    let reply = conn.request("POST", &format!("{}/snapshots", instance_path(name)), Some(&body), None).await?;
    wait(&conn, reply).await?;
    Ok(())
}

pub async fn restore(ctx: Ctx, a: Restore) -> anyhow::Result<()> {
    let (remote, name) = ctx.remote_of(&a.instance);
    let conn = ctx.connect(&remote)?;
    let body = serde_json::json!({"restore": a.snapshot, "stateful": false});
    let reply = conn.request("PUT", &instance_path(name), Some(&body), None).await?;
    wait(&conn, reply).await?;
    Ok(())
}

#[derive(FromArgs)]
/// Copy instances (within the server or cluster).
#[argh(subcommand, name = "copy")]
pub struct Copy {
    #[argh(positional)]
    /// the source: [<remote>:]<instance>
    source: String,
    #[argh(positional)]
    /// the new instance's name
    name: String,
    /// cluster member to create the copy on
    #[argh(option)]
    target: Option<String>,
}

pub async fn copy(ctx: Ctx, a: Copy) -> anyhow::Result<()> {
    let (remote, source) = ctx.remote_of(&a.source);
    let conn = ctx.connect(&remote)?;
    let src: Instance = match source.split_once('/') {
        Some((i, s)) => conn.get_json(&format!("{}/snapshots/{s}", instance_path(i))).await?,
        None => conn.get_json(&instance_path(source)).await?,
    };
    let mut put = src.put;
    put.config.retain(|k, _| !k.starts_with("volatile."));
    let mut body = serde_json::to_value(&put)?;
    body["name"] = a.name.clone().into();
    body["type"] = "container".into();
    body["source"] = serde_json::json!({"type": "copy", "source": source});
    let conn = match &a.target {
        Some(t) => conn.with_query("target", t),
        None => conn,
    };
    let reply = conn.request("POST", "/1.0/instances", Some(&body), None).await?;
    wait(&conn, reply).await?;
    Ok(())
}

/// The operation an async reply started, waited for; its failure is an error with `err`.
pub async fn wait(conn: &Connection, reply: rxd::client::Reply) -> anyhow::Result<Operation> {
    let op: Operation = serde_json::from_value(reply.envelope.metadata)?;
    Ok(conn.wait_operation(&op.id).await?)
}

fn instance_path(name: &str) -> String {
    format!("/1.0/instances/{name}")
}

async fn create(
    ctx: &Ctx,
    image: &str,
    name: Option<String>,
    config: &[String],
    profiles: &[String],
    target: Option<&str>,
    ephemeral: bool,
) -> anyhow::Result<(Connection, String)> {
    let (remote, image) = ctx.remote_of(image);
    let mut conn = ctx.connect(&remote)?;
    if let Some(t) = target {
        conn = conn.with_query("target", t);
    }
    let fingerprint = match conn.get_json::<rxd::api::ImageAlias>(&format!("/1.0/images/aliases/{image}")).await {
        Ok(a) => a.target,
        Err(_) => conn
            .get_json::<rxd::api::Image>(&format!("/1.0/images/{image}"))
            .await
            .map(|i| i.fingerprint)
            .map_err(|e| anyhow::anyhow!("Image \"{image}\" not found: {e}"))?,
    };
    let name = match name {
        Some(n) => n,
        None => format!("c-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    };
    let config: BTreeMap<String, String> = key_values(config)?.into_iter().collect();
    let body = serde_json::json!({
        "name": name, "config": config, "devices": {}, "ephemeral": ephemeral,
        "profiles": if profiles.is_empty() { serde_json::Value::Null } else { serde_json::json!(profiles) },
        "source": {"type": "image", "fingerprint": fingerprint}, "type": "container",
    });
    if !ctx.quiet {
        println!("Creating {name}");
    }
    let reply = conn.request("POST", "/1.0/instances", Some(&body), None).await?;
    wait(&conn, reply).await?;
    // Follow-up requests find the instance by name wherever it is.
    let conn = ctx.connect(&remote)?;
    Ok((conn, name))
}

async fn state(conn: &Connection, name: &str, action: &str, force: bool, timeout: i64) -> anyhow::Result<()> {
    let body = serde_json::json!({"action": action, "timeout": timeout, "force": force, "stateful": false});
    let reply = conn.request("PUT", &format!("{}/state", instance_path(name)), Some(&body), None).await?;
    wait(conn, reply).await?;
    Ok(())
}

pub async fn launch(ctx: Ctx, a: Launch) -> anyhow::Result<()> {
    let (conn, name) = create(&ctx, &a.image, a.name, &a.config, &a.profile, a.target.as_deref(), a.ephemeral).await?;
    if !ctx.quiet {
        println!("Starting {name}");
    }
    state(&conn, &name, "start", false, -1).await
}

pub async fn init(ctx: Ctx, a: Init) -> anyhow::Result<()> {
    let (_, name) = create(&ctx, &a.image, a.name, &a.config, &a.profile, a.target.as_deref(), a.ephemeral).await?;
    if ctx.quiet {
        return Ok(());
    }
    println!("Instance name is: {name}");
    Ok(())
}

/// Runs `action` on every named instance; errors name the instance, as LXD's client does.
async fn each(ctx: &Ctx, names: &[String], action: &str, force: bool, timeout: i64) -> anyhow::Result<()> {
    if names.is_empty() {
        anyhow::bail!("Missing instance name");
    }
    for n in names {
        let (remote, name) = ctx.remote_of(n);
        let conn = ctx.connect(&remote)?;
        state(&conn, name, action, force, timeout)
            .await
            .map_err(|e| anyhow::anyhow!("{e}\nTry `lxc info --show-log {n}` for more info"))?;
    }
    Ok(())
}

pub async fn start(ctx: Ctx, a: Start) -> anyhow::Result<()> {
    each(&ctx, &a.names, "start", false, 0).await
}

pub async fn stop(ctx: Ctx, a: Stop) -> anyhow::Result<()> {
    each(&ctx, &a.names, "stop", a.force, a.timeout).await
}

pub async fn restart(ctx: Ctx, a: Restart) -> anyhow::Result<()> {
    each(&ctx, &a.names, "restart", a.force, a.timeout).await
}

pub async fn delete(ctx: Ctx, a: Delete) -> anyhow::Result<()> {
    for n in &a.names {
        let (remote, name) = ctx.remote_of(n);
        let conn = ctx.connect(&remote)?;
        if let Some((instance, snap)) = name.split_once('/') {
            let reply = conn.request("DELETE", &format!("{}/snapshots/{snap}", instance_path(instance)), None, None).await?;
            wait(&conn, reply).await?;
            continue;
        }
        let inst: Instance = conn.get_json(&instance_path(name)).await?;
        if inst.status_code != 0 && inst.status_code != 102 {
            if !a.force {
                anyhow::bail!("The instance is currently running, stop it first or pass --force");
            }
            state(&conn, name, "stop", true, -1).await?;
        }
        let reply = conn.request("DELETE", &instance_path(name), None, None).await?;
        wait(&conn, reply).await?;
    }
    Ok(())
}

pub async fn list(ctx: Ctx, a: List) -> anyhow::Result<()> {
    let (remote, _) = ctx.remote_of(a.remote.as_deref().unwrap_or(""));
    let conn = ctx.connect(&remote)?;
    let clustered = conn.get_json::<rxd::api::Server>("/1.0").await?.environment.server_clustered;
    let columns = a.columns.clone().unwrap_or_else(|| if clustered { "ns46tSL".into() } else { "ns46tS".into() });
    if columns.contains('L') && !clustered {
        anyhow::bail!("Can't specify column L when not clustered");
    }
    let instances: Vec<Instance> = conn.get_json("/1.0/instances?recursion=2").await?;
    let mut headers = Vec::new();
    for c in columns.chars() {
        headers.push(match c {
            'n' => "NAME",
            's' => "STATE",
            '4' => "IPV4",
            '6' => "IPV6",
            't' => "TYPE",
            'S' => "SNAPSHOTS",
            'L' => "LOCATION",
            other => anyhow::bail!("Unknown column shorthand char '{other}' in '{columns}'"),
        });
    }
    let rows: Vec<Vec<String>> = instances
        .iter()
        .map(|i| {
            columns
                .chars()
                .map(|c| match c {
                    'n' => i.name.clone(),
                    's' => i.status.to_uppercase(),
                    't' => {
                        if i.put.ephemeral {
                            "CONTAINER (EPHEMERAL)".into()
                        } else {
                            "CONTAINER".into()
                        }
                    }
                    'S' => i.snapshots.as_ref().map(|s| s.len()).unwrap_or(0).to_string(),
                    'L' => i.location.clone(),
                    _ => String::new(),
                })
                .collect()
        })
        .collect();
    print!("{}", format::render(a.format, &headers, &rows, &instances));
    Ok(())
}

pub async fn move_cmd(ctx: Ctx, a: Move) -> anyhow::Result<()> {
    let (remote, name) = ctx.remote_of(&a.name);
    let mut conn = ctx.connect(&remote)?;
    let body = match (&a.target, &a.new_name) {
        (Some(t), _) => {
            conn = conn.with_query("target", t);
            serde_json::json!({"name": name, "migration": true, "live": false})
        }
        (None, Some(n)) => serde_json::json!({"name": ctx.remote_of(n).1, "migration": false}),
        (None, None) => anyhow::bail!("Missing target: a new name or --target <member>"),
    };
    let reply = conn.request("POST", &instance_path(name), Some(&body), None).await?;
    wait(&conn, reply).await?;
    Ok(())
}

/// `lxc info <instance>`.
pub async fn info(ctx: &Ctx, remote: &str, name: &str, show_log: bool) -> anyhow::Result<()> {
    let conn = ctx.connect(remote)?;
    let clustered = conn.get_json::<rxd::api::Server>("/1.0").await?.environment.server_clustered;
    let inst: Instance = conn.get_json(&format!("{}?recursion=1", instance_path(name))).await?;
    println!("Name: {}", inst.name);
    println!("Status: {}", inst.status.to_uppercase());
    println!("Type: {}{}", inst.kind, if inst.put.ephemeral { " (ephemeral)" } else { "" });
    println!("Architecture: {}", inst.put.architecture);
    if clustered && !inst.location.is_empty() {
        println!("Location: {}", inst.location);
    }
    let state = inst.state.clone().unwrap_or_default();
    if state.pid > 0 {
        println!("PID: {}", state.pid);
    }
    if let Some(t) = rxd::util::time::parse_rfc3339(&inst.created_at) {
        println!("Created: {}", rxd::util::time::table_string(t));
    }
    if let Some(t) = rxd::util::time::parse_rfc3339(&inst.last_used_at).filter(|t| *t > 0) {
        println!("Last Used: {}", rxd::util::time::table_string(t));
    }
    if state.pid > 0 {
        println!("\nResources:\n  Processes: {}", state.processes);
        if state.memory.usage > 0 {
            println!("  Memory usage:\n    Memory (current): {}", format::bytes_iec(state.memory.usage));
        }
    }
    let snaps = inst.snapshots.clone().unwrap_or_default();
    if !snaps.is_empty() {
        println!("\nSnapshots:");
        let rows: Vec<Vec<String>> = snaps
            .iter()
            .map(|s| {
                let taken = s.created_at.as_str();
                let when = rxd::util::time::parse_rfc3339(taken).map(rxd::util::time::table_string).unwrap_or_default();
                vec![s.name.clone(), when, String::new(), if s.put.stateful { "YES".into() } else { "NO".into() }]
            })
            .collect();
        print!("{}", format::table(&["NAME", "TAKEN AT", "EXPIRES AT", "STATEFUL"], &rows));
    }
    if show_log {
        let (_, _, body) = conn.raw("GET", &format!("{}/logs/lxc.log", instance_path(name)), None, &[]).await?;
        println!("\nLog:\n\n{}", String::from_utf8_lossy(&body));
    }
    Ok(())
}
