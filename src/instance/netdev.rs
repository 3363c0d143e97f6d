//! A running container's network interfaces as its own network namespace counts them, read
//! from `/proc/<init>/net/dev` and `/proc/<init>/net/if_inet6` (both answer for the namespace
//! of the process they belong to), with MTU, hardware address and flags from the container's
//! own /sys (read through openat2 inside its root, so nothing it puts there can point outside).

use std::io::Read;
use std::path::Path;

use super::files::{Content, Root};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    /// IPv6 addresses with their prefix length.
    pub inet6: Vec<(String, u8)>,
    pub mtu: u64,
    pub hwaddr: String,
    pub up: bool,
    pub loopback: bool,
}

/// The interfaces of the network namespace `pid` lives in (empty if it is gone).
pub fn read(pid: i32) -> Vec<Interface> {
    let proc_net = Path::new("/proc").join(pid.to_string()).join("net");
    let mut out = parse_dev(&std::fs::read_to_string(proc_net.join("dev")).unwrap_or_default());
    for (name, address, prefix) in parse_inet6(&std::fs::read_to_string(proc_net.join("if_inet6")).unwrap_or_default()) {
        if let Some(i) = out.iter_mut().find(|i| i.name == name) {
            i.inet6.push((address, prefix));
        }
    }
    if let Ok(root) = Root::open(Some(pid), Path::new("/")) {
        for i in out.iter_mut() {
            let attr = |a: &str| sysfs_value(&root, &format!("/sys/class/net/{}/{a}", i.name));
            i.mtu = attr("mtu").and_then(|v| v.parse().ok()).unwrap_or(0);
            i.hwaddr = attr("address").unwrap_or_default();
            let flags = attr("flags").and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok()).unwrap_or(0);
            i.up = flags & libc::IFF_UP as u64 != 0;
            i.loopback = attr("type").as_deref() == Some("772");
        }
    }
    out
}

/// A short attribute file of the container's /sys, trimmed.
fn sysfs_value(root: &Root, path: &str) -> Option<String> {
    let (_, Content::File(f)) = root.read(path).ok()? else { return None };
    let mut s = String::new();
    f.take(256).read_to_string(&mut s).ok()?;
    Some(s.trim().to_string())
}

fn parse_dev(text: &str) -> Vec<Interface> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let n: Vec<u64> = counters.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            (n.len() >= 10).then(|| Interface {
                name: name.trim().to_string(),
                rx_bytes: n[0],
                rx_packets: n[1],
                tx_bytes: n[8],
                tx_packets: n[9],
                ..Default::default()
            })
        })
        .collect()
}

/// `if_inet6` lines: address (32 hex digits), index, prefix length (hex), scope, flags, name.
fn parse_inet6(text: &str) -> Vec<(String, String, u8)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (hex, prefix, name) = (f.first()?, f.get(2)?, f.get(5)?);
            let bytes: Vec<u8> =
                (0..16).map(|i| u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()).collect::<Option<_>>()?;
            let octets: [u8; 16] = bytes.try_into().ok()?;
            let address = std::net::Ipv6Addr::from(octets).to_string();
            Some((name.to_string(), address, u8::from_str_radix(prefix, 16).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_addresses_parse() {
        let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     560       7    0    0    0     0          0         0      560       7    0    0    0     0       0          0\n";
        let i = parse_dev(dev);
        assert_eq!(i.len(), 1);
        assert_eq!((i[0].name.as_str(), i[0].rx_bytes, i[0].tx_packets), ("lo", 560, 7));
        let v6 = parse_inet6("00000000000000000000000000000001 01 80 10 80       lo\n");
        assert_eq!(v6, vec![("lo".to_string(), "::1".to_string(), 128)]);
    }
}
