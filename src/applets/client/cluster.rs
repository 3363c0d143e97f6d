//! `lxc cluster`: list, show, edit, get, set, unset, rename, remove, enable, and join tokens
//! (add, list-tokens, revoke-token).

use argh::FromArgs;
use rxd::api::{Cluster, ClusterJoinToken, ClusterMember, Operation};
use rxd::util::time;

use super::format::{self, Format};
use super::{Ctx, ask, key_values};

#[derive(FromArgs)]
/// Manage cluster members.
#[argh(subcommand, name = "cluster")]
pub struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    List(List),
    Show(ShowCmd),
    Edit(EditCmd),
    Get(GetCmd),
    Set(Set),
    Unset(UnsetCmd),
    Rename(Rename),
    Remove(Remove),
    Enable(Enable),
    Add(Add),
    ListTokens(ListTokens),
    RevokeToken(RevokeToken),
    Group(super::cluster_group::Args),
    Evacuate(Evacuate),
    Restore(Restore),
}

#[derive(FromArgs)]
/// Evacuate cluster member: stop or move its instances elsewhere.
#[argh(subcommand, name = "evacuate")]
struct Evacuate {
    /// the target: [<remote>:]<member>
    #[argh(positional)]
    member: String,
    /// don't ask for confirmation
    #[argh(switch)]
    force: bool,
}

#[derive(FromArgs)]
/// Restore cluster member: bring back and start its instances.
#[argh(subcommand, name = "restore")]
struct Restore {
    /// the target: [<remote>:]<member>
    #[argh(positional)]
    member: String,
    /// don't ask for confirmation
    #[argh(switch)]
    force: bool,
}

