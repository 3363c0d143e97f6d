//! `lxc config`: server configuration (get, set, unset, show, edit) and `lxc config trust`
//! (list, add, remove).

use argh::FromArgs;
use base64::Engine;
use rxd::api::{Certificate, CertificateAddToken, Operation};
use rxd::tls;

use super::format::{self, Format};
use super::{Ctx, edit_text, key_values};

#[derive(FromArgs)]
/// Manage server configuration options.
#[argh(subcommand, name = "config")]
pub struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Get(Get),
    Set(Set),
    Unset(Unset),
    Show(Show),
    Edit(Edit),
    Trust(Trust),
    Device(Device),
}

#[derive(FromArgs)]
/// Manage instance devices.
#[argh(subcommand, name = "device")]
struct Device {
    #[argh(subcommand)]
    cmd: super::device::Cmd,
}

#[derive(FromArgs)]
/// Get values for server configuration keys.
#[argh(subcommand, name = "get")]
struct Get {
    /// the target: [<remote>:]<key>
    #[argh(positional)]
    args: Vec<String>,
}

#[derive(FromArgs)]
/// Set server configuration keys (key=value... or key value).
#[argh(subcommand, name = "set")]
struct Set {
    /// the target: [<remote>:] <key>=<value>...
    #[argh(positional, greedy)]
    args: Vec<String>,
}

#[derive(FromArgs)]
/// Unset server configuration keys.
#[argh(subcommand, name = "unset")]
struct Unset {
    /// the target: [<remote>:]<key>
    #[argh(positional)]
    args: Vec<String>,
}

#[derive(FromArgs)]
/// Show the server configuration.
#[argh(subcommand, name = "show")]
struct Show {
    /// the target: [<remote>:]
    #[argh(positional)]
    remote: Option<String>,
}

#[derive(FromArgs)]
/// Edit the server configuration as YAML.
#[argh(subcommand, name = "edit")]
struct Edit {
    /// the target: [<remote>:]
    #[argh(positional)]
    remote: Option<String>,
}

