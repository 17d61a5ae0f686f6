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
    /// An IPv6 range that reaches IPv4 through a translator or tunnel whose
    /// embedded address cannot be read reliably (Teredo, local-use NAT64).
    Tunnelled,
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
            Self::Tunnelled => "an IPv4 tunnel or translator",
        })
    }
}

impl AddressPolicy {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// `Err(range)` when `ip` may not be dialled.
    pub fn check(&self, ip: IpAddr) -> Result<(), BlockedRange> {
        let allowed = |ip: IpAddr| self.allow.iter().any(|net| net.contains(&ip));
        if allowed(ip) {
            return Ok(());
        }
        // An IPv6 form that embeds an IPv4 address reaches that address, so
        // it is allowed exactly when the IPv4 address is.
        if let IpAddr::V6(v6) = ip
            && let Some(Embedded::V4(v4)) = embedded_v4(v6)
            && allowed(IpAddr::V4(v4))
        {
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

/// What an IPv6 address says about the IPv4 address it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Embedded {
    /// The IPv4 address it stands for (mapped, SIIT, compatible, NAT64, 6to4).
    V4(Ipv4Addr),
    /// It reaches IPv4 through a tunnel or translator whose IPv4 address
    /// cannot be read reliably: refused outright.
    Opaque,
}

/// The IPv4 address an IPv6 form embeds, by the ranges that carry one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Embedded> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| {
        Embedded::V4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ))
    };
    Some(match s {
        // ::ffff:0:0/96 IPv4-mapped, ::ffff:0:0:0/96 SIIT (RFC 6145),
        // ::/96 IPv4-compatible (deprecated), 64:ff9b::/96 NAT64 (RFC 6052).
        [0, 0, 0, 0, 0, 0xffff, c, d]
        | [0, 0, 0, 0, 0xffff, 0, c, d]
        | [0, 0, 0, 0, 0, 0, c, d]
        | [0x64, 0xff9b, 0, 0, 0, 0, c, d] => v4(c, d),
        // 2002::/16 6to4 (RFC 3056): the IPv4 address follows the prefix.
        [0x2002, a, b, ..] => v4(a, b),
        // 64:ff9b:1::/48 local-use NAT64 (RFC 8215): the operator picks the
        // prefix length, so where the IPv4 address sits is not knowable.
        [0x64, 0xff9b, 1, ..] => Embedded::Opaque,
        // 2001::/32 Teredo (RFC 4380): relays reach an obfuscated IPv4 client.
        [0x2001, 0, ..] => Embedded::Opaque,
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
    match embedded_v4(ip) {
        Some(Embedded::V4(v4)) => return blocked_v4(v4),
        Some(Embedded::Opaque) => return Some(BlockedRange::Tunnelled),
        None => {}
    }
    match ip.segments()[0] {
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
            // SIIT ::ffff:0:0:0/96
            ("::ffff:0:7f00:1", Some(BlockedRange::Loopback)),
            ("::ffff:0:a9fe:a9fe", Some(BlockedRange::LinkLocal)),
            ("::ffff:0:c0a8:101", Some(BlockedRange::Private)),
            ("::ffff:0:5db8:d822", None),
            // IPv4-compatible ::/96
            ("::127.0.0.1", Some(BlockedRange::Loopback)),
            ("::10.0.0.1", Some(BlockedRange::Private)),
            ("::169.254.169.254", Some(BlockedRange::LinkLocal)),
            ("::93.184.216.34", None),
            // NAT64 64:ff9b::/96
            ("64:ff9b::127.0.0.1", Some(BlockedRange::Loopback)),
            ("64:ff9b::169.254.169.254", Some(BlockedRange::LinkLocal)),
            ("64:ff9b::93.184.216.34", None),
            // local-use NAT64 64:ff9b:1::/48: refused whatever it embeds
            ("64:ff9b:1::7f00:1", Some(BlockedRange::Tunnelled)),
            ("64:ff9b:1:7f00:1::", Some(BlockedRange::Tunnelled)),
            ("64:ff9b:1::5db8:d822", Some(BlockedRange::Tunnelled)),
            // 6to4 2002::/16
            ("2002:7f00:1::", Some(BlockedRange::Loopback)),
            ("2002:7f00:1::1", Some(BlockedRange::Loopback)),
            ("2002:a9fe:a9fe::1", Some(BlockedRange::LinkLocal)),
            ("2002:0a00:0001::", Some(BlockedRange::Private)),
            ("2002:5db8:d822::1", None),
            // Teredo 2001::/32: refused
            (
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                Some(BlockedRange::Tunnelled),
            ),
            ("2001::1", Some(BlockedRange::Tunnelled)),
            ("2001:db9::1", None),
            ("2001:4860:4860::8888", None),
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
        // The IPv6 forms of an allowed IPv4 address are allowed with it.
        for ip in ["::ffff:127.0.0.1", "::ffff:0:7f00:1", "2002:7f00:1::1"] {
            assert!(policy.check(ip.parse().unwrap()).is_ok(), "{ip}");
        }
        assert_eq!(
            policy.check("2002:a00:1::".parse().unwrap()),
            Err(BlockedRange::Private)
        );
        assert_eq!(
            policy.check("2001::7f00:1".parse().unwrap()),
            Err(BlockedRange::Tunnelled)
        );
    }
}
