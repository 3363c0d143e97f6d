//! `lxc profile`: list, show, create, copy, get, set, unset, edit, rename, delete, device.

use argh::FromArgs;
use rxd::api::{Profile, ProfilePut};

use super::format::{self, Format};
use super::{Ctx, key_values};

#[derive(FromArgs)]
/// Manage profiles.
#[argh(subcommand, name = "profile")]
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
    Copy(Copy),
    Get(GetCmd),
    Set(Set),
    Unset(UnsetCmd),
    Edit(EditCmd),
    Rename(Rename),
    Delete(DeleteCmd),
    Device(Device),
}

list_cmd!(List, "List profiles.");

#[derive(FromArgs)]
/// Create profiles.
#[argh(subcommand, name = "create")]
struct Create {
    /// the target: [<remote>:]<profile>
    #[argh(positional)]
    profile: String,
    /// profile description
    #[argh(option)]
    description: Option<String>,
}

#[derive(FromArgs)]
/// Copy profiles.
#[argh(subcommand, name = "copy")]
struct Copy {
    /// the target: [<remote>:]<profile>
    #[argh(positional)]
    source: String,
    /// the target: [<remote>:]<profile>
    #[argh(positional)]
    target: String,
}

#[derive(FromArgs)]
/// Set profile configuration keys.
#[argh(subcommand, name = "set")]
struct Set {
    /// the target: [<remote>:]<profile>
    #[argh(positional)]
    profile: String,
    /// pairs: <key>=<value>... or <key> <value>
    #[argh(positional, greedy)]
    pairs: Vec<String>,
}

#[derive(FromArgs)]
/// Rename profiles.
#[argh(subcommand, name = "rename")]
struct Rename {
    /// the target: [<remote>:]<profile>
    #[argh(positional)]
    profile: String,
    /// new name
    #[argh(positional)]
    new_name: String,
}

