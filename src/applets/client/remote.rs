//! `lxc remote`: add (trust password or token, fingerprint check), list, remove, switch,
//! get-default, rename, set-url.

use argh::FromArgs;
use rxd::api::CertificateAddToken;
use rxd::client::Connection;
use rxd::client::config::{RemoteConfig, STATIC_REMOTES};
use rxd::tls::{self, ServerPin};

use super::format::{self, Format};
use super::{Ctx, ask};

#[derive(FromArgs)]
/// Manage the list of remote servers.
#[argh(subcommand, name = "remote")]
pub struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Add(Add),
    List(List),
    Remove(Remove),
    Switch(Switch),
    GetDefault(GetDefault),
    Rename(Rename),
    SetUrl(SetUrl),
}

#[derive(FromArgs)]
/// Add new remote servers.
#[argh(subcommand, name = "add")]
struct Add {
    /// remote name
    #[argh(positional)]
    name: String,
    /// address (URL or IP[:port]) or a trust token
    #[argh(positional)]
    addr: Option<String>,
    /// accept the certificate without asking
    #[argh(switch)]
    accept_certificate: bool,
    /// trust password or token
    #[argh(option)]
    password: Option<String>,
    /// public image server
    #[argh(switch)]
    public: bool,
    /// protocol (lxd)
    #[argh(option)]
    protocol: Option<String>,
    /// authentication type (tls)
    #[argh(option)]
    auth_type: Option<String>,
}

#[derive(FromArgs)]
/// List the available remotes.
#[argh(subcommand, name = "list")]
struct List {
    /// format (table, csv, json, yaml, compact)
    #[argh(option, short = 'f', default = "Format::Table")]
    format: Format,
}

#[derive(FromArgs)]
/// Remove remotes.
#[argh(subcommand, name = "remove")]
struct Remove {
    /// remote name
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs)]
/// Switch the default remote.
#[argh(subcommand, name = "switch")]
struct Switch {
    /// remote name
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs)]
/// Show the default remote.
#[argh(subcommand, name = "get-default")]
struct GetDefault {}

#[derive(FromArgs)]
/// Rename remotes.
#[argh(subcommand, name = "rename")]
struct Rename {
    /// current name
    #[argh(positional)]
    old: String,
    /// new name
    #[argh(positional)]
    new: String,
}

#[derive(FromArgs)]
/// Set the URL for the remote.
#[argh(subcommand, name = "set-url")]
struct SetUrl {
    /// remote name
    #[argh(positional)]
    name: String,
    /// new URL
    #[argh(positional)]
    url: String,
}

pub async fn run(mut ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::Add(a) => add(&mut ctx, a).await,
        Cmd::List(l) => {
            list(&ctx, l.format);
            Ok(())
        }
        Cmd::Remove(r) => {
            if STATIC_REMOTES.contains(&r.name.as_str()) {
                anyhow::bail!("Remote {} is static and cannot be modified", r.name);
            }
            if ctx.config.remotes.remove(&r.name).is_none() {
                anyhow::bail!("Remote {} doesn't exist", r.name);
            }
            if ctx.config.default_remote == r.name {
                anyhow::bail!("Can't remove the default remote");
            }
            let _ = std::fs::remove_file(ctx.config.server_cert_path(&r.name));
            Ok(ctx.config.save()?)
        }
        Cmd::Switch(s) => {
            if !ctx.config.remotes.contains_key(&s.name) {
                anyhow::bail!("Remote {} doesn't exist", s.name);
            }
            ctx.config.default_remote = s.name;
            Ok(ctx.config.save()?)
        }
        Cmd::GetDefault(_) => {
            println!("{}", ctx.config.default_remote);
            Ok(())
        }
        Cmd::Rename(r) => {
            if STATIC_REMOTES.contains(&r.old.as_str()) {
                anyhow::bail!("Remote {} is static and cannot be modified", r.old);
            }
            if ctx.config.remotes.contains_key(&r.new) {
                anyhow::bail!("Remote {} already exists", r.new);
            }
            let remote = ctx.config.remotes.remove(&r.old).ok_or_else(|| anyhow::anyhow!("Remote {} doesn't exist", r.old))?;
            ctx.config.remotes.insert(r.new.clone(), remote);
            let (old_crt, new_crt) = (ctx.config.server_cert_path(&r.old), ctx.config.server_cert_path(&r.new));
            if old_crt.exists() {
                std::fs::rename(old_crt, new_crt)?;
            }
            if ctx.config.default_remote == r.old {
                ctx.config.default_remote = r.new;
            }
            Ok(ctx.config.save()?)
        }
        Cmd::SetUrl(s) => {
            if STATIC_REMOTES.contains(&s.name.as_str()) {
                anyhow::bail!("Remote {} is static and cannot be modified", s.name);
            }
            let url = normalise_url(&s.url);
            let remote = ctx.config.remotes.get_mut(&s.name).ok_or_else(|| anyhow::anyhow!("Remote {} doesn't exist", s.name))?;
            remote.addr = url;
            Ok(ctx.config.save()?)
        }
    }
}

fn list(ctx: &Ctx, fmt: Format) {
    let mut rows = Vec::new();
    for (name, r) in &ctx.config.remotes {
        let shown = if *name == ctx.config.default_remote { format!("{name} (current)") } else { name.clone() };
        let protocol = r.protocol.clone().unwrap_or_else(|| "lxd".into());
        let auth = if r.addr.starts_with("unix:") {
            "file access".to_string()
        } else if r.public || protocol == "simplestreams" {
            "none".to_string()
        } else {
            r.auth_type.clone().unwrap_or_else(|| "tls".into())
        };
        let yes = |b: bool| if b { "YES" } else { "NO" }.to_string();
        rows.push(vec![
            shown,
            r.addr.clone(),
            protocol,
            auth,
            yes(r.public),
            yes(STATIC_REMOTES.contains(&name.as_str()) && name == "local"),
            yes(false),
        ]);
    }
    print!(
        "{}",
        format::render(fmt, &["NAME", "URL", "PROTOCOL", "AUTH TYPE", "PUBLIC", "STATIC", "GLOBAL"], &rows, &ctx.config.remotes)
    );
}

