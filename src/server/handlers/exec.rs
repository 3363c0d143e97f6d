//! `POST /1.0/instances/<name>/exec`: a websocket operation (the streams are served by
//! `api::http::exec`), or with `record-output` a task whose output goes to log files.

use std::sync::Arc;

use super::HResult;
use crate::api::ExecPost;
use crate::api::http::exec;
use crate::api::http::request::Request;
use crate::api::http::response::Response;
use crate::daemon::Daemon;
use crate::daemon::instances::{driver_name, instance_resources};
use crate::daemon::operations::{NewOp, OpClass};
use crate::instance::exec::ExecRequest;

pub async fn post(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    let project = req.project();
    let body: ExecPost = req.json()?;
    daemon.instance_row(&project, name).await?;
    let key = driver_name(&project, name);
    if daemon.driver.init_pid(&key).is_none() {
        return Err(Response::error(400, "Instance is not running"));
    }
    if body.command.is_empty() {
        return Err(Response::error(400, "No command given"));
    }
    let mut env = std::collections::BTreeMap::from([
        ("PATH".to_string(), crate::instance::monitor::DEFAULT_PATH.to_string()),
        ("LANG".to_string(), "C.UTF-8".to_string()),
        ("HOME".to_string(), if body.user == 0 { "/root".to_string() } else { "/".to_string() }),
        ("USER".to_string(), if body.user == 0 { "root".to_string() } else { String::new() }),
    ]);
    env.extend(body.environment.clone());
    let request = ExecRequest {
        command: body.command.clone(),
        environment: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        cwd: body.cwd.clone(),
        uid: body.user,
        gid: body.group,
        interactive: body.interactive,
        width: body.width.clamp(0, u16::MAX as i64) as u16,
        height: body.height.clamp(0, u16::MAX as i64) as u16,
    };
    daemon.events.lifecycle(&project, "instance-exec", crate::daemon::instances::instance_url(&project, name), None);
    if body.wait_for_websocket {
        let streams = exec::register(body.interactive);
        let metadata = serde_json::json!({
            "command": body.command,
            "environment": env,
            "fds": serde_json::Value::Object(streams.fds.clone()),
            "interactive": body.interactive,
        });
        let op = daemon.operations.start(NewOp {
            class: OpClass::Websocket,
            description: "Executing command".into(),
            project: project.clone(),
            resources: instance_resources(&project, name),
            metadata: metadata.clone(),
            may_cancel: false,
        });
        let (d, id) = (daemon.clone(), op.id.clone());
        tokio::spawn(async move {
            match exec::run(d.clone(), key, streams, request).await {
                Ok(code) => {
                    let mut md = metadata;
                    md["return"] = code.into();
                    d.operations.finish(&id, Ok(Some(md)));
                }
                Err(e) => d.operations.finish(&id, Err(e)),
            }
        });
        return Ok(Response::Async(op));
    }
    // Without websockets: output to log files (record-output) or discarded.
    let d = daemon.clone();
    let (project_s, name_s) = (project.clone(), name.to_string());
    let record = body.record_output;
    let op_id = Arc::new(std::sync::OnceLock::<String>::new());
    let op_id2 = op_id.clone();
    let op =
        daemon.operations.spawn_task(crate::daemon::instances::instance_task(&project, name, "Executing command"), async move {
            // The operation id names the log files; wait for it to be known.
            let id = loop {
                if let Some(id) = op_id2.get() {
                    break id.clone();
                }
                tokio::task::yield_now().await;
            };
            let logs = d.driver.log_dir(&key);
            let _ = std::fs::create_dir_all(&logs);
            let (out, err) = if record {
                let o = std::fs::File::create(logs.join(format!("exec_{id}.stdout"))).map_err(|e| e.to_string())?;
                let e = std::fs::File::create(logs.join(format!("exec_{id}.stderr"))).map_err(|e| e.to_string())?;
                (std::process::Stdio::from(o), std::process::Stdio::from(e))
            } else {
                (std::process::Stdio::null(), std::process::Stdio::null())
            };
            let (mut child, _) =
                d.driver.exec(&key, &request, [std::process::Stdio::null(), out, err]).await.map_err(|e| e.to_string())?;
            let code = child.wait().await.map_err(|e| e.to_string())?.code().unwrap_or(-1);
            let mut md = serde_json::json!({"return": code});
            if record {
                md["output"] = serde_json::json!({
                    "1": format!("/1.0/instances/{name_s}/logs/exec_{id}.stdout"),
                    "2": format!("/1.0/instances/{name_s}/logs/exec_{id}.stderr"),
                });
            }
            let _ = project_s;
            Ok(Some(md))
        });
    let _ = op_id.set(op.id.clone());
    Ok(Response::Async(op))
}

/// `GET /1.0/instances/<name>/logs[/<file>]`: the instance's log files.
pub async fn logs(daemon: &Arc<Daemon>, req: &Request, name: &str, file: Option<&str>) -> HResult {
    let project = req.project();
    daemon.instance_row(&project, name).await?;
    let dir = daemon.driver.log_dir(&driver_name(&project, name));
    match file {
        None => {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect())
                .unwrap_or_default();
            names.sort();
            Ok(Response::sync(names.iter().map(|n| format!("/1.0/instances/{name}/logs/{n}")).collect::<Vec<_>>()))
        }
        Some(f) if f.contains('/') || f.starts_with('.') => Err(Response::error(400, "Invalid log file name")),
        Some(f) => match req.method {
            http::Method::DELETE => {
                std::fs::remove_file(dir.join(f)).map_err(|_| Response::error(404, "Log file not found"))?;
                Ok(Response::empty())
            }
            _ => {
                // `lxc info --show-log` asks for lxc.log: the console log is what we keep.
                let file = if f == "lxc.log" && !dir.join(f).exists() { "console.log" } else { f };
                let data = std::fs::read(dir.join(file)).map_err(|_| Response::error(404, "Log file not found"))?;
                Ok(Response::raw(200, "application/octet-stream", &[], data.into()))
            }
        },
    }
}
