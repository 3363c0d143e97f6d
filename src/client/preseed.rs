//! `lxd init --preseed` and `--auto`: validates the whole document first (reporting the line and
//! key at fault), then applies it through the API, undoing every applied step if a later one
//! fails, so a bad preseed leaves nothing half-applied.

use std::collections::BTreeMap;

use super::{ClientError, Connection};
use crate::api::{InitPreseed, config_value_to_string};
use crate::config;

#[derive(Debug, thiserror::Error)]
pub enum PreseedError {
    #[error("Failed to parse the preseed: {0}")]
    Parse(String),
    #[error("Invalid preseed (line {line}): {message}")]
    Invalid { line: usize, message: String },
    #[error("Failed to apply the preseed ({step}): {source}; all changes were reverted")]
    Apply { step: String, source: ClientError },
}

/// The 1-based line of the first line matching `pred` after line `after`, else `after`.
fn find_line(text: &str, after: usize, pred: impl Fn(&str) -> bool) -> usize {
    text.lines()
        .enumerate()
        .skip(after.saturating_sub(1))
        .find(|(_, l)| pred(l.trim()))
        .map(|(i, _)| i + 1)
        .unwrap_or(after.max(1))
}

fn section_line(text: &str, section: &str) -> usize {
    find_line(text, 1, |l| l.starts_with(&format!("{section}:")))
}

fn key_line(text: &str, section: &str, key: &str) -> usize {
    let start = section_line(text, section);
    find_line(text, start, |l| l.trim_start_matches("- ").starts_with(&format!("{key}:")))
}

fn item_line(text: &str, section: &str, name: &str) -> usize {
    let start = section_line(text, section);
    find_line(text, start, |l| {
        let l = l.trim_start_matches("- ");
        l == format!("name: {name}") || l == format!("name: \"{name}\"") || l == format!("name: '{name}'")
    })
}

fn yaml_map_to_strings(map: &BTreeMap<String, serde_yaml::Value>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| {
            let json = serde_json::to_value(v).unwrap_or_default();
            (k.clone(), config_value_to_string(&json))
        })
        .collect()
}

/// Parses and checks the document without touching the server.
pub fn validate(text: &str) -> Result<InitPreseed, PreseedError> {
    let doc: InitPreseed = serde_yaml::from_str(text).map_err(|e| PreseedError::Parse(e.to_string()))?;
    let invalid = |line: usize, message: String| PreseedError::Invalid { line, message };
    for (k, v) in yaml_map_to_strings(&doc.config) {
        config::validate(&k, &v).map_err(|m| invalid(key_line(text, "config", &k), m.0))?;
    }
    if !doc.networks.is_empty() {
        return Err(invalid(section_line(text, "networks"), "managed networks are not supported by this rxd release yet".into()));
    }
    if let Some(c) = doc.cluster.as_ref().filter(|c| c.enabled) {
        let line = section_line(text, "cluster");
        if c.server_name.is_empty() && c.cluster_token.is_empty() {
            return Err(invalid(line, "cluster: server_name is required when enabling clustering".into()));
        }
        if !c.cluster_token.is_empty() && crate::api::ClusterJoinToken::decode(&c.cluster_token).is_none() {
            return Err(invalid(
                key_line(text, "cluster", "cluster_token"),
                "cluster: cluster_token is not a valid join token".into(),
            ));
        }
        let joining = !c.cluster_address.is_empty() || !c.cluster_token.is_empty();
        if joining && c.server_address.is_empty() {
            return Err(invalid(
                key_line(text, "cluster", "cluster_address"),
                "cluster: server_address is required to join".into(),
            ));
        }
        if joining && c.cluster_token.is_empty() && c.cluster_certificate.is_empty() && c.cluster_certificate_path.is_empty() {
            return Err(invalid(
                key_line(text, "cluster", "cluster_address"),
                "cluster: cluster_certificate (or cluster_certificate_path) is required to join".into(),
            ));
        }
        if !c.cluster_certificate.is_empty() && crate::tls::cert_der(&c.cluster_certificate).is_err() {
            return Err(invalid(
                key_line(text, "cluster", "cluster_certificate"),
                "cluster: cluster_certificate is not a PEM certificate".into(),
            ));
        }
    }
    let mut pool_names = Vec::new();
    for p in &doc.storage_pools {
        let line = item_line(text, "storage_pools", &p.name);
        if p.name.is_empty() || p.name.contains('/') {
            return Err(invalid(line, format!("invalid storage pool name \"{}\"", p.name)));
        }
        if p.driver != "dir" {
            return Err(invalid(
                line,
                format!("storage pool \"{}\": driver \"{}\" is not supported (supported: dir)", p.name, p.driver),
            ));
        }
        pool_names.push(p.name.clone());
    }
    for p in &doc.profiles {
        let line = item_line(text, "profiles", &p.name);
        if p.name.is_empty() {
            return Err(invalid(line, "profile without a name".into()));
        }
        for (dev, cfg) in &p.devices {
            if cfg.get("type").is_none_or(String::is_empty) {
                return Err(invalid(line, format!("profile \"{}\": device \"{dev}\" has no type", p.name)));
            }
        }
    }
    for p in &doc.projects {
        if p.name.is_empty() {
            return Err(invalid(section_line(text, "projects"), "project without a name".into()));
        }
    }
    Ok(doc)
}

