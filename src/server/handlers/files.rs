//! `GET|POST|DELETE /1.0/instances/<name>/files?path=…`: files inside an instance, resolved in
//! its root so that no symlink can lead outside it (see `instance::files`).

use std::sync::Arc;

use http::Method;

use super::HResult;
use crate::api::http::request::Request;
use crate::api::http::response::Response;
use crate::daemon::Daemon;
use crate::daemon::instances::driver_name;
use crate::instance::files::{Content, Root};
use crate::util::time;

fn mode_header(mode: u32) -> String {
    format!("{mode:04o}")
}

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

pub async fn handle(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    let project = req.project();
    let row = daemon.instance_row(&project, name).await?;
    let path = req.query("path").filter(|p| !p.is_empty()).ok_or_else(|| Response::error(400, "Missing path argument"))?;
    let rootfs = daemon.instance_dir(&row).await?.join("rootfs");
    let root: Root = daemon.driver.files(&driver_name(&project, name), &rootfs).map_err(crate::daemon::Error::from)?;
    match req.method {
        Method::GET => {
            let (entry, content) = root.read(path).map_err(crate::daemon::Error::from)?;
            let modified = time::go_string(entry.modified * 1_000_000_000);
            let mut headers = vec![
                ("X-LXD-uid", entry.uid.to_string()),
                ("X-LXD-gid", entry.gid.to_string()),
                ("X-LXD-mode", mode_header(entry.mode)),
                ("X-LXD-type", entry.kind.name().to_string()),
                ("X-LXD-modified", modified),
            ];
            match content {
                Content::Directory(names) => {
                    let mut r = Response::sync(names).into_reply();
                    for (k, v) in headers {
                        if let (Ok(k), Ok(v)) = (http::HeaderName::try_from(k), http::HeaderValue::try_from(v)) {
                            r.headers_mut().insert(k, v);
                        }
                    }
                    Ok(Response::Raw(Box::new(r)))
                }
                Content::Symlink(target) => {
                    Ok(Response::raw(200, "application/octet-stream", &headers, target.into_bytes().into()))
                }
                Content::File(f) => {
                    let data = crate::instance::files::read_all(f).map_err(crate::daemon::Error::from)?;
                    let base = path.rsplit('/').next().unwrap_or("file").to_string();
                    headers.push(("Content-Disposition", format!("inline;filename={base}")));
                    Ok(Response::raw(200, "application/octet-stream", &headers, data.into()))
                }
            }
        }
        Method::DELETE => {
            root.remove(path).map_err(crate::daemon::Error::from)?;
            Ok(Response::empty())
        }
        _ => {
            let uid = parse_num(req.header("x-lxd-uid")).unwrap_or(0).max(0) as u32;
            let gid = parse_num(req.header("x-lxd-gid")).unwrap_or(0).max(0) as u32;
            let mode = parse_num(req.header("x-lxd-mode")).filter(|m| *m >= 0).map(|m| m as u32);
            let kind = req.header("x-lxd-type").unwrap_or("file");
            let write = req.header("x-lxd-write").unwrap_or("overwrite");
            match kind {
                "directory" => root.mkdir(path, mode, uid, gid),
                "symlink" => root.symlink(path, &String::from_utf8_lossy(&req.body), uid, gid),
                "file" => match write {
                    "overwrite" | "" => root.write_file(path, &req.body, false, mode, uid, gid),
                    "append" => root.write_file(path, &req.body, true, mode, uid, gid),
                    other => return Err(Response::error(400, format!("Bad file write mode: {other}"))),
                },
                other => return Err(Response::error(400, format!("Bad file type: {other}"))),
            }
            .map_err(crate::daemon::Error::from)?;
            Ok(Response::empty())
        }
    }
}
