//! What an action answers, and its rendering into LXD envelopes with the right status and
//! headers.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;

use crate::api::Envelope;
use crate::operations::Op;

/// An HTTP reply as hyper sends it.
pub type Reply = http::Response<Full<Bytes>>;

pub enum Response {
    Sync { code: u16, metadata: serde_json::Value, etag: Option<String>, location: Option<String> },
    Async(Arc<Op>),
    Error(ApiError),
    Raw(Box<Reply>),
}

/// An error answer: the status and the sentence the user reads.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }
}

impl From<crate::services::Error> for ApiError {
    fn from(e: crate::services::Error) -> Self {
        ApiError::new(e.status(), e.to_string())
    }
}

impl From<crate::cluster::Error> for ApiError {
    fn from(e: crate::cluster::Error) -> Self {
        ApiError::new(e.status(), e.to_string())
    }
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Self {
        Response::Error(e)
    }
}

/// What an action returns: its answer, or an error answer.
pub type Answer = Result<Response, ApiError>;

fn reply(status: u16, content_type: &str, headers: &[(&str, String)], body: Bytes) -> Reply {
    let mut resp = http::Response::new(Full::new(body));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    if let Ok(v) = http::HeaderValue::try_from(content_type) {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (http::HeaderName::try_from(*k), http::HeaderValue::try_from(v.as_str())) {
            h.insert(k, v);
        }
    }
    resp
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

    /// A list of URLs or, with `?recursion=1`, of objects.
    pub fn list<T: serde::Serialize>(recursion: i64, items: Vec<T>, url: impl Fn(&T) -> String) -> Response {
        if recursion > 0 { Response::sync(items) } else { Response::sync(items.iter().map(url).collect::<Vec<_>>()) }
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
            Err(e) => Response::Error(ApiError::new(500, format!("rendering the answer: {e}"))),
        }
    }

    /// Another member's answer, passed on unchanged.
    pub fn forwarded(f: crate::cluster::Forwarded) -> Response {
        let mut resp = http::Response::new(Full::new(f.body));
        *resp.status_mut() = http::StatusCode::from_u16(f.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        for (name, v) in &f.headers {
            let n = name.as_str();
            if matches!(n, "content-type" | "etag" | "location" | "content-disposition") || n.starts_with("x-lxd-") {
                resp.headers_mut().insert(name.clone(), v.clone());
            }
        }
        Response::Raw(Box::new(resp))
    }

    /// A non-JSON body (file content, image, log) with extra headers.
    pub fn raw(status: u16, content_type: &str, headers: &[(&str, String)], body: Bytes) -> Response {
        Response::Raw(Box::new(reply(status, content_type, headers, body)))
    }

    pub fn error(code: u16, message: impl Into<String>) -> Response {
        Response::Error(ApiError::new(code, message))
    }

    pub fn into_reply(self) -> Reply {
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
            Response::Error(ApiError { code, message }) => {
                (code, Envelope::error(code, message), vec![("X-Content-Type-Options", "nosniff".into())])
            }
        };
        let body = serde_json::to_vec(&envelope).unwrap_or_default();
        reply(code, "application/json", &headers, body.into())
    }
}
