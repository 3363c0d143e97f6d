//! `lxc cluster`: list and show members.

use argh::FromArgs;
use rxd::api::{Cluster, ClusterMember};

use super::Ctx;
use super::format::{self, Format};

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
}

list_cmd!(List, "List all the cluster members.");

one_arg!(ShowCmd, "show", "Show details of a cluster member.", member, "the target: [<remote>:]<member>");

async fn ensure_clustered(conn: &rxd::client::Connection) -> anyhow::Result<()> {
    let c: Cluster = conn.get_json("/1.0/cluster").await?;
    if !c.enabled {
        anyhow::bail!("LXD server isn't part of a cluster");
    }
    Ok(())
}

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
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
                        m.roles.join("\n"),
                        m.architecture.clone(),
                        m.failure_domain.clone(),
                        m.description.clone(),
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
            let conn = ctx.connect(&remote)?;
            let m: ClusterMember = conn.get_json(&format!("/1.0/cluster/members/{name}")).await?;
            print!("{}", format::yaml(&m)?);
            Ok(())
        }
    }
}