/// `https://host:port` from `host`, `host:port` or a URL.
fn normalise_url(addr: &str) -> String {
    if addr.starts_with("unix:") {
        return addr.to_string();
    }
    let rest = addr.trim_start_matches("https://").trim_end_matches('/');
    let has_port = if rest.starts_with('[') { rest.contains("]:") } else { rest.matches(':').count() == 1 };
    if has_port { format!("https://{rest}") } else { format!("https://{rest}:8443") }
}

/// Connects without trusting anything, only to read the server's certificate.
async fn fetch_certificate(host_port: &str, identity: &tls::KeyPairPem) -> anyhow::Result<String> {
    let conn = Connection::https(host_port, ServerPin::AcceptAny, Some(identity))?;
    let (_, cert) = conn.open().await?;
    let der = cert.ok_or_else(|| anyhow::anyhow!("The server at {host_port} presented no certificate"))?;
    Ok(tls::der_to_pem(&der))
}

async fn add(ctx: &mut Ctx, a: Add) -> anyhow::Result<()> {
    if ctx.config.remotes.contains_key(&a.name) {
        anyhow::bail!("Remote {} exists as <{}>", a.name, ctx.config.remotes[&a.name].addr);
    }
    let addr = a.addr.clone().unwrap_or_else(|| a.name.clone());
    if let Some(token) = CertificateAddToken::decode(&addr) {
        return add_with_token(ctx, &a.name, token).await;
    }
    let url = normalise_url(&addr);
    if url.starts_with("unix:") {
        ctx.config.remotes.insert(a.name.clone(), RemoteConfig { addr: url, ..Default::default() });
        return Ok(ctx.config.save()?);
    }
    let host_port = url.trim_start_matches("https://").to_string();
    let identity = ctx.config.identity()?;
    let pem = fetch_certificate(&host_port, &identity).await?;
    let fp = tls::fingerprint_pem(&pem)?;
    if !a.accept_certificate {
        println!("Certificate fingerprint: {fp}");
        let answer = ask("ok (y/n/[fingerprint])? ")?;
        let ok = matches!(answer.to_lowercase().as_str(), "y" | "yes") || answer == fp;
        if !ok {
            anyhow::bail!("Server certificate NACKed by user");
        }
    }
    let conn = Connection::https(&host_port, ServerPin::Fingerprint(fp), Some(&identity))?;
    let server: serde_json::Value = conn.get_json("/1.0").await?;
    if server.get("auth").and_then(|v| v.as_str()) != Some("trusted") && !a.public {
        let password = match a.password {
            Some(p) => p,
            None => ask(&format!("Admin password (or token) for {}: ", a.name))?,
        };
        let body = serde_json::json!({"name": "", "type": "client", "certificate": "", "password": password, "token": false});
        conn.request("POST", "/1.0/certificates", Some(&body), None).await?;
        let server: serde_json::Value = conn.get_json("/1.0").await?;
        if server.get("auth").and_then(|v| v.as_str()) != Some("trusted") {
            anyhow::bail!("Server doesn't trust us after authentication");
        }
        if !ctx.quiet {
            println!("Client certificate now trusted by server: {}", a.name);
        }
    }
    let project = choose_project(&conn).await;
    ctx.config.save_server_cert(&a.name, &pem)?;
    ctx.config.remotes.insert(
        a.name,
        RemoteConfig {
            addr: url,
            auth_type: Some(a.auth_type.unwrap_or_else(|| "tls".into())),
            project,
            protocol: Some(a.protocol.unwrap_or_else(|| "lxd".into())),
            public: a.public,
        },
    );
    Ok(ctx.config.save()?)
}

async fn choose_project(conn: &Connection) -> Option<String> {
    let projects: Vec<String> = conn.get_json("/1.0/projects").await.ok()?;
    match projects.as_slice() {
        [only] => only.rsplit('/').next().map(str::to_string),
        _ => Some(String::new()),
    }
}

async fn add_with_token(ctx: &mut Ctx, name: &str, token: CertificateAddToken) -> anyhow::Result<()> {
    let identity = ctx.config.identity()?;
    let mut last_error = anyhow::anyhow!("No address in the token");
    for address in &token.addresses {
        let pem = match fetch_certificate(address, &identity).await {
            Ok(p) => p,
            Err(e) => {
                last_error = e;
                continue;
            }
        };
        let fp = tls::fingerprint_pem(&pem)?;
        if fp != token.fingerprint {
            anyhow::bail!("Certificate fingerprint mismatch between certificate token and server {address}");
        }
        let conn = Connection::https(address, ServerPin::Fingerprint(fp), Some(&identity))?;
        let body = serde_json::json!({"name": "", "type": "", "certificate": "", "password": token.encode(), "token": false});
        if let Err(e) = conn.request("POST", "/1.0/certificates", Some(&body), None).await {
            last_error = e.into();
            continue;
        }
        let project = choose_project(&conn).await;
        ctx.config.save_server_cert(name, &pem)?;
        ctx.config.remotes.insert(
            name.to_string(),
            RemoteConfig {
                addr: format!("https://{address}"),
                auth_type: None,
                project,
                protocol: Some("lxd".into()),
                public: false,
            },
        );
        return Ok(ctx.config.save()?);
    }
    Err(last_error)
}
