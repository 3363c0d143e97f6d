//! The trust store as an API resource: listing, adding (by a trusted client, with the trust
//! password, or with a single-use token), editing and removing certificates.

use std::sync::Arc;

use base64::Engine;

use super::cluster::tokens::JoinTokens;
use super::server_config::ServerConfig;
use super::trust::{self, Trust};
use super::{Error, Result};
use crate::api::{Certificate, CertificateAddToken, CertificatePut, CertificatesPost, ClusterJoinToken, EventRequestor, etag_of};
use crate::config;
use crate::events::EventHub;
use crate::operations::{NewOp, Op, OpClass, Operations};
use crate::store::Batch;
use crate::store::global::GlobalDb;
use crate::store::global::certificates::{self as store, TYPE_SERVER};
use crate::tls;
use crate::util::secret::random_hex;
use crate::util::time;

fn to_api(c: store::Certificate) -> Certificate {
    Certificate {
        name: c.name,
        kind: store::type_name(c.kind).into(),
        restricted: c.restricted,
        projects: c.projects,
        certificate: c.certificate,
        fingerprint: c.fingerprint,
    }
}

/// The ETag of a certificate: its writable part.
fn etag(c: &Certificate) -> String {
    etag_of(&(&c.name, &c.kind, c.restricted, &c.projects, &c.certificate))
}

fn kind_of(name: &str) -> Result<i64> {
    store::type_code(name).ok_or_else(|| Error::BadRequest(format!("Unknown request type {name}")))
}

