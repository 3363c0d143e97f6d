//! `/1.0/certificates`: the trust store as clients see it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Certificate {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub restricted: bool,
    pub projects: Vec<String>,
    pub certificate: String,
    pub fingerprint: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CertificatesPost {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub restricted: bool,
    #[serde(default, deserialize_with = "super::nullable")]
    pub projects: Option<Vec<String>>,
    /// Base64 DER; empty means "the certificate of this TLS connection".
    #[serde(default)]
    pub certificate: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub token: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CertificatePut {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub restricted: bool,
    #[serde(default, deserialize_with = "super::nullable")]
    pub projects: Option<Vec<String>>,
    #[serde(default)]
    pub certificate: String,
}

/// The decoded form of a certificate-add token (`lxc config trust add`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CertificateAddToken {
    pub client_name: String,
    pub fingerprint: String,
    pub addresses: Vec<String>,
    pub secret: String,
    #[serde(default)]
    pub expires_at: String,
}

impl CertificateAddToken {
    /// Decodes a token; None if `s` is not one (it may be a plain password).
    pub fn decode(s: &str) -> Option<CertificateAddToken> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()?;
        let t: CertificateAddToken = serde_json::from_slice(&raw).ok()?;
        if t.client_name.is_empty() || t.addresses.is_empty() || t.secret.is_empty() || t.fingerprint.is_empty() {
            return None;
        }
        Some(t)
    }

    pub fn encode(&self) -> String {
        use base64::Engine;
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }
}
