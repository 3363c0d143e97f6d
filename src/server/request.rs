//! One API request as the handlers see it: method, decoded path segments, query parameters,
//! headers, body and who is asking.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;

use super::response::Response;
use crate::api::EventRequestor;

/// How the caller reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Tls,
}

/// Connection facts inserted into every request by the accept loop.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    pub transport: Transport,
    pub remote: String,
    pub uid: Option<u32>,
    /// DER of the TLS client certificate, if one was presented.
    pub cert_der: Option<Vec<u8>>,
    pub fingerprint: Option<String>,
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
    pub trusted: bool,
    /// The caller is another member (its server certificate is in the trust store).
    pub cluster: bool,
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

    pub fn recursion(&self) -> i64 {
        self.query("recursion").and_then(|r| r.parse().ok()).unwrap_or(0)
    }

    /// The project a request is scoped to (`?project=`, default `default`).
    pub fn project(&self) -> String {
        match self.query("project") {
            Some(p) if !p.is_empty() => p.to_string(),
            _ => "default".into(),
        }
    }

    /// Path and query as received, for forwarding to another member.
    pub fn uri(&self) -> String {
        if self.raw_query.is_empty() { self.path.clone() } else { format!("{}?{}", self.path, self.raw_query) }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Decodes the JSON body; malformed JSON is a 400 that changes nothing.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Response> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(Response::error(400, "unexpected EOF"));
        }
        serde_json::from_slice(&self.body).map_err(|e| Response::error(400, e.to_string()))
    }

    /// Checks `If-Match` against the current ETag (absent header: no check).
    pub fn check_etag(&self, current: &str) -> Result<(), Response> {
        match self.header("if-match") {
            Some(given) => {
                let given = given.trim().trim_matches('"');
                if given.is_empty() || given == current {
                    Ok(())
                } else {
                    Err(Response::error(412, format!("ETag doesn't match: {current} vs {given}")))
                }
            }
            None => Ok(()),
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
