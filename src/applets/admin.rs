//! `lxd cluster …`: the admin tools for a member whose daemon is stopped (`list-database`,
//! `recover-from-quorum-loss`, `show`, `edit`) and `remove-raft-node`, which asks the running
//! cluster's leader.

use std::io::{BufRead, Write};

use argh::FromArgs;
use rxd::client::Connection;
use rxd::cluster::admin;
use rxd::paths::Paths;

#[derive(FromArgs)]
/// Low-level cluster administration commands.
#[argh(subcommand, name = "cluster")]
pub struct ClusterAdmin {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    ListDatabase(ListDatabase),
    Recover(Recover),
    RemoveRaftNode(RemoveRaftNode),
    Show(Show),
    Edit(Edit),
}

#[derive(FromArgs)]
/// Print the addresses of the cluster members serving the database (and how far each log reached).
#[argh(subcommand, name = "list-database")]
struct ListDatabase {}

#[derive(FromArgs)]
/// Recover a LXD instance whose cluster has lost quorum: it becomes the only database voter.
#[argh(subcommand, name = "recover-from-quorum-loss")]
struct Recover {
    /// don't require user confirmation
    #[argh(switch, short = 'q')]
    quiet: bool,
    /// print what would change, change nothing
    #[argh(switch)]
    dry_run: bool,
}

#[derive(FromArgs)]
/// Remove a raft node from the raft configuration.
#[argh(subcommand, name = "remove-raft-node")]
struct RemoveRaftNode {
    /// the member's address (port 8443 when omitted)
    #[argh(positional)]
    address: String,
    /// don't require user confirmation
    #[argh(switch, short = 'q')]
    quiet: bool,
}

#[derive(FromArgs)]
/// Show the cluster configuration as YAML.
#[argh(subcommand, name = "show")]
struct Show {}

#[derive(FromArgs)]
/// Edit the cluster configuration as YAML (the daemon must be stopped).
#[argh(subcommand, name = "edit")]
struct Edit {}

/// `lxd cluster ls` is `lxd cluster list-database`.
pub fn expand_alias(args: &mut [String]) {
    if let Some(i) = args.iter().position(|a| a == "cluster")
        && let Some(next) = args.get_mut(i + 1)
        && next == "ls"
    {
        *next = "list-database".into();
    }
}

fn confirm(prompt: &str) -> anyhow::Result<bool> {
    print!("{prompt}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

pub async fn run(args: ClusterAdmin) -> anyhow::Result<()> {
    let paths = Paths::from_env();
    match args.cmd {
        Cmd::ListDatabase(_) => {
            let members = admin::list_database(&paths).await?;
            let rows: Vec<Vec<String>> = members
                .iter()
                .map(|m| {
                    let (index, term, seen) = match &m.position {
                        Some((i, t, s)) => (i.to_string(), t.to_string(), s.clone()),
                        None => ("unknown".into(), "unknown".into(), String::new()),
                    };
                    let name = if m.own { format!("{} (this member)", m.node.name) } else { m.node.name.clone() };
                    vec![m.node.address.clone(), name, admin::role_name(m.node.role).into(), index, term, seen]
                })
                .collect();
            print!("{}", super::client::format::table(&["ADDRESS", "NAME", "ROLE", "LAST INDEX", "TERM", "AS OF"], &rows));
            Ok(())
        }
        Cmd::Recover(r) => {
            let plan = admin::plan_recovery(&paths).await?;
            println!(
                "This member ({} at {}) becomes the only database voter. Its log ends at index {} (term {}); {} entries are applied.",
                plan.own.name, plan.own.address, plan.facts.last_index, plan.facts.last_term, plan.facts.applied_index
            );
            for d in &plan.dropped {
                println!(
                    "Leaves the database configuration: {} at {} ({}); it stays listed until `lxc cluster remove --force {}`.",
                    d.name,
                    d.address,
                    admin::role_name(d.role),
                    d.name
                );
            }
            println!(
                "Every row of the database is kept. A backup of {} goes to {}.",
                paths.database().display(),
                plan.backup.display()
            );
            if r.dry_run {
                println!("Dry run: nothing was changed.");
                return Ok(());
            }
            if !r.quiet {
                let proceed = confirm(
                    "\nYou should run this command only if you are *absolutely* certain that this is\n\
                     the only database node left in your cluster AND that other database nodes will\n\
                     never come back (i.e. their LXD daemon won't ever be started again).\n\n\
                     This will make this LXD instance the only member of the cluster, and it won't\n\
                     be possible to perform operations on former cluster members anymore.\n\n\
                     However all information about former cluster members will be preserved in the\n\
                     database, so you can possibly inspect it for troubleshooting, and remove them\n\
                     with `lxc cluster remove <name> --force`.\n\n\
                     Do you want to proceed? (yes/no): ",
                )?;
                if !proceed {
                    anyhow::bail!("Recover operation aborted");
                }
            }
            let neutralised = admin::recover(&paths, &plan).await?;
            println!("Backup written to {}", plan.backup.display());
            if neutralised > 0 {
                println!("{neutralised} pending membership change(s) in the log were dropped.");
            }
            println!("Recovered: start the daemon; this member now leads a one-voter cluster.");
            Ok(())
        }
        Cmd::RemoveRaftNode(r) => {
            if !r.quiet {
                let proceed = confirm(
                    "You should run this command only if you ended up in an\n\
                     inconsistent state where a node has been uncleanly removed (i.e. it doesn't show\n\
                     up in \"lxc cluster list\" but it's still in the raft configuration).\n\n\
                     Do you want to proceed? (yes/no): ",
                )?;
                if !proceed {
                    anyhow::bail!("Remove raft node operation aborted");
                }
            }
            let conn = Connection::unix(paths.socket());
            if conn.open().await.is_err() {
                anyhow::bail!("The LXD daemon doesn't appear to be started (socket path: {})", paths.socket().display());
            }
            let address = rxd::config::parse_address(&r.address, 8443)?;
            conn.request("DELETE", &format!("/internal/cluster/raft-node/{address}"), None, None).await?;
            Ok(())
        }
        Cmd::Show(_) => {
            print!("{}", admin::show(&paths).await?);
            Ok(())
        }
        Cmd::Edit(_) => {
            let text = super::client::edit_text(&admin::show(&paths).await?)?;
            admin::edit(&paths, &text).await?;
            Ok(())
        }
    }
}
