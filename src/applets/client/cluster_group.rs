//! `lxc cluster group`: list, show, create, edit, rename, delete, assign, remove.

use argh::FromArgs;
use rxd::api::{ClusterGroup, ClusterGroupPut, ClusterMember};

use super::Ctx;
use super::format::{self, Format};

#[derive(FromArgs)]
/// Manage cluster groups.
#[argh(subcommand, name = "group")]
pub struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    List(List),
    Show(ShowCmd),
    Create(CreateCmd),
    Edit(EditCmd),
    Rename(Rename),
    Delete(DeleteCmd),
    Assign(Assign),
    Remove(Remove),
}

list_cmd!(List, "List all the cluster groups.");
one_arg!(ShowCmd, "show", "Show details of a cluster group.", group, "the target: [<remote>:]<group>");
one_arg!(CreateCmd, "create", "Create a cluster group.", group, "the target: [<remote>:]<group>");
one_arg!(EditCmd, "edit", "Edit a cluster group.", group, "the target: [<remote>:]<group>");
one_arg!(DeleteCmd, "delete", "Delete a cluster group.", group, "the target: [<remote>:]<group>");

#[derive(FromArgs)]
/// Rename a cluster group.
#[argh(subcommand, name = "rename")]
struct Rename {
    /// the target: [<remote>:]<group>
    #[argh(positional)]
    group: String,
    /// the new name
    #[argh(positional)]
    new_name: String,
}

#[derive(FromArgs)]
/// Assign sets of groups to cluster members.
#[argh(subcommand, name = "assign")]
struct Assign {
    /// the target: [<remote>:]<member>
    #[argh(positional)]
    member: String,
    /// comma-separated groups
    #[argh(positional)]
    groups: String,
}

#[derive(FromArgs)]
/// Remove member from group.
#[argh(subcommand, name = "remove")]
struct Remove {
    /// the target: [<remote>:]<member>
    #[argh(positional)]
    member: String,
    /// the group
    #[argh(positional)]
    group: String,
}

fn url(name: &str) -> String {
    format!("/1.0/cluster/groups/{name}")
}

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::List(l) => {
            let (remote, _) = ctx.remote_of(l.remote.as_deref().unwrap_or(""));
            let groups: Vec<ClusterGroup> = ctx.connect(&remote)?.get_json("/1.0/cluster/groups?recursion=1").await?;
            let rows: Vec<Vec<String>> =
                groups.iter().map(|g| vec![g.name.clone(), g.description.clone(), g.members.len().to_string()]).collect();
            print!("{}", format::render(l.format, &["NAME", "DESCRIPTION", "MEMBERS"], &rows, &groups));
            Ok(())
        }
        Cmd::Show(s) => {
            let (remote, name) = ctx.remote_of(&s.group);
            super::show::<ClusterGroup>(&ctx, &remote, &url(name)).await
        }
        Cmd::Create(c) => {
            let (remote, name) = ctx.remote_of(&c.group);
            let body = serde_json::json!({ "name": name, "description": "", "members": [] });
            ctx.connect(&remote)?.request("POST", "/1.0/cluster/groups", Some(&body), None).await?;
            if !ctx.quiet {
                println!("Cluster group {name} created");
            }
            Ok(())
        }
        Cmd::Edit(e) => {
            let (remote, name) = ctx.remote_of(&e.group);
            super::edit_object(&ctx, &remote, &url(name), |g: ClusterGroup| ClusterGroupPut {
                description: g.description,
                members: g.members,
            })
            .await
        }
        Cmd::Rename(r) => {
            let (remote, name) = ctx.remote_of(&r.group);
            let body = serde_json::json!({ "name": r.new_name });
            super::act(&ctx, &remote, "POST", &url(name), Some(body), format!("Cluster group {name} renamed to {}", r.new_name))
                .await
        }
        Cmd::Delete(d) => {
            let (remote, name) = ctx.remote_of(&d.group);
            super::act(&ctx, &remote, "DELETE", &url(name), None, format!("Cluster group {name} deleted")).await
        }
        Cmd::Assign(a) => {
            let (remote, member) = ctx.remote_of(&a.member);
            let groups: Vec<String> = a.groups.split(',').map(str::to_string).collect();
            super::modify(&ctx, &remote, &format!("/1.0/cluster/members/{member}"), |m: ClusterMember| {
                let mut put = m.writable;
                put.groups = groups;
                Ok(put)
            })
            .await?;
            if !ctx.quiet {
                println!("Cluster member {member} added to cluster groups {}", a.groups);
            }
            Ok(())
        }
        Cmd::Remove(r) => {
            let (remote, member) = ctx.remote_of(&r.member);
            let group = r.group.clone();
            super::modify(&ctx, &remote, &format!("/1.0/cluster/members/{member}"), |m: ClusterMember| {
                let mut put = m.writable;
                if !put.groups.contains(&group) {
                    anyhow::bail!("Cluster group {group} isn't currently applied to {member}");
                }
                put.groups.retain(|g| *g != group);
                Ok(put)
            })
            .await?;
            if !ctx.quiet {
                println!("Cluster member {member} removed from group {}", r.group);
            }
            Ok(())
        }
    }
}
