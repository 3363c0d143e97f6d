//! `lxc image`: import (with a progress bar), list, show, delete, export, alias.

use std::io::{IsTerminal, Write};

use argh::FromArgs;
use rxd::api::{Image, ImageAlias, Operation};

use super::format::{self, Format};
use super::{Ctx, key_values};

#[derive(FromArgs)]
/// Manage images.
#[argh(subcommand, name = "image")]
pub struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Import(Import),
    List(List),
    Show(ShowCmd),
    Delete(DeleteCmd),
    Export(Export),
    Alias(AliasArgs),
}

#[derive(FromArgs)]
/// Import images into the image store.
#[argh(subcommand, name = "import")]
struct Import {
    #[argh(positional)]
    /// unified tarball (metadata.yaml + rootfs/, gzip or xz)
    file: String,
    #[argh(positional, greedy)]
    /// the target: [<remote>:] and key=value properties
    rest: Vec<String>,
    /// new alias to define for the image (repeatable)
    #[argh(option)]
    alias: Vec<String>,
    /// make the image public
    #[argh(switch)]
    public: bool,
}

list_cmd!(List, "List images.");
one_arg!(ShowCmd, "show", "Show image properties.", image, "the target: [<remote>:]<image>");
one_arg!(DeleteCmd, "delete", "Delete images.", image, "the target: [<remote>:]<image>");

#[derive(FromArgs)]
/// Export and download images.
#[argh(subcommand, name = "export")]
struct Export {
    #[argh(positional)]
    /// the target: [<remote>:]<image>
    image: String,
    #[argh(positional)]
    /// target file (the extension is added)
    target: Option<String>,
}