#[derive(FromArgs)]
/// Manage trusted clients.
#[argh(subcommand, name = "trust")]
struct Trust {
    #[argh(subcommand)]
    cmd: TrustCmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum TrustCmd {
    List(TrustList),
    Add(TrustAdd),
    Remove(TrustRemove),
}

#[derive(FromArgs)]
/// List trusted clients.
#[argh(subcommand, name = "list")]
struct TrustList {
    /// the target: [<remote>:]
    #[argh(positional)]
    remote: Option<String>,
    /// format (table, csv, json, yaml, compact)
    #[argh(option, short = 'f', default = "Format::Table")]
    format: Format,
}

#[derive(FromArgs)]
/// Add a trusted client: a certificate file, or (without one) a single-use token.
#[argh(subcommand, name = "add")]
struct TrustAdd {
    /// the target: [<remote>:] [<cert>]
    #[argh(positional)]
    args: Vec<String>,
    /// client name (for tokens)
    #[argh(option)]
    name: Option<String>,
    /// print only the token
    #[argh(switch, short = 'q')]
    quiet: bool,
}

#[derive(FromArgs)]
/// Remove a trusted client.
#[argh(subcommand, name = "remove")]
struct TrustRemove {
    /// the target: [<remote>:]<fingerprint>
    #[argh(positional)]
    target: String,
}

/// Splits a leading `remote:` argument off a key list.
fn split_remote(ctx: &Ctx, args: &[String]) -> (String, Vec<String>) {
    match args.first() {
        Some(first) if first.ends_with(':') && ctx.config.remotes.contains_key(first.trim_end_matches(':')) => {
            (first.trim_end_matches(':').to_string(), args[1..].to_vec())
        }
        Some(first) => {
            let (remote, key) = ctx.remote_of(first);
            let mut rest = vec![key.to_string()];
            rest.extend_from_slice(&args[1..]);
            (remote, rest)
        }
        None => (ctx.config.default_remote.clone(), vec![]),
    }
}

fn render_value(v: &serde_json::Value) -> String {
    rxd::api::config_value_to_string(v)
}

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::Device(d) => super::device::run(ctx, super::device::Owner::Instance, d.cmd).await,
        Cmd::Get(g) if g.args.len() == 2 && !g.args[0].ends_with(':') => {
            let (remote, name) = ctx.remote_of(&g.args[0]);
            let inst: rxd::api::Instance = ctx.connect(&remote)?.get_json(&format!("/1.0/instances/{name}")).await?;
            println!("{}", inst.put.config.get(&g.args[1]).cloned().unwrap_or_default());
            Ok(())
        }
        Cmd::Set(s) if is_instance_form(&s.args) => {
            let (remote, name) = ctx.remote_of(&s.args[0]);
            let pairs = key_values(&s.args[1..])?;
            update_instance(&ctx, &remote, name, |config| {
                for (k, v) in &pairs {
                    config.insert(k.clone(), v.clone());
                }
            })
            .await
        }
        Cmd::Unset(u) if u.args.len() == 2 && !u.args[0].ends_with(':') => {
            let (remote, name) = ctx.remote_of(&u.args[0]);
            let key = u.args[1].clone();
            update_instance(&ctx, &remote, name, |config| {
                config.remove(&key);
            })
            .await
        }
        Cmd::Get(g) => {
            let (remote, keys) = split_remote(&ctx, &g.args);
            let key = keys.first().ok_or_else(|| anyhow::anyhow!("Missing required argument: key"))?;
            let server: rxd::api::Server = ctx.connect(&remote)?.get_json("/1.0").await?;
            println!("{}", server.config.get(key).map(render_value).unwrap_or_default());
            Ok(())
        }
        Cmd::Set(s) => {
            let (remote, rest) = split_remote(&ctx, &s.args);
            let pairs = key_values(&rest)?;
            if pairs.is_empty() {
                anyhow::bail!("Missing required arguments: key and value");
            }
            update(&ctx, &remote, |config| {
                for (k, v) in &pairs {
                    config.insert(k.clone(), v.clone().into());
                }
            })
            .await
        }
        Cmd::Unset(u) => {
            let (remote, keys) = split_remote(&ctx, &u.args);
            let key = keys.first().cloned().ok_or_else(|| anyhow::anyhow!("Missing required argument: key"))?;
            update(&ctx, &remote, |config| {
                config.remove(&key);
            })
            .await
        }
        Cmd::Show(s) => {
            let (remote, _) = ctx.remote_of(s.remote.as_deref().unwrap_or(""));
            let server: rxd::api::Server = ctx.connect(&remote)?.get_json("/1.0").await?;
            print!("{}", format::yaml(&serde_json::json!({ "config": server.config }))?);
            Ok(())
        }
        Cmd::Edit(e) => {
            let (remote, _) = ctx.remote_of(e.remote.as_deref().unwrap_or(""));
            let conn = ctx.connect(&remote)?;
            let reply = conn.get("/1.0").await?;
            let current = serde_json::json!({ "config": reply.envelope.metadata.get("config") });
            let text = edit_text(&format::yaml(&current)?)?;
            let new: rxd::api::ServerPut = serde_yaml::from_str(&text)?;
            conn.request("PUT", "/1.0", Some(&serde_json::to_value(new)?), reply.etag().as_deref()).await?;
            Ok(())
        }
        Cmd::Trust(t) => trust(ctx, t.cmd).await,
    }
}

