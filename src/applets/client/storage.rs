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
}

one_arg!(ShowCmd, "show", "Show storage pool configurations.", pool, "the target: [<remote>:]<pool>");
one_arg!(DeleteCmd, "delete", "Delete storage pools.", pool, "the target: [<remote>:]<pool>");

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::List(l) => {
            let (remote, _) = ctx.remote_of(l.remote.as_deref().unwrap_or(""));
            let pools: Vec<StoragePool> = ctx.connect(&remote)?.get_json("/1.0/storage-pools?recursion=1").await?;
            let rows: Vec<Vec<String>> = pools
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.driver.clone(),
                        p.config.get("source").cloned().unwrap_or_default(),
                        p.description.clone(),
                        p.used_by.len().to_string(),
                        p.status.to_uppercase(),
                    ]
                })
                .collect();
            print!(
                "{}",
                format::render(l.format, &["NAME", "DRIVER", "SOURCE", "DESCRIPTION", "USED BY", "STATE"], &rows, &pools)
            );
            Ok(())
        }
        Cmd::Show(n) => {
            let (remote, name) = ctx.remote_of(&n.pool);
            super::show::<StoragePool>(&ctx, &remote, &format!("/1.0/storage-pools/{name}")).await
        }
        Cmd::Create(c) => {
            let (remote, name) = ctx.remote_of(&c.pool);
            let config: std::collections::BTreeMap<String, String> =
                if c.pairs.is_empty() { Default::default() } else { key_values(&c.pairs)?.into_iter().collect() };
            let body = serde_json::json!({"name": name, "driver": c.driver, "config": config, "description": ""});
            ctx.connect(&remote)?.request("POST", "/1.0/storage-pools", Some(&body), None).await?;
            println!("Storage pool {name} created");
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
