//! `lxc query`: send a raw request and print the metadata (or, with --raw, the envelope).

use argh::FromArgs;

use super::Ctx;

#[derive(FromArgs)]
/// Send a raw query to the server.
#[argh(subcommand, name = "query")]
pub struct Args {
    /// the target: [<remote>:]<API path>
    #[argh(positional)]
    path: String,
    /// action (GET, POST, PUT, PATCH, DELETE)
    #[argh(option, short = 'X', default = "String::from(\"GET\")")]
    request: String,
    /// input data (JSON)
    #[argh(option, short = 'd')]
    data: Option<String>,
    /// wait for the operation to complete
    #[argh(switch)]
    wait: bool,
    /// print the raw response
    #[argh(switch)]
    raw: bool,
}

/// Go's json.MarshalIndent with a tab: what LXD's client prints.
fn pretty(v: &serde_json::Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    if ctx.project.is_some() {
        anyhow::bail!("--project cannot be used with the query command");
    }
    let (remote, path) = ctx.remote_of(&args.path);
    let conn = ctx.connect(&remote)?;
    let body: serde_json::Value = match &args.data {
        Some(d) => serde_json::from_str(d).map_err(|e| anyhow::anyhow!("Invalid JSON data: {e}"))?,
        None => serde_json::Value::String(String::new()),
    };
    let reply = conn.request(&args.request.to_uppercase(), path, Some(&body), None).await?;
    let envelope = reply.envelope;
    if args.wait && envelope.kind == "async" {
        let op = envelope.operation.clone();
        let (op_path, query) = op.split_once('?').unwrap_or((&op, ""));
        let waited = conn.get(&format!("{op_path}/wait?{query}")).await?;
        let md = waited.envelope.metadata;
        if let Some(err) = md.get("err").and_then(|e| e.as_str()).filter(|e| !e.is_empty()) {
            anyhow::bail!("{err}");
        }
        println!("{}\n", pretty(&md));
        return Ok(());
    }
    if args.raw {
        println!("{}", pretty(&serde_json::to_value(&envelope)?));
        return Ok(());
    }
    let empty = envelope.metadata.is_null() || envelope.metadata.as_object().is_some_and(|o| o.is_empty());
    if !empty {
        println!("{}\n", pretty(&envelope.metadata));
    }
    Ok(())
}