enum Undo {
    PutServer(serde_json::Value),
    Delete(String),
    Put(String, serde_json::Value),
}

/// Validates then applies `text`; on failure reverts what was applied.
pub async fn apply(conn: &Connection, text: &str) -> Result<(), PreseedError> {
    let doc = validate(text)?;
    let cluster = doc.cluster.clone().filter(|c| c.enabled);
    if let Some(c) = cluster.as_ref().filter(|c| !c.cluster_address.is_empty() || !c.cluster_token.is_empty()) {
        // Joining: the member takes everything else from the cluster.
        let step = || "joining the cluster".to_string();
        let c = resolve_token(c.clone()).await.map_err(|source| PreseedError::Apply { step: step(), source })?;
        return enable_cluster(conn, &c).await.map_err(|source| PreseedError::Apply { step: step(), source });
    }
    let mut undo: Vec<Undo> = Vec::new();
    let mut result = apply_steps(conn, &doc, &mut undo).await;
    if let (Ok(()), Some(c)) = (&result, &cluster) {
        result = enable_cluster(conn, c).await.map_err(|e| ("bootstrapping the cluster".to_string(), e));
    }
    if let Err((step, source)) = result {
        for u in undo.into_iter().rev() {
            let _ = match u {
                Undo::PutServer(body) => conn.request("PUT", "/1.0", Some(&body), None).await,
                Undo::Delete(url) => conn.request("DELETE", &url, None, None).await,
                Undo::Put(url, body) => conn.request("PUT", &url, Some(&body), None).await,
            };
        }
        return Err(PreseedError::Apply { step, source });
    }
    Ok(())
}

/// A join token stands for the cluster's address, its certificate (checked against the token's
/// fingerprint) and the password; the first member in the token that answers is used.
pub async fn resolve_token(mut c: crate::api::InitCluster) -> Result<crate::api::InitCluster, ClientError> {
    if c.cluster_token.is_empty() {
        return Ok(c);
    }
    let token = crate::api::ClusterJoinToken::decode(&c.cluster_token)
        .ok_or_else(|| ClientError::Config("Invalid cluster join token".into()))?;
    for address in &token.addresses {
        let Ok(probe) = Connection::https(address, crate::tls::ServerPin::AcceptAny, None) else { continue };
        let Ok(Ok((_, Some(der)))) = tokio::time::timeout(std::time::Duration::from_secs(5), probe.open()).await else {
            continue;
        };
        if crate::tls::fingerprint_der(&der) != token.fingerprint {
            return Err(ClientError::Config(format!(
                "Certificate fingerprint mismatch between join token and cluster member \"{address}\""
            )));
        }
        c.cluster_address = address.clone();
        c.cluster_certificate = crate::tls::der_to_pem(&der);
        c.cluster_password = c.cluster_token.clone();
        c.server_name = token.server_name.clone();
        return Ok(c);
    }
    Err(ClientError::Config("Unable to connect to any of the cluster members specified in join token".into()))
}