/// Evacuates or restores a member as an operation, after confirmation unless `force`.
async fn member_state(ctx: &Ctx, member: &str, action: &str, force: bool) -> anyhow::Result<()> {
    let (remote, name) = ctx.remote_of(member);
    if !force {
        let answer =
            super::ask(&format!("Are you sure you want to {action} cluster member \"{name}\"? (yes/no) [default=no]: "))?;
        if !matches!(answer.to_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    let conn = ctx.connect(&remote)?;
    let body = serde_json::json!({"action": action});
    let reply = conn.request("POST", &format!("/1.0/cluster/members/{name}/state"), Some(&body), None).await?;
    super::instance::wait(&conn, reply).await?;
    Ok(())
}

list_cmd!(List, "List all the cluster members.");

one_arg!(ShowCmd, "show", "Show details of a cluster member.", member, "the target: [<remote>:]<member>");
one_arg!(EditCmd, "edit", "Edit cluster member configurations as YAML.", member, "the target: [<remote>:]<member>");
object_key!(GetCmd, "get", "Get values for cluster member configuration keys.", member, "the target: [<remote>:]<member>");
object_key!(UnsetCmd, "unset", "Unset configuration keys of a cluster member.", member, "the target: [<remote>:]<member>");
one_arg!(RevokeToken, "revoke-token", "Revoke cluster member join token.", name, "the target: [<remote>:]<name>");

#[derive(FromArgs)]
/// Set configuration keys of a cluster member.
#[argh(subcommand, name = "set")]
struct Set {
    /// the target: [<remote>:]<member>
    #[argh(positional)]
    member: String,
    /// pairs: <key>=<value>... or <key> <value>
    #[argh(positional, greedy)]
    pairs: Vec<String>,
}

#[derive(FromArgs)]
/// Rename a cluster member.
#[argh(subcommand, name = "rename")]
struct Rename {
    /// the target: [<remote>:]<member>
    #[argh(positional)]
    member: String,
    /// the new name
    #[argh(positional)]
    new_name: String,
}

#[derive(FromArgs)]
/// Remove a member from the cluster.
#[argh(subcommand, name = "remove")]
struct Remove {
    /// the target: [<remote>:]<member>
    #[argh(positional)]
    member: String,
    /// force removing a member, even if degraded
    #[argh(switch, short = 'f')]
    force: bool,
    /// don't require user confirmation for using --force
    #[argh(switch)]
    yes: bool,
}

#[derive(FromArgs)]
/// Enable clustering on a single non-clustered LXD server.
#[argh(subcommand, name = "enable")]
struct Enable {
    /// the target: [<remote>:] <name>
    #[argh(positional, greedy)]
    args: Vec<String>,
}

#[derive(FromArgs)]
/// Request a join token for adding a cluster member.
#[argh(subcommand, name = "add")]
struct Add {
    /// the target: [<remote>:]<name>
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs)]
/// List all active cluster member join tokens.
#[argh(subcommand, name = "list-tokens")]
struct ListTokens {
    /// the target: [<remote>:]
    #[argh(positional)]
    remote: Option<String>,
    /// format (table, csv, json, yaml, compact)
    #[argh(option, short = 'f', default = "Format::Table")]
    format: Format,
}

async fn ensure_clustered(conn: &rxd::client::Connection) -> anyhow::Result<()> {
    let c: Cluster = conn.get_json("/1.0/cluster").await?;
    if !c.enabled {
        anyhow::bail!("LXD server isn't part of a cluster");
    }
    Ok(())
}

fn url(name: &str) -> String {
    format!("/1.0/cluster/members/{name}")
}

/// A join token from a running token operation; None for other operations.
fn token_of(op: &Operation) -> Option<ClusterJoinToken> {
    if op.class != "token" || op.status_code != 103 {
        return None;
    }
    let md = &op.metadata;
    let s = |k: &str| md.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Some(ClusterJoinToken {
        server_name: s("serverName")?,
        fingerprint: s("fingerprint")?,
        addresses: md.get("addresses")?.as_array()?.iter().filter_map(|a| a.as_str().map(str::to_string)).collect(),
        secret: s("secret")?,
        expires_at: s("expiresAt")?,
    })
}

async fn tokens(conn: &rxd::client::Connection) -> anyhow::Result<Vec<(Operation, ClusterJoinToken)>> {
    ensure_clustered(conn).await?;
    let groups: std::collections::BTreeMap<String, Vec<Operation>> =
        conn.get_json("/1.0/operations?project=default&recursion=1").await?;
    let mut out: Vec<_> = groups.into_values().flatten().filter_map(|op| token_of(&op).map(|t| (op, t))).collect();
    out.sort_by(|a, b| a.1.server_name.cmp(&b.1.server_name));
    Ok(out)
}

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::Group(g) => super::cluster_group::run(ctx, g).await,
        Cmd::List(l) => {
            let (remote, _) = ctx.remote_of(l.remote.as_deref().unwrap_or(""));
            let conn = ctx.connect(&remote)?;
            ensure_clustered(&conn).await?;
            let mut members: Vec<ClusterMember> = conn.get_json("/1.0/cluster/members?recursion=1").await?;
            members.sort_by(|a, b| a.server_name.cmp(&b.server_name));
            let rows: Vec<Vec<String>> = members
                .iter()
                .map(|m| {
                    vec![
                        m.server_name.clone(),
                        m.url.clone(),
                        m.writable.roles.join("\n"),
                        m.architecture.clone(),
                        m.writable.failure_domain.clone(),
                        m.writable.description.clone(),
                        m.status.to_uppercase(),
                        m.message.clone(),
                    ]
                })
                .collect();
            let headers = ["NAME", "URL", "ROLES", "ARCHITECTURE", "FAILURE DOMAIN", "DESCRIPTION", "STATE", "MESSAGE"];
            print!("{}", format::render(l.format, &headers, &rows, &members));
            Ok(())
        }
        Cmd::Show(s) => {
            let (remote, name) = ctx.remote_of(&s.member);
            super::show::<ClusterMember>(&ctx, &remote, &url(name)).await
        }
        Cmd::Edit(e) => {
            let (remote, name) = ctx.remote_of(&e.member);
            super::edit_object(&ctx, &remote, &url(name), |m: ClusterMember| m.writable).await
        }
        Cmd::Get(g) => {
            let (remote, name) = ctx.remote_of(&g.member);
            let m: ClusterMember = ctx.connect(&remote)?.get_json(&url(name)).await?;
            match m.writable.config.get(&g.key) {
                Some(v) => println!("{v}"),
                None => anyhow::bail!("The key \"{}\" does not exist on cluster member \"{name}\"", g.key),
            }
            Ok(())
        }
        Cmd::Set(s) => {
            let (remote, name) = ctx.remote_of(&s.member);
            let pairs = key_values(&s.pairs)?;
            super::modify(&ctx, &remote, &url(name), |m: ClusterMember| {
                let mut put = m.writable;
                put.config.extend(pairs);
                Ok(put)
            })
            .await
        }
        Cmd::Unset(u) => {
            let (remote, name) = ctx.remote_of(&u.member);
            super::modify(&ctx, &remote, &url(name), |m: ClusterMember| {
                let mut put = m.writable;
                if put.config.remove(&u.key).is_none() {
                    anyhow::bail!("The key \"{}\" does not exist on cluster member \"{name}\"", u.key);
                }
                Ok(put)
            })
            .await
        }
        Cmd::Rename(r) => {
            let (remote, name) = ctx.remote_of(&r.member);
            let body = serde_json::json!({ "server_name": r.new_name });
            super::act(&ctx, &remote, "POST", &url(name), Some(body), format!("Member {name} renamed to {}", r.new_name)).await
        }
        Cmd::Remove(r) => {
            let (remote, name) = ctx.remote_of(&r.member);
            if r.force && !r.yes {
                let answer = ask(&format!(
                    "Forcefully removing a server from the cluster should only be done as a last\n\
                     resort.\n\n\
                     The removed server will not be functional after this action and will require a\n\
                     full reset of LXD, losing any remaining instance, image or storage volume\n\
                     that the server may have held.\n\n\
                     When possible, a graceful removal should be preferred, this will require you to\n\
                     move any affected instance, image or storage volume to another server prior to\n\
                     the server being cleanly removed from the cluster.\n\n\
                     The --force flag should only be used if the server has died, been reinstalled\n\
                     or is otherwise never expected to come back up.\n\n\
                     Are you really sure you want to force removing {name}? (yes/no): "
                ))?;
                if answer != "yes" {
                    anyhow::bail!("User aborted delete operation");
                }
            }
            let path = if r.force { format!("{}?force=1", url(name)) } else { url(name) };
            ctx.connect(&remote)?.request("DELETE", &path, None, None).await?;
            if !ctx.quiet {
                println!("Member {name} removed");
            }
            Ok(())
        }
        Cmd::Evacuate(e) => member_state(&ctx, &e.member, "evacuate", e.force).await,
        Cmd::Restore(r) => member_state(&ctx, &r.member, "restore", r.force).await,
        Cmd::Enable(e) => {
            let (remote, name) = match e.args.as_slice() {
                [name] => (String::new(), name.clone()),
                [remote, name] => (remote.trim_end_matches(':').to_string(), name.clone()),
                _ => anyhow::bail!("Invalid number of arguments: lxc cluster enable [<remote>:] <name>"),
            };
            let (remote, _) = ctx.remote_of(&format!("{remote}:"));
            let conn = ctx.connect(&remote)?;
            let c: Cluster = conn.get_json("/1.0/cluster").await?;
            if c.enabled {
                anyhow::bail!("This LXD server is already clustered");
            }
            let server: rxd::api::Server = conn.get_json("/1.0").await?;
            if server.config.get("core.https_address").is_some_and(|a| a.as_str().unwrap_or_default().is_empty()) {
                anyhow::bail!("This LXD server is not available on the network");
            }
            let body = serde_json::json!({ "server_name": name, "enabled": true });
            let reply = conn.request("PUT", "/1.0/cluster", Some(&body), None).await?;
            if let Some(id) = reply.envelope.metadata.get("id").and_then(|v| v.as_str()) {
                conn.wait_operation(id).await?;
            }
            println!("Clustering enabled");
            Ok(())
        }
        Cmd::Add(a) => {
            let (remote, name) = ctx.remote_of(&a.name);
            let conn = ctx.connect(&remote)?;
            let body = serde_json::json!({ "server_name": name });
            let reply = conn.request("POST", "/1.0/cluster/members", Some(&body), None).await?;
            let op: Operation = serde_json::from_value(reply.envelope.metadata)?;
            let token = token_of(&op).ok_or_else(|| anyhow::anyhow!("Failed converting token operation to join token"))?;
            if ctx.quiet {
                println!("{}", token.encode());
            } else {
                println!("Member {name} join token:\n{}", token.encode());
            }
            Ok(())
        }
        Cmd::ListTokens(l) => {
            let (remote, _) = ctx.remote_of(l.remote.as_deref().unwrap_or(""));
            let list = tokens(&ctx.connect(&remote)?).await?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|(_, t)| {
                    let expires = time::parse_rfc3339(&t.expires_at).map(time::table_string).unwrap_or_default();
                    vec![t.server_name.clone(), t.encode(), expires]
                })
                .collect();
            let tokens: Vec<&ClusterJoinToken> = list.iter().map(|(_, t)| t).collect();
            print!("{}", format::render(l.format, &["NAME", "TOKEN", "EXPIRES AT"], &rows, &tokens));
            Ok(())
        }
        Cmd::RevokeToken(r) => {
            let (remote, name) = ctx.remote_of(&r.name);
            let conn = ctx.connect(&remote)?;
            let (op, _) = tokens(&conn)
                .await?
                .into_iter()
                .find(|(_, t)| t.server_name == name)
                .ok_or_else(|| anyhow::anyhow!("No cluster join token for member {name} on remote: {remote}"))?;
            conn.request("DELETE", &format!("/1.0/operations/{}", op.id), None, None).await?;
            if !ctx.quiet {
                println!("Cluster join token for {remote}:{name} deleted");
            }
            Ok(())
        }
    }
}