/// Read-modify-write of the server config with the ETag, as LXD's client does.
async fn update(
    ctx: &Ctx,
    remote: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> anyhow::Result<()> {
    super::modify(ctx, remote, "/1.0", |server: serde_json::Value| {
        let mut config = server.get("config").and_then(|c| c.as_object()).cloned().unwrap_or_default();
        edit(&mut config);
        Ok(serde_json::json!({ "config": config }))
    })
    .await?;
    Ok(())
}

/// `Nov 27, 2026 at 2:35am (UTC)` from an X.509 time.
fn cert_dates(pem: &str) -> (String, String) {
    let der = match tls::cert_der(pem) {
        Ok(d) => d,
        Err(_) => return (String::new(), String::new()),
    };
    tls::validity(der.as_ref()).map(|(a, b)| (fmt_date(a), fmt_date(b))).unwrap_or_default()
}

fn fmt_date(nanos: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let s = rxd::util::time::rfc3339(nanos);
    let (y, m, d, hh, mm) = (&s[0..4], &s[5..7], &s[8..10], &s[11..13], &s[14..16]);
    let month = m.parse::<usize>().ok().and_then(|m| MONTHS.get(m.wrapping_sub(1))).copied().unwrap_or("?");
    let hour: u32 = hh.parse().unwrap_or(0);
    let (h12, ampm) = match hour {
        0 => (12, "am"),
        1..=11 => (hour, "am"),
        12 => (12, "pm"),
        _ => (hour - 12, "pm"),
    };
    format!("{month} {}, {y} at {h12}:{mm}{ampm} (UTC)", d.trim_start_matches('0'))
}

async fn trust(ctx: Ctx, cmd: TrustCmd) -> anyhow::Result<()> {
    match cmd {
        TrustCmd::List(l) => {
            let (remote, _) = ctx.remote_of(l.remote.as_deref().unwrap_or(""));
            let certs: Vec<Certificate> = ctx.connect(&remote)?.get_json("/1.0/certificates?recursion=1").await?;
            let mut rows: Vec<Vec<String>> = certs
                .iter()
                .map(|c| {
                    let cn = tls::cert_der(&c.certificate).ok().and_then(|d| tls::common_name(d.as_ref())).unwrap_or_default();
                    let (issued, expires) = cert_dates(&c.certificate);
                    vec![c.kind.clone(), c.name.clone(), cn, c.fingerprint.chars().take(12).collect(), issued, expires]
                })
                .collect();
            rows.sort();
            print!(
                "{}",
                format::render(
                    l.format,
                    &["TYPE", "NAME", "COMMON NAME", "FINGERPRINT", "ISSUE DATE", "EXPIRY DATE"],
                    &rows,
                    &certs
                )
            );
            Ok(())
        }
        TrustCmd::Add(a) => {
            let (remote, rest) = split_remote(&ctx, &a.args);
            let conn = ctx.connect(&remote)?;
            match rest.first().filter(|s| !s.is_empty()) {
                Some(path) => {
                    let pem = std::fs::read_to_string(path)?;
                    let der = tls::cert_der(&pem)?;
                    let body = serde_json::json!({
                        "name": a.name.unwrap_or_default(), "type": "client",
                        "certificate": base64::engine::general_purpose::STANDARD.encode(der.as_ref()),
                        "password": "", "token": false,
                    });
                    conn.request("POST", "/1.0/certificates", Some(&body), None).await?;
                    Ok(())
                }
                None => {
                    let name = match a.name {
                        Some(n) => n,
                        None => super::ask("Please provide client name: ")?,
                    };
                    let body =
                        serde_json::json!({"name": name, "type": "client", "certificate": "", "password": "", "token": true});
                    let reply = conn.request("POST", "/1.0/certificates", Some(&body), None).await?;
                    let op: Operation = serde_json::from_value(reply.envelope.metadata)?;
                    let md = &op.metadata;
                    let text = |k: &str| md.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
                    let token = CertificateAddToken {
                        client_name: md.pointer("/request/name").and_then(|v| v.as_str()).unwrap_or(&name).to_string(),
                        fingerprint: text("fingerprint"),
                        addresses: serde_json::from_value(md.get("addresses").cloned().unwrap_or_default()).unwrap_or_default(),
                        secret: text("secret"),
                        expires_at: md.get("expiresAt").and_then(|v| v.as_str()).unwrap_or("0001-01-01T00:00:00Z").to_string(),
                    };
                    if a.quiet {
                        println!("{}", token.encode());
                    } else {
                        println!("Client {name} certificate add token:\n{}", token.encode());
                    }
                    Ok(())
                }
            }
        }
        TrustCmd::Remove(r) => {
            let (remote, fp) = ctx.remote_of(&r.target);
            ctx.connect(&remote)?.request("DELETE", &format!("/1.0/certificates/{fp}"), None, None).await?;
            Ok(())
        }
    }
}

/// `lxc config set <instance> k=v…` or `<instance> k v` (as opposed to server keys).
fn is_instance_form(args: &[String]) -> bool {
    let Some(first) = args.first() else { return false };
    !first.contains('=') && !first.ends_with(':') && (args.len() == 3 || args.get(1).is_some_and(|a| a.contains('=')))
}

/// Read-modify-write of an instance's config (the PUT is an operation, waited for).
async fn update_instance(
    ctx: &Ctx,
    remote: &str,
    name: &str,
    edit: impl FnOnce(&mut std::collections::BTreeMap<String, String>),
) -> anyhow::Result<()> {
    let conn = ctx.connect(remote)?;
    let path = format!("/1.0/instances/{name}");
    let reply = conn.get(&path).await?;
    let etag = reply.etag();
    let mut put = serde_json::from_value::<rxd::api::Instance>(reply.envelope.metadata)?.put;
    edit(&mut put.config);
    let reply = conn.request("PUT", &path, Some(&serde_json::to_value(put)?), etag.as_deref()).await?;
    super::instance::wait(&conn, reply).await?;
    Ok(())
}
