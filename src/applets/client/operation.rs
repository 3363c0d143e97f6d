//! `lxc operation`: list, show, delete.

use std::collections::BTreeMap;

use argh::FromArgs;
use rxd::api::Operation;

use super::Ctx;
use super::format::{self, Format};

#[derive(FromArgs)]
/// List, show and delete background operations.
#[argh(subcommand, name = "operation")]
pub struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    List(List),
    Show(ShowCmd),
    Delete(DeleteCmd),
}

list_cmd!(List, "List background operations.");

one_arg!(ShowCmd, "show", "Show details on a background operation.", operation, "the target: [<remote>:]<operation>");
one_arg!(DeleteCmd, "delete", "Delete (cancel) a background operation.", operation, "the target: [<remote>:]<operation>");

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::List(l) => {
            let (remote, _) = ctx.remote_of(l.remote.as_deref().unwrap_or(""));
            let groups: BTreeMap<String, Vec<Operation>> = ctx.connect(&remote)?.get_json("/1.0/operations?recursion=1").await?;
            let mut ops: Vec<Operation> = groups.into_values().flatten().collect();
            ops.sort_by(|a, b| a.created_at.cmp(&b.created_at));
            let rows: Vec<Vec<String>> = ops
                .iter()
                .map(|o| {
                    let created =
                        rxd::util::time::parse_rfc3339(&o.created_at).map(rxd::util::time::table_string).unwrap_or_default();
                    vec![
                        o.id.clone(),
                        o.class.to_uppercase(),
                        o.description.clone(),
                        o.status.to_uppercase(),
                        if o.may_cancel { "YES" } else { "NO" }.into(),
                        created,
                    ]
                })
                .collect();
            print!(
                "{}",
                format::render(l.format, &["ID", "TYPE", "DESCRIPTION", "STATUS", "CANCELABLE", "CREATED"], &rows, &ops)
            );
            Ok(())
        }
        Cmd::Show(s) => {
            let (remote, id) = ctx.remote_of(&s.operation);
            super::show::<Operation>(&ctx, &remote, &format!("/1.0/operations/{id}")).await
        }
        Cmd::Delete(d) => {
            let (remote, id) = ctx.remote_of(&d.operation);
            ctx.connect(&remote)?.request("DELETE", &format!("/1.0/operations/{id}"), None, None).await?;
            Ok(())
        }
    }
}
