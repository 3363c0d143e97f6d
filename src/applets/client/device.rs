//! `lxc profile device …` and `lxc config device …`: the devices of a profile or an instance,
//! changed by read-modify-write of the owner with its ETag.

use std::collections::BTreeMap;

use argh::FromArgs;

use super::format;
use super::{Ctx, key_values};

type Devices = BTreeMap<String, BTreeMap<String, String>>;

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum Cmd {
    Add(Add),
    Remove(Remove),
    List(List),
    Show(Show),
}

#[derive(FromArgs)]
/// Add a device: <owner> <device> <type> [key=value...].
#[argh(subcommand, name = "add")]
pub struct Add {
    /// the target: [<remote>:]<profile or instance>
    #[argh(positional)]
    owner: String,
    /// device name
    #[argh(positional)]
    device: String,
    /// device type
    #[argh(positional)]
    kind: String,
    /// key=value...
    #[argh(positional, greedy)]
    pairs: Vec<String>,
}

#[derive(FromArgs)]
/// Remove a device.
#[argh(subcommand, name = "remove")]
pub struct Remove {
    /// the target: [<remote>:]<profile or instance>
    #[argh(positional)]
    owner: String,
    /// device names
    #[argh(positional)]
    devices: Vec<String>,
}

one_arg!(List, "list", "List devices.", owner, "the target: [<remote>:]<profile or instance>");
one_arg!(Show, "show", "Show full device configuration.", owner, "the target: [<remote>:]<profile or instance>");

/// Whose devices these are.
#[derive(Clone, Copy)]
pub enum Owner {
    Profile,
    Instance,
}

impl Owner {
    fn url(self, name: &str) -> String {
        match self {
            Owner::Profile => format!("/1.0/profiles/{name}"),
            Owner::Instance => format!("/1.0/instances/{name}"),
        }
    }
}

/// The owner's own devices (not those it inherits).
async fn devices(ctx: &Ctx, owner: Owner, arg: &str) -> anyhow::Result<Devices> {
    let (remote, name) = ctx.remote_of(arg);
    let v: serde_json::Value = ctx.connect(&remote)?.get_json(&owner.url(name)).await?;
    Ok(serde_json::from_value(v.get("devices").cloned().unwrap_or_default()).unwrap_or_default())
}

/// GET the owner, change its devices, PUT it back with the ETag (an instance's PUT is an
/// operation: waited for).
async fn modify(ctx: &Ctx, owner: Owner, arg: &str, edit: impl FnOnce(&mut Devices) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let (remote, name) = ctx.remote_of(arg);
    let conn = ctx.connect(&remote)?;
    let url = owner.url(name);
    let reply = conn.get(&url).await?;
    let etag = reply.etag();
    let mut body = reply.envelope.metadata;
    let mut devs: Devices = serde_json::from_value(body.get("devices").cloned().unwrap_or_default()).unwrap_or_default();
    edit(&mut devs)?;
    body["devices"] = serde_json::to_value(devs)?;
    let reply = conn.request("PUT", &url, Some(&body), etag.as_deref()).await?;
    if let Owner::Instance = owner {
        super::instance::wait(&conn, reply).await?;
    }
    Ok(())
}

pub async fn run(ctx: Ctx, owner: Owner, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Add(a) => {
            let pairs = if a.pairs.is_empty() { Vec::new() } else { key_values(&a.pairs)? };
            let device = a.device.clone();
            modify(&ctx, owner, &a.owner, |d| {
                if d.contains_key(&a.device) {
                    anyhow::bail!("The device already exists");
                }
                let mut cfg: BTreeMap<String, String> = pairs.into_iter().collect();
                cfg.insert("type".into(), a.kind);
                d.insert(a.device, cfg);
                Ok(())
            })
            .await?;
            println!("Device {device} added to {}", ctx.remote_of(&a.owner).1);
            Ok(())
        }
        Cmd::Remove(r) => {
            let names = r.devices.clone();
            modify(&ctx, owner, &r.owner, |d| {
                for n in &r.devices {
                    if d.remove(n).is_none() {
                        anyhow::bail!("Device {n} doesn't exist");
                    }
                }
                Ok(())
            })
            .await?;
            for n in names {
                println!("Device {n} removed from {}", ctx.remote_of(&r.owner).1);
            }
            Ok(())
        }
        Cmd::List(l) => {
            for d in devices(&ctx, owner, &l.owner).await?.keys() {
                println!("{d}");
            }
            Ok(())
        }
        Cmd::Show(s) => {
            print!("{}", format::yaml(&devices(&ctx, owner, &s.owner).await?)?);
            Ok(())
        }
    }
}
