//! `lxc monitor`: stream events from `/1.0/events`, filtered by type on the client side.

use argh::FromArgs;
use futures_util::StreamExt;
use rxd::api::Event;

use super::Ctx;

#[derive(FromArgs)]
/// Monitor a server for events.
#[argh(subcommand, name = "monitor")]
pub struct Args {
    /// the target: [<remote>:]
    #[argh(positional)]
    remote: Option<String>,
    /// event type to show (repeatable: logging, operation, lifecycle)
    #[argh(option, long = "type")]
    kinds: Vec<String>,
    /// show events from all projects
    #[argh(switch)]
    all_projects: bool,
    /// human-readable output
    #[argh(switch)]
    pretty: bool,
    /// minimum log level (with --pretty)
    #[argh(option)]
    loglevel: Option<String>,
    /// format (yaml or json)
    #[argh(option, short = 'f', default = "String::from(\"yaml\")")]
    format: String,
}

fn level_rank(l: &str) -> u8 {
    match l {
        "trace" => 0,
        "debug" => 1,
        "info" => 2,
        "warning" | "warn" => 3,
        "error" => 4,
        _ => 2,
    }
}

fn pretty_line(ev: &Event) -> String {
    let md = &ev.metadata;
    let text = |k: &str| md.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let time = &ev.timestamp;
    match ev.kind.as_str() {
        "logging" => {
            let mut line = format!("time=\"{time}\" level={} msg=\"{}\"", text("level"), text("message"));
            if let Some(ctx) = md.get("context").and_then(|c| c.as_object()) {
                for (k, v) in ctx {
                    line.push_str(&format!(" {k}={}", rxd::api::config_value_to_string(v)));
                }
            }
            line
        }
        "lifecycle" => format!("time=\"{time}\" level=info msg=\"Action: {}, Source: {}\"", text("action"), text("source")),
        _ => format!(
            "time=\"{time}\" level=info msg=\"ID: {}, Class: {}, Description: {}\" Status={} StatusCode={}",
            text("id"),
            text("class"),
            text("description"),
            text("status"),
            md.get("status_code").and_then(|v| v.as_i64()).unwrap_or_default()
        ),
    }
}

/// Keys sorted alphabetically, as the Go client re-marshals them.
fn sorted(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            serde_json::Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<()> {
    let (remote, _) = ctx.remote_of(args.remote.as_deref().unwrap_or(""));
    let conn = ctx.connect(&remote)?;
    let path = if args.all_projects { "/1.0/events?all-projects=true" } else { "/1.0/events" };
    let mut ws = conn.websocket(path).await?;
    let min_level = args.loglevel.as_deref().map(level_rank).unwrap_or(0);
    while let Some(msg) = ws.next().await {
        let msg = msg.map_err(|e| anyhow::anyhow!("websocket: {e}"))?;
        let tokio_tungstenite::tungstenite::Message::Text(text) = msg else {
            continue;
        };
        let Ok(ev) = serde_json::from_str::<Event>(&text) else {
            continue;
        };
        if !args.kinds.is_empty() && !args.kinds.contains(&ev.kind) {
            continue;
        }
        if args.pretty {
            if ev.kind == "logging" && level_rank(ev.metadata.get("level").and_then(|l| l.as_str()).unwrap_or("info")) < min_level
            {
                continue;
            }
            println!("{}", pretty_line(&ev));
            continue;
        }
        let value = sorted(&serde_json::to_value(&ev)?);
        if args.format == "json" {
            println!("{}\n", serde_json::to_string(&value)?);
        } else {
            println!("{}", super::format::yaml(&value)?);
        }
    }
    Ok(())
}
