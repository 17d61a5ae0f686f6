//! The outbound address policy (SPEC §6): which IP addresses a webhook may
//! reach. Loopback, private, CGNAT, link-local (the cloud metadata address
//! among them), multicast, unspecified and reserved ranges are refused, in
//! IPv4 and IPv6 and in the IPv6 forms that embed an IPv4 address, unless
//! the operator allow-lists a CIDR that contains the address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The policy: what is blocked by default, less the operator's allow-list.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
}

/// Why an address is refused, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedRange {
    Loopback,
    Private,
    SharedCgnat,
    LinkLocal,
    Multicast,
    Unspecified,
    Reserved,
    UniqueLocal,
}

impl std::fmt::Display for BlockedRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedCgnat => "shared (CGNAT)",
            Self::LinkLocal => "link-local",
            Self::Multicast => "multicast",
            Self::Unspecified => "unspecified",
            Self::Reserved => "reserved",
            Self::UniqueLocal => "unique local",
        })
    }
}

impl AddressPolicy {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// `Err(range)` when `ip` may not be dialled.
    pub fn check(&self, ip: IpAddr) -> Result<(), BlockedRange> {
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match blocked_range(ip) {
            Some(range) => Err(range),
            None => Ok(()),
        }
    }
}

/// The default-blocked range `ip` falls in, if any.
pub fn blocked_range(ip: IpAddr) -> Option<BlockedRange> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

fn blocked_v4(ip: Ipv4Addr) -> Option<BlockedRange> {
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        (0, _) => BlockedRange::Unspecified,
        (127, _) => BlockedRange::Loopback,
        (10, _) | (192, 168) => BlockedRange::Private,
        (172, b) if (16..32).contains(&b) => BlockedRange::Private,
        (100, b) if (64..128).contains(&b) => BlockedRange::SharedCgnat,
        (169, 254) => BlockedRange::LinkLocal,
        (224..=239, _) => BlockedRange::Multicast,
        (240..=255, _) => BlockedRange::Reserved,
        _ => return None,
    })
}

fn blocked_v6(ip: Ipv6Addr) -> Option<BlockedRange> {
    if ip.is_unspecified() {
        return Some(BlockedRange::Unspecified);
    }
    if ip.is_loopback() {
        return Some(BlockedRange::Loopback);
    }
    let segments = ip.segments();
    // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64
    // (64:ff9b::a.b.c.d) addresses reach the embedded IPv4 address.
    let embeds_v4 = matches!(
        segments,
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _]
    ) || matches!(segments, [0x64, 0xff9b, 0, 0, 0, 0, _, _]);
    if embeds_v4 {
        let [.., c, d] = segments;
        let v4 = Ipv4Addr::new((c >> 8) as u8, c as u8, (d >> 8) as u8, d as u8);
        return blocked_v4(v4);
    }
    match segments[0] {
        s if s & 0xfe00 == 0xfc00 => Some(BlockedRange::UniqueLocal),
        s if s & 0xffc0 == 0xfe80 => Some(BlockedRange::LinkLocal),
        s if s & 0xffc0 == 0xfec0 => Some(BlockedRange::Reserved),
        s if s & 0xff00 == 0xff00 => Some(BlockedRange::Multicast),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_table() {
        let cases: &[(&str, Option<BlockedRange>)] = &[
            ("127.0.0.1", Some(BlockedRange::Loopback)),
            ("127.255.0.9", Some(BlockedRange::Loopback)),
            ("10.1.2.3", Some(BlockedRange::Private)),
            ("172.16.0.1", Some(BlockedRange::Private)),
            ("172.31.255.255", Some(BlockedRange::Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(BlockedRange::Private)),
            ("100.64.0.1", Some(BlockedRange::SharedCgnat)),
            ("100.128.0.1", None),
            ("169.254.169.254", Some(BlockedRange::LinkLocal)),
            ("224.0.0.1", Some(BlockedRange::Multicast)),
            ("0.0.0.0", Some(BlockedRange::Unspecified)),
            ("255.255.255.255", Some(BlockedRange::Reserved)),
            ("93.184.216.34", None),
            ("::1", Some(BlockedRange::Loopback)),
            ("::", Some(BlockedRange::Unspecified)),
            ("fd00::1", Some(BlockedRange::UniqueLocal)),
            ("fe80::1", Some(BlockedRange::LinkLocal)),
            ("ff02::1", Some(BlockedRange::Multicast)),
            ("::ffff:127.0.0.1", Some(BlockedRange::Loopback)),
            ("::ffff:169.254.169.254", Some(BlockedRange::LinkLocal)),
            ("::ffff:10.0.0.1", Some(BlockedRange::Private)),
            ("64:ff9b::a00:1", Some(BlockedRange::Private)),
            ("::ffff:93.184.216.34", None),
            ("2606:4700::1111", None),
        ];
        for (ip, want) in cases {
            assert_eq!(blocked_range(ip.parse().unwrap()), *want, "{ip}");
        }
    }

    #[test]
    fn allow_list_opens_only_its_cidrs() {
        let policy = AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert_eq!(
            policy.check("10.0.0.1".parse().unwrap()),
            Err(BlockedRange::Private)
        );
        assert!(policy.check("8.8.8.8".parse().unwrap()).is_ok());
    }
}
