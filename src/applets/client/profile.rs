//! `lxc profile`: list, show, create, copy, get, set, unset, edit, rename, delete, device (shared with
//! `lxc config device`, in device.rs).

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
    cmd: super::device::Cmd,
}

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
        Cmd::Device(d) => super::device::run(ctx, super::device::Owner::Profile, d.cmd).await,
    }
}
