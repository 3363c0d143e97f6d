//! `GET|POST|DELETE /1.0/instances/<name>/files?path=…` (files inside an instance), the
//! console log and the instance's log files.

use std::sync::Arc;

use crate::server::request::Request;
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;
use crate::services::instances::files::{Pulled, Push as PushKind, PushRequest};
use crate::util::time;

fn parse_num(v: Option<&str>) -> Option<i64> {
    let v = v?.trim();
    if v.is_empty() {
        return None;
    }
    if let Some(oct) = v.strip_prefix('0').filter(|o| !o.is_empty()) {
        return i64::from_str_radix(oct, 8).ok();
    }
    v.parse().ok()
}

fn path_of(req: &Request) -> Result<String, ApiError> {
    req.query_given("path").map(str::to_string).ok_or_else(|| ApiError::bad_request("Missing path argument"))
}

pub struct Pull {
    project: String,
    name: String,
    path: String,
}

impl Action for Pull {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Pull { project: req.project(), name: p.at(0).to_string(), path: path_of(req)? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (entry, pulled) = member.instances.pull(&self.project, &self.name, &self.path).await?;
        let mut headers = vec![
            ("X-LXD-uid", entry.uid.to_string()),
            ("X-LXD-gid", entry.gid.to_string()),
            ("X-LXD-mode", format!("{:04o}", entry.mode)),
            ("X-LXD-type", entry.kind.name().to_string()),
            ("X-LXD-modified", time::go_string(entry.modified * 1_000_000_000)),
        ];
        Ok(match pulled {
            Pulled::Directory(names) => {
                let mut r = Response::sync(names).into_reply();
                for (k, v) in headers {
                    if let (Ok(k), Ok(v)) = (http::HeaderName::try_from(k), http::HeaderValue::try_from(v)) {
                        r.headers_mut().insert(k, v);
                    }
                }
                Response::Raw(Box::new(r))
            }
            Pulled::Symlink(target) => Response::raw(200, "application/octet-stream", &headers, target.into_bytes().into()),
            Pulled::File(data) => {
                let base = self.path.rsplit('/').next().unwrap_or("file").to_string();
                headers.push(("Content-Disposition", format!("inline;filename={base}")));
                Response::raw(200, "application/octet-stream", &headers, data.into())
            }
        })
    }
}

pub struct Push {
    project: String,
    name: String,
    request: PushRequest,
}

impl Action for Push {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        let path = path_of(req)?;
        let uid = parse_num(req.header("x-lxd-uid")).unwrap_or(0).max(0) as u32;
        let gid = parse_num(req.header("x-lxd-gid")).unwrap_or(0).max(0) as u32;
        let mode = parse_num(req.header("x-lxd-mode")).filter(|m| *m >= 0).map(|m| m as u32);
        let what = match req.header("x-lxd-type").unwrap_or("file") {
            "directory" => PushKind::Directory,
            "symlink" => PushKind::Symlink { target: String::from_utf8_lossy(&req.body).into_owned() },
            "file" => match req.header("x-lxd-write").unwrap_or("overwrite") {
                "overwrite" | "" => PushKind::File { data: req.body.clone(), append: false },
                "append" => PushKind::File { data: req.body.clone(), append: true },
                other => return Err(ApiError::bad_request(format!("Bad file write mode: {other}"))),
            },
            other => return Err(ApiError::bad_request(format!("Bad file type: {other}"))),
        };
        Ok(Push { project: req.project(), name: p.at(0).to_string(), request: PushRequest { path, what, mode, uid, gid } })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.instances.push(&self.project, &self.name, self.request).await?;
        Ok(Response::empty())
    }
}

pub struct Remove {
    project: String,
    name: String,
    path: String,
}

impl Action for Remove {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Remove { project: req.project(), name: p.at(0).to_string(), path: path_of(req)? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.instances.remove_file(&self.project, &self.name, &self.path).await?;
        Ok(Response::empty())
    }
}

/// The instance a console or log request is about.
pub struct Target {
    project: String,
    name: String,
}

fn target(req: &Request, p: &Params) -> Target {
    Target { project: req.project(), name: p.at(0).to_string() }
}

pub struct Console(Target);

impl Action for Console {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Console(target(req, p)))
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let data = member.instances.console(&self.0.project, &self.0.name).await?;
        Ok(Response::raw(200, "application/octet-stream", &[], data.into()))
    }
}

pub struct ClearConsole(Target);

impl Action for ClearConsole {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(ClearConsole(target(req, p)))
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.instances.clear_console(&self.0.project, &self.0.name).await?;
        Ok(Response::empty())
    }
}

pub struct Logs(Target);

impl Action for Logs {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Logs(target(req, p)))
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let names = member.instances.logs(&self.0.project, &self.0.name).await?;
        let name = &self.0.name;
        Ok(Response::sync(names.iter().map(|n| format!("/1.0/instances/{name}/logs/{n}")).collect::<Vec<_>>()))
    }
}

pub struct Log {
    instance: Target,
    file: String,
}

impl Action for Log {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Log { instance: target(req, p), file: p.at(1).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let data = member.instances.log(&self.instance.project, &self.instance.name, &self.file).await?;
        Ok(Response::raw(200, "application/octet-stream", &[], data.into()))
    }
}

pub struct DeleteLog {
    instance: Target,
    file: String,
}

impl Action for DeleteLog {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(DeleteLog { instance: target(req, p), file: p.at(1).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.instances.delete_log(&self.instance.project, &self.instance.name, &self.file).await?;
        Ok(Response::empty())
    }
}
