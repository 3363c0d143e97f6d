//! The trust store as an API resource: listing, adding (by a trusted client, with the trust
//! password, or with a single-use token), renaming and removing certificates.

use base64::Engine;

use super::operations::{NewOp, Op, OpClass};
use super::{Daemon, Error, Result, config, trust};
use crate::api::{Certificate, CertificateAddToken, CertificatePut, CertificatesPost, EventRequestor};
use crate::store::global::certificates::{self as store_certs, TYPE_CLIENT};
use crate::store::{Batch, global};
use crate::tls;
use crate::util::time;

fn to_api(c: store_certs::Certificate) -> Certificate {
    Certificate {
        name: c.name,
        kind: store_certs::type_name(c.kind).into(),
        restricted: c.restricted,
        projects: c.projects,
        certificate: c.certificate,
        fingerprint: c.fingerprint,
    }
}

impl Daemon {
    pub async fn certificates(&self) -> Result<Vec<Certificate>> {
        Ok(store_certs::list(&self.global).await?.into_iter().map(to_api).collect())
    }

    pub async fn certificate(&self, fingerprint: &str) -> Result<Certificate> {
        Ok(to_api(store_certs::get(&self.global, fingerprint).await?))
    }

    async fn insert_certificate(
        &self,
        pem: String,
        name: String,
        kind: i64,
        restricted: bool,
        projects: Vec<String>,
    ) -> Result<String> {
        let der = tls::cert_der(&pem).map_err(|e| Error::BadRequest(format!("Invalid certificate material: {e}")))?;
        let fingerprint = tls::fingerprint_der(der.as_ref());
        let name = if name.is_empty() { tls::common_name(der.as_ref()).unwrap_or_default() } else { name };
        let mut b = Batch::new();
        store_certs::insert(
            &mut b,
            &store_certs::Certificate {
                id: 0,
                fingerprint: fingerprint.clone(),
                kind,
                name,
                certificate: pem,
                restricted,
                projects,
            },
        );
        self.global.apply(&b).await?;
        self.refresh_trust().await?;
        self.events.lifecycle("default", "certificate-created", format!("/1.0/certificates/{fingerprint}"), None);
        Ok(fingerprint)
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

    fn kind_of(name: &str) -> Result<i64> {
        store_certs::type_code(name).ok_or_else(|| Error::BadRequest(format!("Unknown request type {name}")))
    }

    /// `POST /1.0/certificates` from a trusted client: add a certificate directly, or (with
    /// `token: true`) issue a single-use token for a future client.
    pub async fn add_certificate_trusted(
        &self,
        req: CertificatesPost,
        connection_cert: Option<&[u8]>,
    ) -> Result<CertificateAdded> {
        let kind = Self::kind_of(&req.kind)?;
        if req.token {
            return self.issue_certificate_token(req).await.map(CertificateAdded::Token);
        }
        let pem = Self::requested_pem(&req, connection_cert)?;
        let fp = self.insert_certificate(pem, req.name, kind, req.restricted, req.projects.unwrap_or_default()).await?;
        Ok(CertificateAdded::Certificate(fp))
    }

    async fn issue_certificate_token(&self, mut req: CertificatesPost) -> Result<std::sync::Arc<Op>> {
        if req.name.is_empty() {
            return Err(Error::BadRequest("A client name must be provided".into()));
        }
        req.projects = Some(req.projects.unwrap_or_default());
        let stored = self.stored_config().await?;
        let addresses: Vec<String> = stored
            .member
            .get("core.https_address")
            .map(|a| config::parse_address(a, 8443).map(|c| vec![c]).unwrap_or_default())
            .unwrap_or_default();
        if addresses.is_empty() {
            return Err(Error::BadRequest("Can't issue token when server isn't listening on network".into()));
        }
        let mut metadata = serde_json::json!({
            "addresses": addresses,
            "fingerprint": tls::fingerprint_pem(&self.identity().cert).unwrap_or_default(),
            "request": req,
            "secret": trust::random_hex(32),
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
                let _ = ops.cancel(&id);
            });
        }
        self.events.lifecycle("default", "certificate-token-created", format!("/1.0/operations/{}", op.id), None);
        Ok(op)
    }

    /// `POST /1.0/certificates` from an untrusted client: the password is a certificate-add
    /// token or the trust password; the certificate trusted is the connection's.
    pub async fn add_certificate_untrusted(&self, req: CertificatesPost, connection_cert: Option<&[u8]>) -> Result<String> {
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
            let pem = Self::requested_pem(&CertificatesPost::default(), connection_cert)?;
            let kind = Self::kind_of(&stored.kind)?;
            return self.insert_certificate(pem, stored.name, kind, stored.restricted, stored.projects.unwrap_or_default()).await;
        }
        let stored = self.stored_config().await?;
        let hash = stored.cluster.get("core.trust_password").ok_or_else(denied)?;
        if !trust::verify_password(hash, &req.password) {
            return Err(denied());
        }
        let kind = Self::kind_of(&req.kind)?;
        let pem = Self::requested_pem(&req, connection_cert)?;
        self.insert_certificate(pem, req.name, kind, req.restricted, req.projects.unwrap_or_default()).await
    }

    /// A joining member's certificate, admitted with a join token the cluster has consumed.
    pub async fn add_joining_member_certificate(&self, req: CertificatesPost, connection_cert: Option<&[u8]>) -> Result<String> {
        let pem = Self::requested_pem(&req, connection_cert)?;
        self.insert_certificate(pem, req.name, global::certificates::TYPE_SERVER, false, Vec::new()).await
    }

    pub async fn update_certificate(&self, fingerprint: &str, put: CertificatePut, patch: bool) -> Result<()> {
        let current = store_certs::get(&self.global, fingerprint).await?;
        let name = if patch && put.name.is_empty() { current.name.clone() } else { put.name };
        let kind = if patch && put.kind.is_empty() { current.kind } else { Self::kind_of(&put.kind)? };
        let projects = match put.projects {
            Some(p) => p,
            None if patch => current.projects.clone(),
            None => Vec::new(),
        };
        if !put.certificate.is_empty() && put.certificate != current.certificate {
            return Err(Error::BadRequest("Changing the certificate is not supported".into()));
        }
        let mut b = Batch::new();
        store_certs::update(&mut b, &current.fingerprint, &name, kind, put.restricted, &projects);
        self.global.apply(&b).await?;
        self.refresh_trust().await?;
        self.events.lifecycle("default", "certificate-updated", format!("/1.0/certificates/{}", current.fingerprint), None);
        Ok(())
    }

    pub async fn delete_certificate(&self, fingerprint: &str, requestor: Option<EventRequestor>) -> Result<()> {
        let current = store_certs::get(&self.global, fingerprint).await?;
        let mut b = Batch::new();
        store_certs::delete(&mut b, &current.fingerprint);
        self.global.apply(&b).await?;
        self.refresh_trust().await?;
        self.events.lifecycle("default", "certificate-deleted", format!("/1.0/certificates/{}", current.fingerprint), requestor);
        Ok(())
    }

    /// Whether `fingerprint` belongs to a trusted client certificate.
    pub fn is_trusted_client(&self, fingerprint: &str) -> bool {
        self.trusted(fingerprint).is_some_and(|t| t.kind == TYPE_CLIENT || t.kind == global::certificates::TYPE_SERVER)
    }
}

pub enum CertificateAdded {
    Certificate(String),
    Token(std::sync::Arc<Op>),
}