/// `PUT /1.0/cluster` and waiting for the bootstrap or join operation.
async fn enable_cluster(conn: &Connection, c: &crate::api::InitCluster) -> Result<(), ClientError> {
    let certificate = if c.cluster_certificate.is_empty() && !c.cluster_certificate_path.is_empty() {
        std::fs::read_to_string(&c.cluster_certificate_path)
            .map_err(|e| ClientError::Config(format!("cannot read {}: {e}", c.cluster_certificate_path)))?
    } else {
        c.cluster_certificate.clone()
    };
    let body = serde_json::json!({
        "server_name": c.server_name,
        "enabled": true,
        "member_config": c.member_config,
        "cluster_address": c.cluster_address,
        "cluster_certificate": certificate,
        "server_address": c.server_address,
        "cluster_password": c.cluster_password,
    });
    let reply = conn.request("PUT", "/1.0/cluster", Some(&body), None).await?;
    let op: crate::api::Operation =
        serde_json::from_value(reply.envelope.metadata).map_err(|e| ClientError::Decode(e.to_string()))?;
    conn.wait_operation(&op.id).await?;
    Ok(())
}

async fn exists(conn: &Connection, url: &str) -> Option<serde_json::Value> {
    conn.get(url).await.ok().map(|r| r.envelope.metadata)
}

async fn apply_steps(conn: &Connection, doc: &InitPreseed, undo: &mut Vec<Undo>) -> Result<(), (String, ClientError)> {
    let fail = |step: String| move |e: ClientError| (step, e);
    if !doc.config.is_empty() {
        let server = conn.get("/1.0").await.map_err(fail("reading server config".into()))?;
        let old = server.envelope.metadata.get("config").cloned().unwrap_or_default();
        let body = serde_json::json!({ "config": yaml_map_to_strings(&doc.config) });
        conn.request("PATCH", "/1.0", Some(&body), None).await.map_err(fail("server config".into()))?;
        undo.push(Undo::PutServer(serde_json::json!({ "config": old })));
    }
    for p in &doc.storage_pools {
        let url = format!("/1.0/storage-pools/{}", p.name);
        let config = yaml_map_to_strings(&p.config);
        match exists(conn, &url).await {
            Some(old) => {
                let body = serde_json::json!({ "config": config, "description": p.description });
                conn.request("PATCH", &url, Some(&body), None).await.map_err(fail(format!("storage pool \"{}\"", p.name)))?;
                undo.push(Undo::Put(
                    url,
                    serde_json::json!({ "config": old.get("config"), "description": old.get("description") }),
                ));
            }
            None => {
                let body =
                    serde_json::json!({ "name": p.name, "driver": p.driver, "config": config, "description": p.description });
                conn.request("POST", "/1.0/storage-pools", Some(&body), None)
                    .await
                    .map_err(fail(format!("storage pool \"{}\"", p.name)))?;
                undo.push(Undo::Delete(url));
            }
        }
    }
    for p in &doc.projects {
        let url = format!("/1.0/projects/{}", p.name);
        let config = yaml_map_to_strings(&p.config);
        match exists(conn, &url).await {
            Some(old) => {
                let body = serde_json::json!({ "config": config, "description": p.description });
                conn.request("PATCH", &url, Some(&body), None).await.map_err(fail(format!("project \"{}\"", p.name)))?;
                undo.push(Undo::Put(
                    url,
                    serde_json::json!({ "config": old.get("config"), "description": old.get("description") }),
                ));
            }
            None => {
                let body = serde_json::json!({ "name": p.name, "config": config, "description": p.description });
                conn.request("POST", "/1.0/projects", Some(&body), None)
                    .await
                    .map_err(fail(format!("project \"{}\"", p.name)))?;
                undo.push(Undo::Delete(url));
            }
        }
    }
    for p in &doc.profiles {
        let url = format!("/1.0/profiles/{}", p.name);
        let config = yaml_map_to_strings(&p.config);
        match exists(conn, &url).await {
            Some(old) => {
                let description = if p.description.is_empty() {
                    old.get("description").cloned().unwrap_or_default()
                } else {
                    p.description.clone().into()
                };
                let body = serde_json::json!({ "config": config, "description": description, "devices": p.devices });
                conn.request("PUT", &url, Some(&body), None).await.map_err(fail(format!("profile \"{}\"", p.name)))?;
                undo.push(Undo::Put(
                    url,
                    serde_json::json!({ "config": old.get("config"), "description": old.get("description"), "devices": old.get("devices") }),
                ));
            }
            None => {
                let body =
                    serde_json::json!({ "name": p.name, "config": config, "description": p.description, "devices": p.devices });
                conn.request("POST", "/1.0/profiles", Some(&body), None)
                    .await
                    .map_err(fail(format!("profile \"{}\"", p.name)))?;
                undo.push(Undo::Delete(url));
            }
        }
    }
    Ok(())
}

