//! Certificates, fingerprints and rustls configurations. Owns the one crypto provider (ring) and
//! the two trust models rxd uses: a server that asks every client for a certificate but accepts
//! any (trust is decided per request from the fingerprint), and a client that pins exactly one
//! server certificate by fingerprint, as LXD's remotes do.
//!
//! May call: util.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::SignatureScheme;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("failed to generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("invalid PEM certificate: {0}")]
    BadCertificate(String),
    #[error("invalid PEM private key: {0}")]
    BadKey(String),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("failed to access {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// The process-wide provider. Installed as the default once in `main`, passed explicitly elsewhere
/// so configuration never depends on that global.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn install_default_provider() {
    // Err means another thread installed it first, which is the same provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What a generated certificate is for; LXD's member certificates serve both roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertKind {
    Server,
    Client,
}

/// A PEM certificate and its PEM private key.
#[derive(Clone, Debug)]
pub struct KeyPairPem {
    pub cert: String,
    pub key: String,
}

fn io(p: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: p.display().to_string(), source }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// An ECDSA P-384 self-signed certificate shaped like LXD's: `O=linuxcontainers.org`,
/// `CN=root@<host>`, first SAN the host name (the stock client uses it as TLS server name when it
/// pins the certificate), then 127.0.0.1 and ::1.
pub fn generate(kind: CertKind) -> Result<KeyPairPem, TlsError> {
    let host = hostname();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?;
    let mut params = rcgen::CertificateParams::new(vec![host.clone()])?;
    params.subject_alt_names.push(rcgen::SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
    params.subject_alt_names.push(rcgen::SanType::IpAddress(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])));
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::OrganizationName, "linuxcontainers.org");
    dn.push(rcgen::DnType::CommonName, format!("root@{host}"));
    params.distinguished_name = dn;
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = match kind {
        CertKind::Server => vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth],
        CertKind::Client => vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 12, 31);
    let cert = params.self_signed(&key)?;
    Ok(KeyPairPem { cert: cert.pem(), key: key.serialize_pem() })
}

/// Loads `<base>.crt`/`<base>.key` from `dir`, generating and writing them (key mode 0600) if absent.
pub fn load_or_generate(dir: &Path, base: &str, kind: CertKind) -> Result<KeyPairPem, TlsError> {
    let crt = dir.join(format!("{base}.crt"));
    let key = dir.join(format!("{base}.key"));
    if crt.exists() && key.exists() {
        let cert = std::fs::read_to_string(&crt).map_err(io(&crt))?;
        let key_pem = std::fs::read_to_string(&key).map_err(io(&key))?;
        cert_der(&cert)?;
        return Ok(KeyPairPem { cert, key: key_pem });
    }
    let pair = generate(kind)?;
    write_pair(dir, base, &pair)?;
    Ok(pair)
}

pub fn write_pair(dir: &Path, base: &str, pair: &KeyPairPem) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let crt = dir.join(format!("{base}.crt"));
    let key = dir.join(format!("{base}.key"));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&key).map_err(io(&key))?;
    f.write_all(pair.key.as_bytes()).map_err(io(&key))?;
    std::fs::write(&crt, &pair.cert).map_err(io(&crt))?;
    Ok(())
}

pub fn cert_der(pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::BadCertificate(e.to_string()))
}

pub fn key_der(pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::BadKey(e.to_string()))
}

/// SHA-256 of the DER certificate as lower-case hex: the one fingerprint format LXD uses.
pub fn fingerprint_der(der: &[u8]) -> String {
    format!("{:x}", Sha256::digest(der))
}

pub fn fingerprint_pem(pem: &str) -> Result<String, TlsError> {
    Ok(fingerprint_der(cert_der(pem)?.as_ref()))
}

/// DER bytes to a PEM certificate.
pub fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn tls12_signature(
    p: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls12_signature(message, cert, dss, &p.signature_verification_algorithms)
}

fn tls13_signature(
    p: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature(message, cert, dss, &p.signature_verification_algorithms)
}

