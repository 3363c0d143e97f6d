//! The server configuration keys: which exist, where each lives (this member's local database
//! or the cluster-wide one), its default, whether it is hidden, and how values are validated.
//! Errors use LXD's wording: "cannot set '<key>' to '<value>': <reason>".

use std::collections::BTreeMap;

/// Where a key is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// This member only (`database/local.db`).
    Member,
    /// The whole cluster (global `config` table).
    Cluster,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Any,
    Bool,
    /// Integer with an optional inclusive minimum.
    Int(Option<i64>),
    Address,
    Compression,
    OfflineThreshold,
    MaxVoters,
    MaxStandby,
    ImagesReplica,
    Expiry,
}

struct KeyDef {
    name: &'static str,
    scope: Scope,
    kind: Kind,
    default: &'static str,
    hidden: bool,
}

const fn key(name: &'static str, scope: Scope, kind: Kind, default: &'static str) -> KeyDef {
    KeyDef { name, scope, kind, default, hidden: false }
}

const fn hidden(name: &'static str, scope: Scope) -> KeyDef {
    KeyDef { name, scope, kind: Kind::Any, default: "", hidden: true }
}

use Kind::*;
use Scope::*;

const KEYS: &[KeyDef] = &[
    key("core.https_address", Member, Address, ""),
    key("cluster.https_address", Member, Address, ""),
    key("core.bgp_address", Member, Address, ""),
    key("core.bgp_routerid", Member, Any, ""),
    key("core.debug_address", Member, Address, ""),
    key("core.dns_address", Member, Address, ""),
    key("core.metrics_address", Member, Address, ""),
    key("maas.machine", Member, Any, ""),
    key("storage.backups_volume", Member, Any, ""),
    key("storage.images_volume", Member, Any, ""),
    hidden("core.trust_password", Cluster),
    key("core.trust_ca_certificates", Cluster, Bool, "false"),
    key("core.proxy_http", Cluster, Any, ""),
    key("core.proxy_https", Cluster, Any, ""),
    key("core.proxy_ignore_hosts", Cluster, Any, ""),
    key("core.https_allowed_headers", Cluster, Any, ""),
    key("core.https_allowed_methods", Cluster, Any, ""),
    key("core.https_allowed_origin", Cluster, Any, ""),
    key("core.https_allowed_credentials", Cluster, Bool, "false"),
    key("core.https_trusted_proxy", Cluster, Any, ""),
    key("core.shutdown_timeout", Cluster, Int(Some(0)), "5"),
    key("core.remote_token_expiry", Cluster, Expiry, ""),
    key("core.bgp_asn", Cluster, Int(Some(0)), "0"),
    key("core.metrics_authentication", Cluster, Bool, "true"),
    key("images.auto_update_cached", Cluster, Bool, "true"),
    key("images.auto_update_interval", Cluster, Int(Some(0)), "6"),
    key("images.compression_algorithm", Cluster, Compression, "gzip"),
    key("images.default_architecture", Cluster, Any, ""),
    key("images.remote_cache_expiry", Cluster, Int(Some(0)), "10"),
    key("backups.compression_algorithm", Cluster, Compression, "gzip"),
    key("cluster.offline_threshold", Cluster, OfflineThreshold, "20"),
    key("cluster.images_minimal_replica", Cluster, ImagesReplica, "3"),
    key("cluster.max_voters", Cluster, MaxVoters, "3"),
    key("cluster.max_standby", Cluster, MaxStandby, "2"),
    key("cluster.join_token_expiry", Cluster, Expiry, "3H"),
    key("maas.api.url", Cluster, Any, ""),
    hidden("maas.api.key", Cluster),
    key("candid.api.url", Cluster, Any, ""),
    key("candid.api.key", Cluster, Any, ""),
    key("candid.domains", Cluster, Any, ""),
    key("candid.expiry", Cluster, Int(Some(0)), "3600"),
    key("rbac.api.url", Cluster, Any, ""),
    key("rbac.api.key", Cluster, Any, ""),
    key("rbac.api.expiry", Cluster, Int(Some(0)), "3600"),
    key("rbac.agent.url", Cluster, Any, ""),
    key("rbac.agent.username", Cluster, Any, ""),
    key("rbac.agent.private_key", Cluster, Any, ""),
    key("rbac.agent.public_key", Cluster, Any, ""),
    key("network.ovn.northbound_connection", Cluster, Any, ""),
];

fn def(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|k| k.name == name)
}

/// Where `name` is stored; `user.*` keys are cluster-wide. None for unknown keys.
pub fn scope(name: &str) -> Option<Scope> {
    if name.starts_with("user.") {
        return Some(Cluster);
    }
    def(name).map(|d| d.scope)
}

pub fn is_hidden(name: &str) -> bool {
    def(name).is_some_and(|d| d.hidden)
}

