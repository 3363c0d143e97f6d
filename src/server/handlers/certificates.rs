//! `/1.0/certificates` and `/1.0/certificates/<fingerprint>`.

use http::Method;

use super::{HResult, list_response};
use crate::api::http::request::Request;
use crate::api::http::response::{Response, etag_of};
use crate::api::{CertificatePut, CertificatesPost};
use crate::daemon::Daemon;
use crate::daemon::certificates::CertificateAdded;

pub async fn collection(daemon: &Daemon, req: &Request) -> HResult {
    match req.method {
        Method::GET => {
            let certs = daemon.certificates().await?;
            Ok(list_response(req, certs, |c| format!("/1.0/certificates/{}", c.fingerprint)))
        }
        _ => {
            let body: CertificatesPost = req.json()?;
            let conn = req.peer.cert_der.as_deref();
            if !req.trusted
                && let Some(token) = crate::api::ClusterJoinToken::decode(&body.password)
            {
                if !crate::cluster::tokens::consume(daemon, &token).await {
                    return Err(Response::error(403, "No matching cluster join operation found"));
                }
                let fp = daemon.add_joining_member_certificate(body, conn).await?;
                return Ok(Response::created(format!("/1.0/certificates/{fp}")));
            }
            if !req.trusted {
                let fp = daemon.add_certificate_untrusted(body, conn).await?;
                return Ok(Response::created(format!("/1.0/certificates/{fp}")));
            }
            match daemon.add_certificate_trusted(body, conn).await? {
                CertificateAdded::Certificate(fp) => Ok(Response::created(format!("/1.0/certificates/{fp}"))),
                CertificateAdded::Token(op) => Ok(Response::Async(op)),
            }
        }
    }
}

pub async fn item(daemon: &Daemon, req: &Request, fingerprint: &str) -> HResult {
    let cert = daemon.certificate(fingerprint).await?;
    let etag = etag_of(&(&cert.name, &cert.kind, cert.restricted, &cert.projects, &cert.certificate));
    match req.method {
        Method::GET => Ok(Response::sync_etag(cert, etag)),
        Method::DELETE => {
            daemon.delete_certificate(&cert.fingerprint, Some(req.requestor())).await?;
            Ok(Response::empty())
        }
        _ => {
            let body: CertificatePut = req.json()?;
            req.check_etag(&etag)?;
            daemon.update_certificate(&cert.fingerprint, body, req.method == Method::PATCH).await?;
            Ok(Response::empty())
        }
    }
}