/// The PEM of the certificate a request names: its `certificate` field (base64 DER or PEM),
/// else the TLS client certificate of the connection.
fn requested_pem(req: &CertificatesPost, connection_cert: Option<&[u8]>) -> Result<String> {
    if !req.certificate.is_empty() {
        if req.certificate.contains("BEGIN CERTIFICATE") {
            return Ok(req.certificate.clone());
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(req.certificate.trim())
            .map_err(|e| Error::BadRequest(format!("invalid certificate material: {e}")))?;
        return Ok(tls::der_to_pem(&der));
    }
    match connection_cert {
        Some(der) => Ok(tls::der_to_pem(der)),
        None => Err(Error::BadRequest("Can't use TLS data on non-TLS link".into())),
    }
}

/// What a trusted `POST /1.0/certificates` produced.
pub enum CertificateAdded {
    Certificate(String),
    Token(Arc<Op>),
}

/// Who asks to add a certificate, and how.
pub struct AddRequest {
    pub body: CertificatesPost,
    /// The DER of the TLS client certificate of the connection, if one was presented.
    pub connection_cert: Option<Vec<u8>>,
    pub trusted: bool,
}

pub struct Certificates {
    global: GlobalDb,
    trust: Arc<Trust>,
    events: Arc<EventHub>,
    operations: Arc<Operations>,
    config: Arc<ServerConfig>,
    identity: Arc<super::identity::Identity>,
    tokens: Arc<JoinTokens>,
}

impl Certificates {
    pub fn new(
        global: GlobalDb,
        trust: Arc<Trust>,
        events: Arc<EventHub>,
        operations: Arc<Operations>,
        config: Arc<ServerConfig>,
        identity: Arc<super::identity::Identity>,
        tokens: Arc<JoinTokens>,
    ) -> Certificates {
        Certificates { global, trust, events, operations, config, identity, tokens }
    }

    pub async fn list(&self) -> Result<Vec<Certificate>> {
        Ok(store::list(&self.global).await?.into_iter().map(to_api).collect())
    }

    /// A certificate (by fingerprint or unique prefix) with its ETag.
    pub async fn get(&self, fingerprint: &str) -> Result<(Certificate, String)> {
        let c = to_api(store::get(&self.global, fingerprint).await?.0);
        let etag = etag(&c);
        Ok((c, etag))
    }

    async fn insert(&self, pem: String, name: String, kind: i64, restricted: bool, projects: Vec<String>) -> Result<String> {
        let der = tls::cert_der(&pem).map_err(|e| Error::BadRequest(format!("Invalid certificate material: {e}")))?;
        let fingerprint = tls::fingerprint_der(der.as_ref());
        let name = if name.is_empty() { tls::common_name(der.as_ref()).unwrap_or_default() } else { name };
        let mut b = Batch::new();
        store::insert(
            &mut b,
            &store::Certificate { id: 0, fingerprint: fingerprint.clone(), kind, name, certificate: pem, restricted, projects },
        );
        self.global.apply(&b).await?;
        self.trust.refresh().await?;
        self.events.lifecycle("default", "certificate-created", format!("/1.0/certificates/{fingerprint}"), None);
        Ok(fingerprint)
    }

    /// `POST /1.0/certificates` from a trusted client: adds a certificate directly, or (with
    /// `token: true`) issues a single-use token for a future client. From an untrusted client:
    /// the password is a certificate-add token or the trust password, and the certificate
    /// trusted is the connection's.
    pub async fn add(&self, req: AddRequest) -> Result<CertificateAdded> {
        let conn = req.connection_cert.as_deref();
        if !req.trusted {
            // A joining member presents a cluster join token as its password.
            if let Some(token) = ClusterJoinToken::decode(&req.body.password) {
                if !self.tokens.consume(&token).await {
                    return Err(Error::Forbidden("No matching cluster join operation found".into()));
                }
                return self.add_joining_member(req.body, conn).await.map(CertificateAdded::Certificate);
            }
            return self.add_untrusted(req.body, conn).await.map(CertificateAdded::Certificate);
        }
        let kind = kind_of(&req.body.kind)?;
        if req.body.token {
            return self.issue_token(req.body).await.map(CertificateAdded::Token);
        }
        let pem = requested_pem(&req.body, conn)?;
        let body = req.body;
        let fp = self.insert(pem, body.name, kind, body.restricted, body.projects.unwrap_or_default()).await?;
        Ok(CertificateAdded::Certificate(fp))
    }

    async fn issue_token(&self, mut req: CertificatesPost) -> Result<Arc<Op>> {
        if req.name.is_empty() {
            return Err(Error::BadRequest("A client name must be provided".into()));
        }
        req.projects = Some(req.projects.unwrap_or_default());
        let stored = self.config.stored().await?;
        let addresses: Vec<String> = stored
            .member
            .get("core.https_address")
            .map(|a| config::parse_address(a, config::address::DEFAULT_PORT).map(|c| vec![c]).unwrap_or_default())
            .unwrap_or_default();
        if addresses.is_empty() {
            return Err(Error::BadRequest("Can't issue token when server isn't listening on network".into()));
        }
        let mut metadata = serde_json::json!({
            "addresses": addresses,
            "fingerprint": self.identity.fingerprint(),
            "request": req,
            "secret": random_hex(32),
        });
        let expiry = config::effective(&stored.cluster, "core.remote_token_expiry");
        let expires_at = config::parse_expiry(expiry).map(|secs| time::now_nanos() + secs * 1_000_000_000);
        if let (Some(at), Some(obj)) = (expires_at, metadata.as_object_mut()) {
            obj.insert("expiresAt".into(), time::rfc3339(at).into());
        }
        let op = self.operations.start(NewOp {
            class: OpClass::Token,
            description: "Executing operation".into(),
            project: "default".into(),
            resources: serde_json::Value::Null,
            metadata,
            may_cancel: true,
        });
        if let Some(at) = expires_at {
            let ops = self.operations.clone();
            let id = op.id.clone();
            let wait = u64::try_from((at - time::now_nanos()).max(0)).unwrap_or(0);
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_nanos(wait)).await;
                // Already used or revoked: nothing to expire.
                let _ = ops.cancel(&id);
            });
        }
        self.events.lifecycle("default", "certificate-token-created", format!("/1.0/operations/{}", op.id), None);
        Ok(op)
    }

    async fn add_untrusted(&self, req: CertificatesPost, connection_cert: Option<&[u8]>) -> Result<String> {
        let denied = || Error::Forbidden("not authorized".into());
        if req.password.is_empty() {
            return Err(denied());
        }
        if let Some(token) = CertificateAddToken::decode(&req.password) {
            let now = time::now_nanos();
            let md = self
                .operations
                .consume_token(&token.secret, |md| {
                    md.get("request").is_some()
                        && md.get("expiresAt").and_then(|v| v.as_str()).and_then(time::parse_rfc3339).is_none_or(|at| at > now)
                })
                .ok_or_else(denied)?;
            let stored: CertificatesPost =
                serde_json::from_value(md.get("request").cloned().unwrap_or_default()).unwrap_or_default();
            let pem = requested_pem(&CertificatesPost::default(), connection_cert)?;
            let kind = kind_of(&stored.kind)?;
            return self.insert(pem, stored.name, kind, stored.restricted, stored.projects.unwrap_or_default()).await;
        }
        let stored = self.config.stored().await?;
        let hash = stored.cluster.get("core.trust_password").ok_or_else(denied)?;
        if !trust::verify_password(hash, &req.password) {
            return Err(denied());
        }
        let kind = kind_of(&req.kind)?;
        let pem = requested_pem(&req, connection_cert)?;
        self.insert(pem, req.name, kind, req.restricted, req.projects.unwrap_or_default()).await
    }

    /// A joining member's certificate, admitted with a join token the cluster has consumed.
    async fn add_joining_member(&self, req: CertificatesPost, connection_cert: Option<&[u8]>) -> Result<String> {
        let pem = requested_pem(&req, connection_cert)?;
        self.insert(pem, req.name, TYPE_SERVER, false, Vec::new()).await
    }

    /// PUT (or, with `patch`, PATCH) of a certificate's name, type, restriction and projects.
    pub async fn update(&self, fingerprint: &str, put: CertificatePut, patch: bool, if_match: Option<&str>) -> Result<()> {
        if patch && if_match.is_none() {
            return super::merge_until_unchanged(|| self.update_once(fingerprint, put.clone(), patch, None)).await;
        }
        self.update_once(fingerprint, put, patch, if_match).await
    }

    async fn update_once(&self, fingerprint: &str, put: CertificatePut, patch: bool, if_match: Option<&str>) -> Result<()> {
        let (current, version) = store::get(&self.global, fingerprint).await?;
        let current_api = to_api(current.clone());
        if let Some(given) = if_match {
            let current_etag = etag(&current_api);
            if current_etag != given {
                return Err(Error::etag_mismatch(&current_etag, given));
            }
        }
        let name = if patch && put.name.is_empty() { current.name.clone() } else { put.name };
        let kind = if patch && put.kind.is_empty() { current.kind } else { kind_of(&put.kind)? };
        let projects = match put.projects {
            Some(p) => p,
            None if patch => current.projects.clone(),
            None => Vec::new(),
        };
        if !put.certificate.is_empty() && put.certificate != current.certificate {
            return Err(Error::BadRequest("Changing the certificate is not supported".into()));
        }
        let mut b = Batch::new();
        if if_match.is_some() || patch {
            b.require_unchanged(&version, "ETag doesn't match: the certificate changed meanwhile");
        }
        store::update(&mut b, &current.fingerprint, &name, kind, put.restricted, &projects);
        self.global.apply(&b).await?;
        self.trust.refresh().await?;
        self.events.lifecycle("default", "certificate-updated", format!("/1.0/certificates/{}", current.fingerprint), None);
        Ok(())
    }

    pub async fn delete(&self, fingerprint: &str, requestor: Option<EventRequestor>) -> Result<()> {
        let (current, _) = store::get(&self.global, fingerprint).await?;
        let mut b = Batch::new();
        store::delete(&mut b, &current.fingerprint);
        self.global.apply(&b).await?;
        self.trust.refresh().await?;
        self.events.lifecycle("default", "certificate-deleted", format!("/1.0/certificates/{}", current.fingerprint), requestor);
        Ok(())
    }
}