/// Accepts any client certificate (or none) but still checks the handshake signature, so a
/// client cannot claim a certificate whose key it does not hold.
#[derive(Debug)]
struct AnyClientCert(Arc<CryptoProvider>);

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_signature(&self.0, message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13_signature(&self.0, message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The listener configuration: present `pair`, request (not require) a client certificate.
pub fn server_config(pair: &KeyPairPem) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let p = provider();
    let mut cfg = rustls::ServerConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(AnyClientCert(p)))
        .with_single_cert(vec![cert_der(&pair.cert)?], key_der(&pair.key)?)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Which server certificate a client accepts.
#[derive(Clone, Debug)]
pub enum ServerPin {
    /// Exactly this SHA-256 fingerprint.
    Fingerprint(String),
    /// Anything: only for fetching a certificate to show the user or compare with a token.
    AcceptAny,
}

#[derive(Debug)]
struct PinnedServer {
    pin: ServerPin,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.pin {
            ServerPin::AcceptAny => Ok(ServerCertVerified::assertion()),
            ServerPin::Fingerprint(fp) if *fp == fingerprint_der(end_entity.as_ref()) => Ok(ServerCertVerified::assertion()),
            ServerPin::Fingerprint(_) => {
                Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
            }
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_signature(&self.provider, message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13_signature(&self.provider, message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A client configuration pinning the server and optionally presenting `identity`.
/// Client configurations for pinned servers, kept so that repeated connections between the same
/// parties (members' heartbeats, forwarded requests) resume TLS sessions instead of paying for
/// a full handshake each time.
static PINNED_CLIENTS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, Arc<rustls::ClientConfig>>>> =
    std::sync::LazyLock::new(Default::default);

pub fn client_config(pin: ServerPin, identity: Option<&KeyPairPem>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let key = match &pin {
        ServerPin::Fingerprint(fp) => Some(format!("{fp}/{}", identity.map(|i| i.cert.as_str()).unwrap_or(""))),
        ServerPin::AcceptAny => None,
    };
    if let Some(k) = &key
        && let Some(cfg) = PINNED_CLIENTS.lock().ok().and_then(|c| c.get(k).cloned())
    {
        return Ok(cfg);
    }
    let cfg = build_client_config(pin, identity)?;
    if let (Some(k), Ok(mut cache)) = (key, PINNED_CLIENTS.lock()) {
        if cache.len() > 64 {
            cache.clear();
        }
        cache.insert(k, cfg.clone());
    }
    Ok(cfg)
}

fn build_client_config(pin: ServerPin, identity: Option<&KeyPairPem>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let p = provider();
    let builder = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer { pin, provider: p }));
    let mut cfg = match identity {
        Some(pair) => builder.with_client_auth_cert(vec![cert_der(&pair.cert)?], key_der(&pair.key)?)?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificates_parse_and_fingerprint() {
        let pair = generate(CertKind::Server).expect("generate");
        let fp = fingerprint_pem(&pair.cert).expect("fingerprint");
        assert_eq!(fp.len(), 64);
        let der = cert_der(&pair.cert).expect("der");
        assert_eq!(fingerprint_pem(&der_to_pem(der.as_ref())).expect("round trip"), fp);
        server_config(&pair).expect("server config");
        client_config(ServerPin::Fingerprint(fp), Some(&pair)).expect("client config");
    }
}

/// Reads one DER TLV at the start of `input`: (tag, contents, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*input.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let body = input.get(header..header.checked_add(len)?)?;
    Some((tag, body, &input[header + len..]))
}

/// The subject common name of a DER certificate (LXD names trusted clients after it).
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert, _) = der_tlv(der)?;
    let (_, tbs, _) = der_tlv(cert)?;
    let mut rest = tbs;
    // Optional explicit version [0].
    if rest.first() == Some(&0xa0) {
        rest = der_tlv(rest)?.2;
    }
    // serial, signature algorithm, issuer, validity, then subject.
    for _ in 0..4 {
        rest = der_tlv(rest)?.2;
    }
    let (_, subject, _) = der_tlv(rest)?;
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (_, set, next) = der_tlv(rdns)?;
        rdns = next;
        let (_, attr, _) = der_tlv(set)?;
        let (_, oid, value) = der_tlv(attr)?;
        if oid == [0x55, 0x04, 0x03] {
            let (_, v, _) = der_tlv(value)?;
            return String::from_utf8(v.to_vec()).ok();
        }
    }
    None
}

#[cfg(test)]
mod der_tests {
    use super::*;

    #[test]
    fn reads_common_name() {
        let pair = generate(CertKind::Client).expect("generate");
        let der = cert_der(&pair.cert).expect("der");
        let cn = common_name(der.as_ref()).expect("cn");
        assert!(cn.starts_with("root@"), "{cn}");
    }
}

/// Parses an ASN.1 UTCTime/GeneralizedTime (`YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ`).
fn asn1_time(tag: u8, body: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(body).ok()?;
    let full = match tag {
        0x17 => {
            let yy: i64 = s.get(0..2)?.parse().ok()?;
            format!("{}{}", if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => s.to_string(),
        _ => return None,
    };
    let t = format!(
        "{}-{}-{}T{}:{}:{}Z",
        full.get(0..4)?,
        full.get(4..6)?,
        full.get(6..8)?,
        full.get(8..10)?,
        full.get(10..12)?,
        full.get(12..14)?
    );
    crate::util::time::parse_rfc3339(&t)
}

/// Not-before and not-after of a DER certificate, in nanoseconds since the epoch.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, cert, _) = der_tlv(der)?;
    let (_, tbs, _) = der_tlv(cert)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = der_tlv(rest)?.2;
    }
    for _ in 0..3 {
        rest = der_tlv(rest)?.2;
    }
    let (_, validity, _) = der_tlv(rest)?;
    let (t1, b1, rest) = der_tlv(validity)?;
    let (t2, b2, _) = der_tlv(rest)?;
    Some((asn1_time(t1, b1)?, asn1_time(t2, b2)?))
}
