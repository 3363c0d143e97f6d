//! One API request as the actions see it: method, decoded path, query parameters, headers,
//! body, who is asking, and (for websocket routes) the connection upgrade.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;

use super::response::ApiError;
use crate::api::EventRequestor;

/// How the caller reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Tls,
}

/// Connection facts stamped on every request by the accept loop.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    pub transport: Transport,
    pub remote: String,
    pub uid: Option<u32>,
    /// DER of the TLS client certificate, if one was presented.
    pub cert_der: Option<Vec<u8>>,
    pub fingerprint: Option<String>,
}

/// Who the caller is, as authentication found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No trusted certificate.
    Untrusted,
    /// The unix socket, or a trusted client certificate.
    Client,
    /// Another cluster member (its server certificate is trusted).
    Member,
}

pub struct Request {
    pub method: Method,
    pub path: String,
    pub segments: Vec<String>,
    pub query: HashMap<String, String>,
    /// The query string as received (for forwarding).
    pub raw_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: PeerInfo,
    pub caller: Caller,
    /// The pending upgrade of the connection, for websocket routes.
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

/// Percent-decodes one path segment or query component (`+` stays as is in paths).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(raw: &str) -> HashMap<String, String> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

impl Request {
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// A query parameter that is present and not empty.
    pub fn query_given(&self, key: &str) -> Option<&str> {
        self.query(key).filter(|v| !v.is_empty())
    }

    pub fn recursion(&self) -> i64 {
        self.query("recursion").and_then(|r| r.parse().ok()).unwrap_or(0)
    }

    /// The project a request is scoped to (`?project=`, default `default`).
    pub fn project(&self) -> String {
        self.query_given("project").unwrap_or("default").to_string()
    }

    pub fn all_projects(&self) -> bool {
        self.query("all-projects") == Some("true")
    }

    /// Path and query as received, for forwarding to another member.
    pub fn uri(&self) -> String {
        if self.raw_query.is_empty() { self.path.clone() } else { format!("{}?{}", self.path, self.raw_query) }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The ETag an `If-Match` names (quotes removed; absent or empty: none).
    pub fn if_match(&self) -> Option<String> {
        let given = self.header("if-match")?.trim().trim_matches('"');
        (!given.is_empty()).then(|| given.to_string())
    }

    /// Whether another member sent this.
    pub fn from_member(&self) -> bool {
        self.caller == Caller::Member
    }

    /// Decodes the JSON body; malformed JSON is a 400 that changes nothing.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("unexpected EOF"));
        }
        serde_json::from_slice(&self.body).map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// The JSON body as a map of the fields sent (to tell absent fields from defaults).
    pub fn fields(&self) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        match self.json::<serde_json::Value>()? {
            serde_json::Value::Object(map) => Ok(map),
            _ => Err(ApiError::bad_request("The request body must be a JSON object")),
        }
    }

    pub fn requestor(&self) -> EventRequestor {
        let (username, protocol, address) = match self.peer.transport {
            Transport::Unix => (
                self.peer
                    .uid
                    .and_then(|u| nix::unistd::User::from_uid(u.into()).ok().flatten())
                    .map(|u| u.name)
                    .unwrap_or_default(),
                "unix",
                "@".to_string(),
            ),
            Transport::Tls => (self.peer.fingerprint.clone().unwrap_or_default(), "tls", self.peer.remote.clone()),
        };
        EventRequestor { username, protocol: protocol.into(), address }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_paths_and_queries() {
        assert_eq!(percent_decode("root%2Fhello.txt", false), "root/hello.txt");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("100%", false), "100%");
        let q = parse_query("recursion=1&project=p%201&flag");
        assert_eq!(q.get("recursion").map(String::as_str), Some("1"));
        assert_eq!(q.get("project").map(String::as_str), Some("p 1"));
        assert_eq!(q.get("flag").map(String::as_str), Some(""));
    }
}