/// The default value of a key ("" for none or unknown keys).
pub fn default(name: &str) -> &'static str {
    def(name).map(|d| d.default).unwrap_or("")
}

/// A value, or the default when unset.
pub fn effective<'a>(config: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    match config.get(name) {
        Some(v) if !v.is_empty() => v,
        _ => default(name),
    }
}

pub fn effective_i64(config: &BTreeMap<String, String>, name: &str) -> i64 {
    effective(config, name).parse().unwrap_or_else(|_| default(name).parse().unwrap_or(0))
}

/// A refused setting, in LXD's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSetting(pub String);

/// Checks one key and value; "" always resets a known key to its default.
pub fn validate(name: &str, value: &str) -> Result<(), InvalidSetting> {
    let fail = |why: &str| Err(InvalidSetting(format!("cannot set '{name}' to '{value}': {why}")));
    if name.starts_with("user.") {
        return Ok(());
    }
    let Some(d) = def(name) else {
        return fail("unknown key");
    };
    if value.is_empty() {
        return Ok(());
    }
    let as_int = || value.parse::<i64>();
    match d.kind {
        Any => Ok(()),
        Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "false" | "1" | "0" | "yes" | "no" | "on" | "off" => Ok(()),
            _ => fail("Invalid value for a boolean"),
        },
        Int(min) => match as_int() {
            Ok(v) if min.is_none_or(|m| v >= m) => Ok(()),
            Ok(_) => fail("Value must not be negative"),
            Err(_) => fail("Invalid value for an integer"),
        },
        Address => match super::address::parse_address(value, super::address::DEFAULT_PORT) {
            Ok(_) => Ok(()),
            Err(e) => fail(&e.0),
        },
        Compression => match value {
            "none" | "bzip2" | "gzip" | "lzma" | "xz" | "zstd" | "lz4" | "squashfs" => Ok(()),
            _ => fail("Compression algorithm isn't supported"),
        },
        OfflineThreshold => match as_int() {
            Ok(v) if v > 10 => Ok(()),
            Ok(_) => fail("Value must be greater than '10'"),
            Err(_) => fail("Offline threshold is not a number"),
        },
        MaxVoters => match as_int() {
            Ok(v) if v >= 3 && v % 2 == 1 => Ok(()),
            Ok(_) => fail("Value must be an odd number equal to or higher than 3"),
            Err(_) => fail("Value is not a number"),
        },
        MaxStandby => match as_int() {
            Ok(v) if (0..=5).contains(&v) => Ok(()),
            Ok(_) => fail("Value must be between 0 and 5"),
            Err(_) => fail("Value is not a number"),
        },
        ImagesReplica => match as_int() {
            Ok(v) if v >= 1 || v == -1 => Ok(()),
            Ok(_) => fail("Invalid value for image replica count"),
            Err(_) => fail("Minimal image replica count is not a number"),
        },
        Expiry => match parse_expiry(value) {
            Some(_) => Ok(()),
            None => fail("Invalid expiry: expected a number followed by S, M, H, d, w, m or y (e.g. 3H)"),
        },
    }
}

/// An LXD expiry such as `3H` or `1d 12H` to seconds.
pub fn parse_expiry(value: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut any = false;
    for part in value.split_whitespace() {
        let (num, unit) = part.split_at(part.find(|c: char| !c.is_ascii_digit())?);
        let n: i64 = num.parse().ok()?;
        let secs = match unit {
            "S" => 1,
            "M" => 60,
            "H" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            "m" => 2_592_000,
            "y" => 31_536_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(secs)?)?;
        any = true;
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages_match_lxd() {
        assert_eq!(validate("bogus.key", "1").unwrap_err().0, "cannot set 'bogus.key' to '1': unknown key");
        assert_eq!(
            validate("cluster.offline_threshold", "10").unwrap_err().0,
            "cannot set 'cluster.offline_threshold' to '10': Value must be greater than '10'"
        );
        assert!(validate("cluster.offline_threshold", "11").is_ok());
        assert!(validate("cluster.max_voters", "4").is_err());
        assert!(validate("cluster.max_voters", "5").is_ok());
        assert!(validate("cluster.max_standby", "6").is_err());
        assert!(validate("cluster.images_minimal_replica", "-1").is_ok());
        assert!(validate("cluster.images_minimal_replica", "0").is_err());
        assert!(validate("user.anything", "x").is_ok());
        assert!(validate("core.https_address", "127.0.0.1:99999").is_err());
        assert!(validate("images.auto_update_interval", "abc").is_err());
        assert!(validate("cluster.join_token_expiry", "3H").is_ok());
        assert!(validate("cluster.join_token_expiry", "3X").is_err());
    }

    #[test]
    fn expiries_add_up() {
        assert_eq!(parse_expiry("1d 12H"), Some(129_600));
        assert_eq!(parse_expiry("3X"), None);
    }
}
