//! An instance's own configuration: which keys it may carry, and LXD's forms of the values the
//! container driver turns into limits (byte sizes, CPU counts and allowances).

use std::collections::BTreeMap;

use crate::services::validation::validate_instance_config;
use crate::services::{Error, Result};

/// Parses LXD byte sizes ("64MB", "1GiB", "512") and percentages of host memory ("50%").
pub fn parse_bytes(value: &str) -> Option<u64> {
    let v = value.trim();
    if let Some(pct) = v.strip_suffix('%') {
        let pct: f64 = pct.trim().parse().ok()?;
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()?
            * 1024;
        return Some((total as f64 * pct / 100.0) as u64);
    }
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1000u64.pow(2),
        "GB" => 1000u64.pow(3),
        "TB" => 1000u64.pow(4),
        "KiB" => 1024,
        "MiB" => 1024u64.pow(2),
        "GiB" => 1024u64.pow(3),
        "TiB" => 1024u64.pow(4),
        _ => return None,
    };
    Some((num * mult as f64) as u64)
}

/// limits.cpu (a CPU count) or limits.cpu.allowance ("50%", "25ms/100ms") as a CFS quota per
/// 100 ms period.
pub fn cpu_quota(config: &BTreeMap<String, String>) -> Option<u64> {
    if let Some(a) = config.get("limits.cpu.allowance").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if let Some(pct) = a.strip_suffix('%') {
            return pct.parse::<f64>().ok().map(|p| (p * 1000.0) as u64);
        }
        if let Some((q, p)) = a.split_once('/') {
            let ms = |s: &str| s.trim().trim_end_matches("ms").parse::<f64>().ok();
            return Some((ms(q)? / ms(p)? * 100_000.0) as u64);
        }
    }
    let cpus: u64 = config.get("limits.cpu")?.trim().parse().ok()?;
    Some(cpus * 100_000)
}

/// Checks an instance's own config: server-managed keys (volatile.*, image.*) pass through,
/// the rest must be valid instance keys with valid values.
pub fn validate_config(config: &BTreeMap<String, String>) -> Result<()> {
    let user: BTreeMap<String, String> = config
        .iter()
        .filter(|(k, _)| !k.starts_with("volatile.") && !k.starts_with("image."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    validate_instance_config(&user)?;
    if let Some(m) = user.get("limits.memory").filter(|m| !m.is_empty())
        && parse_bytes(m).is_none()
    {
        return Err(Error::BadRequest(format!("Invalid value for limits.memory: \"{m}\"")));
    }
    if let Some(c) = user.get("limits.cpu").filter(|c| !c.is_empty())
        && c.parse::<u64>().is_err()
    {
        return Err(Error::BadRequest(format!("Invalid value for limits.cpu: \"{c}\" (a number of CPUs)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_lxd_does() {
        assert_eq!(parse_bytes("64MB"), Some(64_000_000));
        assert_eq!(parse_bytes("64MiB"), Some(64 * 1024 * 1024));
        assert_eq!(parse_bytes("512"), Some(512));
        assert_eq!(parse_bytes("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn cpu_limits_become_quotas() {
        let mut c = BTreeMap::new();
        c.insert("limits.cpu".to_string(), "2".to_string());
        assert_eq!(cpu_quota(&c), Some(200_000));
        c.insert("limits.cpu.allowance".to_string(), "20%".to_string());
        assert_eq!(cpu_quota(&c), Some(20_000));
        c.insert("limits.cpu.allowance".to_string(), "25ms/100ms".to_string());
        assert_eq!(cpu_quota(&c), Some(25_000));
    }
}