#[derive(FromArgs)]
/// Manage profile devices.
#[argh(subcommand, name = "device")]
struct Device {
    #[argh(subcommand)]
    cmd: DeviceCmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum DeviceCmd {
    Add(DeviceAdd),
    Remove(DeviceRemove),
    List(DeviceList),
    Show(DeviceShow),
}

#[derive(FromArgs)]
/// Add a device: <profile> <device> <type> [key=value...].
#[argh(subcommand, name = "add")]
struct DeviceAdd {
    /// the target: [<remote>:]<profile>
    #[argh(positional)]
    profile: String,
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
struct DeviceRemove {
    /// the target: [<remote>:]<profile>
    #[argh(positional)]
    profile: String,
    /// device names
    #[argh(positional)]
    devices: Vec<String>,
}

one_arg!(DeviceList, "list", "List profile devices.", profile, "the target: [<remote>:]<profile>");
one_arg!(DeviceShow, "show", "Show full device configuration.", profile, "the target: [<remote>:]<profile>");

one_arg!(ShowCmd, "show", "Show profile configurations.", profile, "the target: [<remote>:]<profile>");
one_arg!(EditCmd, "edit", "Edit profiles as YAML.", profile, "the target: [<remote>:]<profile>");
one_arg!(DeleteCmd, "delete", "Delete profiles.", profile, "the target: [<remote>:]<profile>");
object_key!(GetCmd, "get", "Get values for profile configuration keys.", profile, "the target: [<remote>:]<profile>");
object_key!(UnsetCmd, "unset", "Unset profile configuration keys.", profile, "the target: [<remote>:]<profile>");

fn url(name: &str) -> String {
    format!("/1.0/profiles/{name}")
}

async fn modify(ctx: &Ctx, arg: &str, edit: impl FnOnce(&mut ProfilePut) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let (remote, name) = ctx.remote_of(arg);
    super::modify(ctx, &remote, &url(name), |p: Profile| {
        let mut put = ProfilePut { config: p.config, description: p.description, devices: p.devices };
        edit(&mut put)?;
        Ok(put)
    })
    .await
}

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::List(l) => {
            let (remote, _) = ctx.remote_of(l.remote.as_deref().unwrap_or(""));
            let profiles: Vec<Profile> = ctx.connect(&remote)?.get_json("/1.0/profiles?recursion=1").await?;
            let rows: Vec<Vec<String>> =
                profiles.iter().map(|p| vec![p.name.clone(), p.description.clone(), p.used_by.len().to_string()]).collect();
            print!("{}", format::render(l.format, &["NAME", "DESCRIPTION", "USED BY"], &rows, &profiles));
            Ok(())
        }
        Cmd::Show(n) => {
            let (remote, name) = ctx.remote_of(&n.profile);
            super::show::<Profile>(&ctx, &remote, &format!("/1.0/profiles/{name}")).await
        }
        Cmd::Create(c) => {
            let (remote, name) = ctx.remote_of(&c.profile);
            let mut body =
                serde_json::json!({"name": name, "config": {}, "devices": {}, "description": c.description.unwrap_or_default()});
            use std::io::IsTerminal;
            if !std::io::stdin().is_terminal() {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
                if !text.trim().is_empty() {
                    let put: ProfilePut = serde_yaml::from_str(&text)?;
                    body = serde_json::json!({"name": name, "config": put.config, "devices": put.devices, "description": put.description});
                }
            }
            ctx.connect(&remote)?.request("POST", "/1.0/profiles", Some(&body), None).await?;
            if !ctx.quiet {
                println!("Profile {name} created");
            }
            Ok(())
        }
        Cmd::Copy(c) => {
            let (sremote, sname) = ctx.remote_of(&c.source);
            let (tremote, tname) = ctx.remote_of(&c.target);
            let p: Profile = ctx.connect(&sremote)?.get_json(&url(sname)).await?;
            let body = serde_json::json!({"name": tname, "config": p.config, "devices": p.devices, "description": p.description});
            ctx.connect(&tremote)?.request("POST", "/1.0/profiles", Some(&body), None).await?;
            Ok(())
        }
        Cmd::Get(g) => {
            let (remote, name) = ctx.remote_of(&g.profile);
            let p: Profile = ctx.connect(&remote)?.get_json(&url(name)).await?;
            println!("{}", p.config.get(&g.key).cloned().unwrap_or_default());
            Ok(())
        }
        Cmd::Set(s) => {
            let pairs = key_values(&s.pairs)?;
            if pairs.is_empty() {
                anyhow::bail!("Missing required arguments: key and value");
            }
            modify(&ctx, &s.profile, |p| {
                for (k, v) in pairs {
                    p.config.insert(k, v);
                }
                Ok(())
            })
            .await
        }
        Cmd::Unset(u) => {
            modify(&ctx, &u.profile, |p| {
                if p.config.remove(&u.key).is_none() {
                    anyhow::bail!("The key \"{}\" does not exist on profile", u.key);
                }
                Ok(())
            })
            .await
        }
        Cmd::Edit(e) => {
            let (remote, name) = ctx.remote_of(&e.profile);
            super::edit_object(&ctx, &remote, &url(name), |p: Profile| ProfilePut {
                config: p.config,
                description: p.description,
                devices: p.devices,
            })
            .await
        }
        Cmd::Rename(r) => {
            let (remote, name) = ctx.remote_of(&r.profile);
            let body = serde_json::json!({"name": r.new_name});
            super::act(&ctx, &remote, "POST", &url(name), Some(body), format!("Profile {name} renamed to {}", r.new_name)).await
        }
        Cmd::Delete(d) => {
            let (remote, name) = ctx.remote_of(&d.profile);
            super::act(&ctx, &remote, "DELETE", &url(name), None, format!("Profile {name} deleted")).await
        }
        Cmd::Device(d) => device(ctx, d.cmd).await,
    }
}

async fn device(ctx: Ctx, cmd: DeviceCmd) -> anyhow::Result<()> {
    match cmd {
        DeviceCmd::Add(a) => {
            let pairs = if a.pairs.is_empty() { Vec::new() } else { key_values(&a.pairs)? };
            let device = a.device.clone();
            modify(&ctx, &a.profile, |p| {
                if p.devices.contains_key(&a.device) {
                    anyhow::bail!("The device already exists");
                }
                let mut cfg: std::collections::BTreeMap<String, String> = pairs.into_iter().collect();
                cfg.insert("type".into(), a.kind);
                p.devices.insert(a.device, cfg);
                Ok(())
            })
            .await?;
            let (_, name) = ctx.remote_of(&a.profile);
            println!("Device {device} added to {name}");
            Ok(())
        }
        DeviceCmd::Remove(r) => {
            let devices = r.devices.clone();
            modify(&ctx, &r.profile, |p| {
                for d in &r.devices {
                    if p.devices.remove(d).is_none() {
                        anyhow::bail!("Device {d} doesn't exist");
                    }
                }
                Ok(())
            })
            .await?;
            let (_, name) = ctx.remote_of(&r.profile);
            for d in devices {
                println!("Device {d} removed from {name}");
            }
            Ok(())
        }
        DeviceCmd::List(l) => {
            let (remote, name) = ctx.remote_of(&l.profile);
            let p: Profile = ctx.connect(&remote)?.get_json(&url(name)).await?;
            for d in p.devices.keys() {
                println!("{d}");
            }
            Ok(())
        }
        DeviceCmd::Show(l) => {
            let (remote, name) = ctx.remote_of(&l.profile);
            let p: Profile = ctx.connect(&remote)?.get_json(&url(name)).await?;
            print!("{}", format::yaml(&p.devices)?);
            Ok(())
        }
    }
}
