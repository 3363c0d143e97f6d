//! `lxc storage`: list, show, create, delete.

use argh::FromArgs;
use rxd::api::StoragePool;

use super::format::{self, Format};
use super::{Ctx, key_values};

#[derive(FromArgs)]
/// Manage storage pools.
#[argh(subcommand, name = "storage")]
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
    Delete(DeleteCmd),
}

list_cmd!(List, "List storage pools.");

#[derive(FromArgs)]
/// Create storage pools.
#[argh(subcommand, name = "create")]
struct Create {
    /// the target: [<remote>:]<pool>
    #[argh(positional)]
    pool: String,
    /// driver (dir)
    #[argh(positional)]
    driver: String,
    /// key=value...
    #[argh(positional, greedy)]
    pairs: Vec<String>,
    /// cluster member name
    #[argh(option)]
    target: Option<String>,
}

#[derive(FromArgs)]
/// Show storage pool configurations.
#[argh(subcommand, name = "show")]
struct ShowCmd {
    /// the target: [<remote>:]<pool>
    #[argh(positional)]
    pool: String,
    /// cluster member name
    #[argh(option)]
    target: Option<String>,
}

/// Takes `--target X` (or `--target=X`) out of greedy positional arguments.
fn take_target(args: &mut Vec<String>) -> Option<String> {
    if let Some(i) = args.iter().position(|a| a == "--target") {
        let value = args.get(i + 1).cloned();
        args.drain(i..(i + 2).min(args.len()));
        return value;
    }
    let i = args.iter().position(|a| a.starts_with("--target="))?;
    Some(args.remove(i).trim_start_matches("--target=").to_string())
}

fn with_target(path: String, target: Option<&str>) -> String {
    match target {
        Some(t) => format!("{path}?target={t}"),
        None => path,
    }
}
one_arg!(DeleteCmd, "delete", "Delete storage pools.", pool, "the target: [<remote>:]<pool>");

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::List(l) => {
            let (remote, _) = ctx.remote_of(l.remote.as_deref().unwrap_or(""));
            let conn = ctx.connect(&remote)?;
            let clustered = conn.get_json::<rxd::api::Cluster>("/1.0/cluster").await.is_ok_and(|c| c.enabled);
            let pools: Vec<StoragePool> = conn.get_json("/1.0/storage-pools?recursion=1").await?;
            // A clustered server hides SOURCE: it differs per member.
            let rows: Vec<Vec<String>> = pools
                .iter()
                .map(|p| {
                    let mut row = vec![p.name.clone(), p.driver.clone()];
                    if !clustered {
                        row.push(p.config.get("source").cloned().unwrap_or_default());
                    }
                    row.extend([p.description.clone(), p.used_by.len().to_string(), p.status.to_uppercase()]);
                    row
                })
                .collect();
            let headers: &[&str] = if clustered {
                &["NAME", "DRIVER", "DESCRIPTION", "USED BY", "STATE"]
            } else {
                &["NAME", "DRIVER", "SOURCE", "DESCRIPTION", "USED BY", "STATE"]
            };
            print!("{}", format::render(l.format, headers, &rows, &pools));
            Ok(())
        }
        Cmd::Show(n) => {
            let (remote, name) = ctx.remote_of(&n.pool);
            let path = with_target(format!("/1.0/storage-pools/{name}"), n.target.as_deref());
            super::show::<StoragePool>(&ctx, &remote, &path).await
        }
        Cmd::Create(mut c) => {
            let (remote, name) = ctx.remote_of(&c.pool);
            let target = take_target(&mut c.pairs).or(c.target.clone());
            let config: std::collections::BTreeMap<String, String> =
                if c.pairs.is_empty() { Default::default() } else { key_values(&c.pairs)?.into_iter().collect() };
            let body = serde_json::json!({"name": name, "driver": c.driver, "config": config, "description": ""});
            let path = with_target("/1.0/storage-pools".into(), target.as_deref());
            ctx.connect(&remote)?.request("POST", &path, Some(&body), None).await?;
            if !ctx.quiet {
                match target {
                    Some(t) => println!("Storage pool {name} pending on member {t}"),
                    None => println!("Storage pool {name} created"),
                }
            }
            Ok(())
        }
        Cmd::Delete(d) => {
            let (remote, name) = ctx.remote_of(&d.pool);
            ctx.connect(&remote)?.request("DELETE", &format!("/1.0/storage-pools/{name}"), None, None).await?;
            println!("Storage pool {name} deleted");
            Ok(())
        }
    }
}