#[derive(FromArgs)]
/// Manage image aliases.
#[argh(subcommand, name = "alias")]
struct AliasArgs {
    #[argh(subcommand)]
    cmd: AliasCmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum AliasCmd {
    Create(AliasCreate),
    Delete(AliasDelete),
    List(AliasList),
}

#[derive(FromArgs)]
/// Create aliases for existing images.
#[argh(subcommand, name = "create")]
struct AliasCreate {
    #[argh(positional)]
    /// the target: [<remote>:]<alias>
    alias: String,
    #[argh(positional)]
    /// fingerprint
    fingerprint: String,
}

one_arg!(AliasDelete, "delete", "Delete image aliases.", alias, "the target: [<remote>:]<alias>");
list_cmd!(AliasList, "List image aliases.");

/// The fingerprint an image argument (alias, fingerprint or prefix) names.
async fn resolve(conn: &rxd::client::Connection, image: &str) -> anyhow::Result<String> {
    if let Ok(a) = conn.get_json::<ImageAlias>(&format!("/1.0/images/aliases/{image}")).await {
        return Ok(a.target);
    }
    Ok(conn.get_json::<Image>(&format!("/1.0/images/{image}")).await?.fingerprint)
}

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::Import(a) => {
            let remote_arg = a.rest.iter().find(|r| r.ends_with(':')).cloned().unwrap_or_default();
            let props: Vec<String> = a.rest.iter().filter(|r| !r.ends_with(':')).cloned().collect();
            let (remote, _) = ctx.remote_of(&remote_arg);
            let conn = ctx.connect(&remote)?;
            let data = bytes::Bytes::from(std::fs::read(&a.file).map_err(|e| anyhow::anyhow!("{}: {e}", a.file))?);
            let filename = std::path::Path::new(&a.file).file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
            let mut headers = vec![("Content-Type", "application/octet-stream".to_string()), ("X-LXD-filename", filename)];
            if a.public {
                headers.push(("X-LXD-public", "true".into()));
            }
            if !props.is_empty() {
                let form: Vec<String> = key_values(&props)?.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                headers.push(("X-LXD-properties", form.join("&")));
            }
            let show = !ctx.quiet && std::io::stdout().is_terminal();
            let (status, _, body) = conn
                .upload("/1.0/images", data, &headers, move |sent, total| {
                    if show {
                        print!("\rTransferring image: {}%   ", sent * 100 / total.max(1));
                        let _ = std::io::stdout().flush();
                    }
                })
                .await?;
            if show {
                print!("\r                          \r");
            }
            let env: rxd::api::Envelope = serde_json::from_slice(&body)?;
            if env.kind == "error" {
                anyhow::bail!("{}", env.error);
            }
            let _ = status;
            let op: Operation = serde_json::from_value(env.metadata)?;
            let done = conn.wait_operation(&op.id).await?;
            let fp = done.metadata.get("fingerprint").and_then(|f| f.as_str()).unwrap_or_default().to_string();
            for alias in &a.alias {
                let body = serde_json::json!({"name": alias, "target": fp, "description": "", "type": ""});
                conn.request("POST", "/1.0/images/aliases", Some(&body), None).await?;
            }
            println!("Image imported with fingerprint: {fp}");
            Ok(())
        }
        Cmd::List(l) => {
            let (remote, _) = ctx.remote_of(l.remote.as_deref().unwrap_or(""));
            let images: Vec<Image> = ctx.connect(&remote)?.get_json("/1.0/images?recursion=1").await?;
            let rows: Vec<Vec<String>> = images
                .iter()
                .map(|i| {
                    vec![
                        i.aliases.iter().map(|a| a.name.clone()).collect::<Vec<_>>().join("\n"),
                        i.fingerprint.chars().take(12).collect(),
                        if i.put.public { "yes".into() } else { "no".into() },
                        i.put.properties.get("description").cloned().unwrap_or_default(),
                        i.architecture.clone(),
                        i.kind.to_uppercase(),
                        format!("{:.2}MB", i.size as f64 / 1_000_000.0),
                        rxd::util::time::parse_rfc3339(&i.uploaded_at).map(rxd::util::time::table_string).unwrap_or_default(),
                    ]
                })
                .collect();
            let headers = ["ALIAS", "FINGERPRINT", "PUBLIC", "DESCRIPTION", "ARCHITECTURE", "TYPE", "SIZE", "UPLOAD DATE"];
            print!("{}", format::render(l.format, &headers, &rows, &images));
            Ok(())
        }
        Cmd::Show(s) => {
            let (remote, image) = ctx.remote_of(&s.image);
            let fp = resolve(&ctx.connect(&remote)?, image).await?;
            super::show::<Image>(&ctx, &remote, &format!("/1.0/images/{fp}")).await
        }
        Cmd::Delete(d) => {
            let (remote, image) = ctx.remote_of(&d.image);
            let conn = ctx.connect(&remote)?;
            let fp = resolve(&conn, image).await?;
            let reply = conn.request("DELETE", &format!("/1.0/images/{fp}"), None, None).await?;
            super::instance::wait(&conn, reply).await?;
            Ok(())
        }
        Cmd::Export(e) => {
            let (remote, image) = ctx.remote_of(&e.image);
            let conn = ctx.connect(&remote)?;
            let fp = resolve(&conn, image).await?;
            let (status, headers, body) = conn.raw("GET", &format!("/1.0/images/{fp}/export"), None, &[]).await?;
            if status != 200 {
                let env: rxd::api::Envelope = serde_json::from_slice(&body)?;
                anyhow::bail!("{}", env.error);
            }
            let disposition = headers.get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let filename = disposition.split("filename=").nth(1).unwrap_or("image.tar.gz").trim_matches('"').to_string();
            let ext = filename.split_once('.').map(|(_, e)| e).unwrap_or("tar.gz");
            let target = match e.target {
                Some(t) if std::path::Path::new(&t).is_dir() => std::path::Path::new(&t).join(&filename).display().to_string(),
                Some(t) => format!("{t}.{ext}"),
                None => filename,
            };
            std::fs::write(&target, &body)?;
            println!("Image exported successfully!");
            Ok(())
        }
        Cmd::Alias(a) => match a.cmd {
            AliasCmd::Create(c) => {
                let (remote, alias) = ctx.remote_of(&c.alias);
                let conn = ctx.connect(&remote)?;
                let fp = resolve(&conn, &c.fingerprint).await?;
                let body = serde_json::json!({"name": alias, "target": fp, "description": "", "type": ""});
                conn.request("POST", "/1.0/images/aliases", Some(&body), None).await?;
                Ok(())
            }
            AliasCmd::Delete(d) => {
                let (remote, alias) = ctx.remote_of(&d.alias);
                ctx.connect(&remote)?.request("DELETE", &format!("/1.0/images/aliases/{alias}"), None, None).await?;
                Ok(())
            }
            AliasCmd::List(l) => {
                let (remote, _) = ctx.remote_of(l.remote.as_deref().unwrap_or(""));
                let aliases: Vec<ImageAlias> = ctx.connect(&remote)?.get_json("/1.0/images/aliases?recursion=1").await?;
                let rows: Vec<Vec<String>> = aliases
                    .iter()
                    .map(|a| {
                        vec![a.name.clone(), a.target.chars().take(12).collect(), a.kind.to_uppercase(), a.description.clone()]
                    })
                    .collect();
                print!("{}", format::render(l.format, &["ALIAS", "FINGERPRINT", "TYPE", "DESCRIPTION"], &rows, &aliases));
                Ok(())
            }
        },
    }
}
