//! Listen and cluster addresses as LXD writes them: `host`, `host:port`, `:port`,
//! `[v6]:port`, wildcards, and which address a member is reached at by the others.

use std::collections::BTreeMap;

/// The port an address without one gets.
pub const DEFAULT_PORT: u16 = 8443;

/// Why an address was refused; the text is LXD's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddressError(pub String);

fn refuse(why: impl Into<String>) -> AddressError {
    AddressError(why.into())
}

/// Parses a listen address and adds `default_port`; returns the canonical `host:port`
/// (the host may be empty or a wildcard).
pub fn parse_address(value: &str, default_port: u16) -> Result<String, AddressError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(refuse("Empty address"));
    }
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(|| refuse("Invalid IPv6 address"))?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p,
            None if after.is_empty() => "",
            None => return Err(refuse("Invalid address")),
        };
        (format!("[{host}]"), port.to_string())
    } else if v.matches(':').count() > 1 {
        (format!("[{v}]"), String::new())
    } else if let Some((h, p)) = v.rsplit_once(':') {
        (h.to_string(), p.to_string())
    } else {
        (v.to_string(), String::new())
    };
    let port = if port.is_empty() {
        default_port
    } else {
        port.parse::<u16>().map_err(|_| refuse(format!("Invalid port \"{port}\"")))?
    };
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(refuse(format!("Invalid host \"{host}\"")));
    }
    Ok(format!("{host}:{port}"))
}

/// Whether the address listens on every interface (LXD counts an empty host as a wildcard).
pub fn is_wildcard(addr: &str) -> bool {
    let canonical = parse_address(addr, DEFAULT_PORT).unwrap_or_default();
    let host = canonical.rsplit_once(':').map(|(h, _)| h).unwrap_or("");
    matches!(host, "" | "0.0.0.0" | "[::]" | "::")
}

/// Whether a listener on `rest` (the REST API address, possibly a wildcard) also serves
/// `cluster`: the same host and port, or the same port on a wildcard.
pub fn is_address_covered(rest: &str, cluster: &str) -> bool {
    if rest.is_empty() {
        return false;
    }
    let (Ok(a), Ok(b)) = (parse_address(rest, DEFAULT_PORT), parse_address(cluster, DEFAULT_PORT)) else { return false };
    if a == b {
        return true;
    }
    let port = |s: &str| s.rsplit_once(':').map(|(_, p)| p.to_string());
    port(&a) == port(&b) && is_wildcard(rest)
}

/// The member's cluster address: `cluster.https_address`, else a non-wildcard
/// `core.https_address`.
pub fn cluster_address(member: &BTreeMap<String, String>) -> Result<String, AddressError> {
    if let Some(a) = member.get("cluster.https_address").filter(|a| !a.is_empty()) {
        return parse_address(a, DEFAULT_PORT);
    }
    let core = member.get("core.https_address").cloned().unwrap_or_default();
    if is_wildcard(&core) {
        return Err(refuse(format!(
            "Cannot use wildcard core.https_address \"{core}\" for cluster.https_address. Please specify a new cluster.https_address or core.https_address"
        )));
    }
    parse_address(&core, DEFAULT_PORT)
}

/// The IP of a `host:port` address, when the host is a literal IP.
pub fn host_ip(address: &str) -> Option<std::net::IpAddr> {
    let (host, _) = address.rsplit_once(':')?;
    host.trim_matches(['[', ']']).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_canonicalise() {
        assert_eq!(parse_address("127.0.0.1", 8443).unwrap(), "127.0.0.1:8443");
        assert_eq!(parse_address(":8443", 8443).unwrap(), ":8443");
        assert_eq!(parse_address("[::]", 8443).unwrap(), "[::]:8443");
        assert_eq!(parse_address("::1", 8443).unwrap(), "[::1]:8443");
        assert!(parse_address("127.0.0.1:99999", 8443).is_err());
        assert!(is_wildcard("0.0.0.0:8443"));
        assert!(is_wildcard(""));
        assert!(is_wildcard("[::]:8443"));
        assert!(!is_wildcard("127.0.0.11:8443"));
        assert!(is_address_covered(":8443", "127.0.0.1:8443"));
        assert!(!is_address_covered("127.0.0.2:8443", "127.0.0.1:8443"));
        assert_eq!(host_ip("[::1]:8443"), Some("::1".parse().unwrap()));
    }
}
