//! `/1.0/certificates` and `/1.0/certificates/<fingerprint>`.

use std::sync::Arc;

use http::Method;

use crate::api::{CertificatePut, EventRequestor};
use crate::server::request::{Caller, Request};
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;
use crate::services::certificates::{AddRequest, CertificateAdded};

fn url(fp: &str) -> String {
    format!("/1.0/certificates/{fp}")
}

pub struct List {
    recursion: i64,
}

impl Action for List {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(List { recursion: req.recursion() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let certs = member.certificates.list().await?;
        Ok(Response::list(self.recursion, certs, |c| url(&c.fingerprint)))
    }
}

pub struct Add {
    request: AddRequest,
}

impl Action for Add {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Add {
            request: AddRequest {
                body: req.json()?,
                connection_cert: req.peer.cert_der.clone(),
                trusted: req.caller != Caller::Untrusted,
            },
        })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        match member.certificates.add(self.request).await? {
            CertificateAdded::Certificate(fp) => Ok(Response::created(url(&fp))),
            CertificateAdded::Token(op) => Ok(Response::Async(op)),
        }
    }
}

pub struct Get {
    fingerprint: String,
}

impl Action for Get {
    fn parse(_: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Get { fingerprint: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (cert, etag) = member.certificates.get(&self.fingerprint).await?;
        Ok(Response::sync_etag(cert, etag))
    }
}

pub struct Update {
    fingerprint: String,
    put: CertificatePut,
    patch: bool,
    if_match: Option<String>,
}

impl Action for Update {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Update {
            fingerprint: p.at(0).to_string(),
            put: req.json()?,
            patch: req.method == Method::PATCH,
            if_match: req.if_match(),
        })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.certificates.update(&self.fingerprint, self.put, self.patch, self.if_match.as_deref()).await?;
        Ok(Response::empty())
    }
}

pub struct Delete {
    fingerprint: String,
    requestor: EventRequestor,
}

impl Action for Delete {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Delete { fingerprint: p.at(0).to_string(), requestor: req.requestor() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.certificates.delete(&self.fingerprint, Some(self.requestor)).await?;
        Ok(Response::empty())
    }
}