/// The preseed `lxd init --auto` applies.
pub fn auto_preseed(address: Option<&str>, port: Option<u16>, trust_password: Option<&str>, storage_backend: &str) -> String {
    let mut config = BTreeMap::new();
    if let Some(a) = address {
        let addr = match port {
            Some(p) => format!("{a}:{p}"),
            None => a.to_string(),
        };
        config.insert("core.https_address".to_string(), addr);
    }
    if let Some(pw) = trust_password {
        config.insert("core.trust_password".to_string(), pw.to_string());
    }
    let doc = serde_json::json!({
        "config": config,
        "storage_pools": [{"name": "default", "driver": storage_backend}],
        "profiles": [{"name": "default", "devices": {"root": {"path": "/", "pool": "default", "type": "disk"}}}],
    });
    serde_yaml::to_string(&doc).unwrap_or_default()
}

/// The cluster a joiner is about to enter, as `lxd init` learns it before asking the
/// member-specific questions.
pub struct JoinTarget {
    pub address: String,
    pub certificate: String,
    pub member_config: Vec<crate::api::ClusterMemberConfigKey>,
}

/// What interactive `lxd init` does before joining: trusts this member's server certificate on
/// the cluster with the password or token (so a single-use token is spent here, not again by
/// the daemon), then reads the member-specific keys the cluster needs from the joiner.
pub async fn setup_join_trust(
    address: &str,
    certificate: &str,
    server_name: &str,
    password: &str,
    member: &crate::tls::KeyPairPem,
) -> Result<JoinTarget, ClientError> {
    use base64::Engine;
    let pin = crate::tls::ServerPin::Fingerprint(
        crate::tls::fingerprint_pem(certificate).map_err(|e| ClientError::Config(e.to_string()))?,
    );
    let der = crate::tls::cert_der(&member.cert).map_err(|e| ClientError::Config(e.to_string()))?;
    let body = serde_json::json!({
        "type": "server", "name": server_name,
        "certificate": base64::engine::general_purpose::STANDARD.encode(der.as_ref()),
        "password": password,
    });
    match Connection::https(address, pin.clone(), None)?.request("POST", "/1.0/certificates", Some(&body), None).await {
        Ok(_) => {}
        // Trusted already (a join retried after the trust step).
        Err(ClientError::Api { status: 409, .. }) => {}
        Err(e) => return Err(ClientError::api(e.status(), format!("Failed to setup trust relationship with cluster: {e}"))),
    }
    let cluster: crate::api::Cluster = Connection::https(address, pin, Some(member))?.get_json("/1.0/cluster").await?;
    Ok(JoinTarget { address: address.to_string(), certificate: certificate.to_string(), member_config: cluster.member_config })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_line_and_key_of_a_bad_config_key() {
        let text = "config:\n  core.https_address: 127.0.0.1:8443\n  bogus.key: 1\nstorage_pools: []\n";
        match validate(text) {
            Err(PreseedError::Invalid { line, message }) => {
                assert_eq!(line, 3);
                assert!(message.contains("bogus.key"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reports_yaml_errors_with_position() {
        let err = validate("config: [\n").expect_err("must fail");
        assert!(err.to_string().contains("line"), "{err}");
        let err = validate("storage_pools:\n- name: p\n  driver: dir\n  sauce: x\n").expect_err("unknown field");
        assert!(err.to_string().contains("sauce"), "{err}");
    }

    #[test]
    fn auto_preseed_is_valid() {
        let text = auto_preseed(Some("127.0.0.1"), Some(8443), Some("pw"), "dir");
        let doc = validate(&text).expect("valid");
        assert_eq!(doc.storage_pools.len(), 1);
    }
}
