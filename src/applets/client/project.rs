//! `lxc project`: list, show, create, get, set, unset, rename, delete.

use argh::FromArgs;
use rxd::api::Project;

use super::format::{self, Format};
use super::{Ctx, key_values};

#[derive(FromArgs)]
/// Manage projects.
#[argh(subcommand, name = "project")]
pub struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    List(List),
    Show(ShowCmd),
    Create(Create),
    Get(GetCmd),
    Set(Set),
    Unset(UnsetCmd),
    Rename(Rename),
    Delete(DeleteCmd),
}

list_cmd!(List, "List projects.");

#[derive(FromArgs)]
/// Create projects.
#[argh(subcommand, name = "create")]
struct Create {
    /// the target: [<remote>:]<project>
    #[argh(positional)]
    project: String,
    /// config key=value
    #[argh(option, short = 'c')]
    config: Vec<String>,
}

#[derive(FromArgs)]
/// Set project keys.
#[argh(subcommand, name = "set")]
struct Set {
    /// the target: [<remote>:]<project>
    #[argh(positional)]
    project: String,
    /// pairs: <key>=<value>...
    #[argh(positional, greedy)]
    pairs: Vec<String>,
}

#[derive(FromArgs)]
/// Rename projects.
#[argh(subcommand, name = "rename")]
struct Rename {
    /// the target: [<remote>:]<project>
    #[argh(positional)]
    project: String,
    /// new name
    #[argh(positional)]
    new_name: String,
}

one_arg!(ShowCmd, "show", "Show project options.", project, "the target: [<remote>:]<project>");
one_arg!(DeleteCmd, "delete", "Delete projects.", project, "the target: [<remote>:]<project>");
object_key!(GetCmd, "get", "Get values for project configuration keys.", project, "the target: [<remote>:]<project>");
object_key!(UnsetCmd, "unset", "Unset project configuration keys.", project, "the target: [<remote>:]<project>");

fn url(name: &str) -> String {
    format!("/1.0/projects/{name}")
}

async fn modify(ctx: &Ctx, arg: &str, edit: impl FnOnce(&mut Project) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let (remote, name) = ctx.remote_of(arg);
    super::modify(ctx, &remote, &url(name), |mut p: Project| {
        edit(&mut p)?;
        Ok(serde_json::json!({"config": p.config, "description": p.description}))
    })
    .await
}

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::List(l) => {
            let (remote, _) = ctx.remote_of(l.remote.as_deref().unwrap_or(""));
            let projects: Vec<Project> = ctx.connect(&remote)?.get_json("/1.0/projects?recursion=1").await?;
            let yes =
                |p: &Project, k: &str| if p.config.get(k).map(String::as_str) == Some("true") { "YES" } else { "NO" }.to_string();
            let rows: Vec<Vec<String>> = projects
                .iter()
                .map(|p| {
                    vec![
                        if p.name == "default" { "default (current)".into() } else { p.name.clone() },
                        yes(p, "features.images"),
                        yes(p, "features.profiles"),
                        yes(p, "features.storage.volumes"),
                        yes(p, "features.networks"),
                        p.description.clone(),
                        p.used_by.len().to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                format::render(
                    l.format,
                    &["NAME", "IMAGES", "PROFILES", "STORAGE VOLUMES", "NETWORKS", "DESCRIPTION", "USED BY"],
                    &rows,
                    &projects
                )
            );
            Ok(())
        }
        Cmd::Show(n) => {
            let (remote, name) = ctx.remote_of(&n.project);
            super::show::<Project>(&ctx, &remote, &format!("/1.0/projects/{name}")).await
        }
        Cmd::Create(c) => {
            let (remote, name) = ctx.remote_of(&c.project);
            let config: std::collections::BTreeMap<String, String> = key_values(&c.config)?.into_iter().collect();
            let body = serde_json::json!({"name": name, "config": config, "description": ""});
            ctx.connect(&remote)?.request("POST", "/1.0/projects", Some(&body), None).await?;
            println!("Project {name} created");
            Ok(())
        }
        Cmd::Get(g) => {
            let (remote, name) = ctx.remote_of(&g.project);
            let p: Project = ctx.connect(&remote)?.get_json(&url(name)).await?;
            println!("{}", p.config.get(&g.key).cloned().unwrap_or_default());
            Ok(())
        }
        Cmd::Set(s) => {
            let pairs = key_values(&s.pairs)?;
            modify(&ctx, &s.project, |p| {
                p.config.extend(pairs);
                Ok(())
            })
            .await
        }
        Cmd::Unset(u) => {
            modify(&ctx, &u.project, |p| {
                p.config.remove(&u.key);
                Ok(())
            })
            .await
        }
        Cmd::Rename(r) => {
            let (remote, name) = ctx.remote_of(&r.project);
            ctx.connect(&remote)?.request("POST", &url(name), Some(&serde_json::json!({"name": r.new_name})), None).await?;
            println!("Project {name} renamed to {}", r.new_name);
            Ok(())
        }
        Cmd::Delete(d) => {
            let (remote, name) = ctx.remote_of(&d.project);
            ctx.connect(&remote)?.request("DELETE", &url(name), None, None).await?;
            println!("Project {name} deleted");
            Ok(())
        }
    }
}
