//! Handler results and their rendering into LXD envelopes with the right status and headers.

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::api::Envelope;
use crate::daemon::Error;
use crate::daemon::operations::Op;

pub enum Response {
    Sync { code: u16, metadata: serde_json::Value, etag: Option<String>, location: Option<String> },
    Async(Arc<Op>),
    Error { code: u16, message: String },
    Raw(Box<warp::reply::Response>),
}

/// ETag of an object: SHA-256 of its JSON.
pub fn etag_of<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    format!("{:x}", Sha256::digest(json))
}

impl Response {
    pub fn sync<T: serde::Serialize>(metadata: T) -> Response {
        Response::Sync { code: 200, metadata: serde_json::to_value(metadata).unwrap_or_default(), etag: None, location: None }
    }
    pub fn empty() -> Response {
        Response::sync(serde_json::json!({}))
    }
    pub fn sync_etag<T: serde::Serialize>(metadata: T, etag: String) -> Response {
        Response::Sync {
            code: 200,
            metadata: serde_json::to_value(metadata).unwrap_or_default(),
            etag: Some(etag),
            location: None,
        }
    }
    pub fn created(location: String) -> Response {
        Response::Sync { code: 201, metadata: serde_json::Value::Null, etag: None, location: Some(location) }
    }
    /// A sync answer whose metadata is already JSON (large listings assembled from parts
    /// without going through `serde_json::Value`).
    pub fn sync_json(metadata: &serde_json::value::RawValue) -> Response {
        #[derive(serde::Serialize)]
        struct Sync<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            status: &'static str,
            status_code: u16,
            operation: &'static str,
            error_code: u16,
            error: &'static str,
            metadata: &'a serde_json::value::RawValue,
        }
        let envelope =
            Sync { kind: "sync", status: "Success", status_code: 200, operation: "", error_code: 0, error: "", metadata };
        match serde_json::to_vec(&envelope) {
            Ok(body) => Response::raw(200, "application/json", &[], body.into()),
            Err(e) => Response::error(500, e.to_string()),
        }
    }

    /// Another member's answer, passed on unchanged.
    pub fn forwarded(status: u16, headers: &http::HeaderMap, body: bytes::Bytes) -> Response {
        let mut resp = warp::reply::Response::new(body.into());
        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        for (name, v) in headers {
            let n = name.as_str();
            if matches!(n, "content-type" | "etag" | "location" | "content-disposition") || n.starts_with("x-lxd-") {
                resp.headers_mut().insert(name.clone(), v.clone());
            }
        }
        Response::Raw(Box::new(resp))
    }

    /// A non-JSON body (file content, image, log) with extra headers.
    pub fn raw(status: u16, content_type: &str, headers: &[(&str, String)], body: Bytes) -> Response {
        let mut resp = warp::reply::Response::new(body.into());
        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
        let h = resp.headers_mut();
        if let Ok(v) = http::HeaderValue::try_from(content_type) {
            h.insert(http::header::CONTENT_TYPE, v);
        }
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (http::HeaderName::try_from(*k), http::HeaderValue::try_from(v.as_str())) {
                h.insert(k, v);
            }
        }
        Response::Raw(Box::new(resp))
    }

    pub fn error(code: u16, message: impl Into<String>) -> Response {
        Response::Error { code, message: message.into() }
    }

    pub fn into_reply(self) -> warp::reply::Response {
        let (code, envelope, headers): (u16, Envelope, Vec<(&str, String)>) = match self {
            Response::Raw(r) => return *r,
            Response::Sync { code, metadata, etag, location } => {
                let mut h = Vec::new();
                if let Some(e) = etag {
                    h.push(("ETag", format!("\"{e}\"")));
                }
                if let Some(l) = location {
                    h.push(("Location", l));
                }
                (code, Envelope::sync(metadata), h)
            }
            Response::Async(op) => {
                let url = op.url();
                (
                    202,
                    Envelope::async_op(url.clone(), serde_json::to_value(op.render()).unwrap_or_default()),
                    vec![("Location", url)],
                )
            }
            Response::Error { code, message } => {
                (code, Envelope::error(code, message), vec![("X-Content-Type-Options", "nosniff".into())])
            }
        };
        let body = serde_json::to_vec(&envelope).unwrap_or_default();
        let mut resp = warp::reply::Response::new(Bytes::from(body).into());
        *resp.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let h = resp.headers_mut();
        h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        for (k, v) in headers {
            if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(k), http::HeaderValue::try_from(v)) {
                h.insert(name, value);
            }
        }
        resp
    }
}

impl From<Error> for Response {
    fn from(e: Error) -> Self {
        Response::error(e.status(), e.to_string())
    }
}

impl From<crate::store::StoreError> for Response {
    fn from(e: crate::store::StoreError) -> Self {
        Error::from(e).into()
    }
}
