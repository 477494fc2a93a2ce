//! Which IP addresses an outbound call may reach: only globally reachable
//! unicast ones, as the IANA IPv4 and IPv6 Special-Purpose Address
//! Registries record them.
//!
//! It is an allowlist in effect: IPv6 outside `2000::/3` (global unicast) is
//! refused whole, and inside the registries' blocks whose "Globally
//! Reachable" is False (or N/A) are refused, less the few globally reachable
//! exceptions the registry lists within them. IPv4 has no such outer block,
//! so every registry row is listed, with multicast (`224/4`), which has a
//! registry of its own.
//!
//! An IPv6 address that reaches an IPv4 one is judged by the IPv4 address it
//! reaches: IPv4-mapped `::ffff:a.b.c.d`, NAT64's `64:ff9b::a.b.c.d`, 6to4's
//! `2002:aabb:ccdd::` and Teredo's server and client. The deprecated
//! embeddings (IPv4-compatible `::a.b.c.d`, SIIT's `::ffff:0:a.b.c.d`) and
//! the local-use NAT64 prefix `64:ff9b:1::/48` are refused whatever they
//! embed: nothing on the public internet answers at them, only a translator
//! inside some network.
//!
//! The tables follow the registries as of 2025 (RFC 6890 and its updates up
//! to RFC 9637, RFC 9602, RFC 9665 and RFC 9780).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kinds of address no outbound call may reach; `Display` completes
/// "must not point at a … address".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (shared, carrier-grade NAT),
    /// fc00::/7 (unique local) and fec0::/10 (the deprecated site-local).
    Private,
    /// 127/8 and ::1.
    Loopback,
    /// 169.254/16 (cloud metadata services live there) and fe80::/10.
    LinkLocal,
    /// 0.0.0.0/8 ("this network") and ::.
    Unspecified,
    /// 255.255.255.255.
    Broadcast,
    /// 224/4 and ff00::/8.
    Multicast,
    /// 240/4 besides the broadcast address; IPv6 outside `2000::/3` that no
    /// other kind names (reserved by the IETF, or a deprecated embedding of
    /// a public IPv4 address).
    Reserved,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 198.18/15 and 2001:2::/48.
    Benchmarking,
    /// The other blocks the registries mark not globally reachable: IETF
    /// protocol assignments (192.0.0/24, 2001::/23), the deprecated 6to4
    /// relay anycast (192.88.99/24), discard-only and dummy prefixes,
    /// local-use NAT64 (64:ff9b:1::/48), SRv6 SIDs (5f00::/16).
    SpecialPurpose,
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressKind::Private => "private",
            AddressKind::Loopback => "loopback",
            AddressKind::LinkLocal => "link-local",
            AddressKind::Unspecified => "unspecified",
            AddressKind::Broadcast => "broadcast",
            AddressKind::Multicast => "multicast",
            AddressKind::Reserved => "reserved",
            AddressKind::Documentation => "documentation",
            AddressKind::Benchmarking => "benchmarking",
            AddressKind::SpecialPurpose => "special-purpose",
        })
    }
}

/// The kind of an address no outbound call may reach, or `None` for a
/// globally reachable one.
pub fn forbidden_address(ip: IpAddr) -> Option<AddressKind> {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

/// What an IPv6 block's registry row means here. (An IPv4 row is an
/// `Option<AddressKind>`: refused as that kind, or `None`, reachable.)
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Globally reachable: an exception inside a refused block listed after
    /// it, or global unicast itself.
    Reachable,
    Refused(AddressKind),
    /// A block that reaches IPv4 addresses written into it.
    Embeds(Embedding),
}

/// Where an IPv6 block carries IPv4 addresses, and what reaching them means.
#[derive(Debug, Clone, Copy)]
enum Embedding {
    /// The last 32 bits are the address reached (mapped, NAT64 `/96`):
    /// judged by it.
    Last32,
    /// The last 32 bits, in a deprecated form no public host answers at:
    /// refused, named after the embedded address when that is refused too
    /// (`::169.254.169.254` is link-local), else reserved.
    Deprecated,
    /// 6to4: the relay sends to the IPv4 address in bits 16..48.
    SixToFour,
    /// Teredo: the server is bits 32..64 and the client the last 32 bits,
    /// inverted; a packet goes to both, so both are judged.
    Teredo,
}

/// First match wins, so an exception comes before the block it is cut from;
/// an address no row matches is reachable.
const V4: &[(Ipv4Addr, u8, Option<AddressKind>)] = {
    use AddressKind::*;
    const REACHABLE: Option<AddressKind> = None;
    const fn refused(kind: AddressKind) -> Option<AddressKind> {
        Some(kind)
    }
    &[
        // "This network"; 0.0.0.0/32 "this host on this network" is inside it.
        (Ipv4Addr::new(0, 0, 0, 0), 8, refused(Unspecified)),
        (Ipv4Addr::new(10, 0, 0, 0), 8, refused(Private)),
        // Shared address space (carrier-grade NAT).
        (Ipv4Addr::new(100, 64, 0, 0), 10, refused(Private)),
        (Ipv4Addr::new(127, 0, 0, 0), 8, refused(Loopback)),
        (Ipv4Addr::new(169, 254, 0, 0), 16, refused(LinkLocal)),
        (Ipv4Addr::new(172, 16, 0, 0), 12, refused(Private)),
        // Port Control Protocol anycast and TURN anycast: globally reachable
        // exceptions inside the IETF protocol assignments.
        (Ipv4Addr::new(192, 0, 0, 9), 32, REACHABLE),
        (Ipv4Addr::new(192, 0, 0, 10), 32, REACHABLE),
        // IETF protocol assignments: the service continuity prefix (/29), the
        // dummy address (.8), NAT64/DNS64 discovery (.170, .171) and the rest.
        (Ipv4Addr::new(192, 0, 0, 0), 24, refused(SpecialPurpose)),
        (Ipv4Addr::new(192, 0, 2, 0), 24, refused(Documentation)),
        // The deprecated 6to4 relay anycast (RFC 7526), refused whole, the
        // 6a44 relay (.2) with it: a relay, never a webhook receiver.
        (Ipv4Addr::new(192, 88, 99, 0), 24, refused(SpecialPurpose)),
        (Ipv4Addr::new(192, 168, 0, 0), 16, refused(Private)),
        (Ipv4Addr::new(198, 18, 0, 0), 15, refused(Benchmarking)),
        (Ipv4Addr::new(198, 51, 100, 0), 24, refused(Documentation)),
        (Ipv4Addr::new(203, 0, 113, 0), 24, refused(Documentation)),
        // Not in the special-purpose registry but the multicast one.
        (Ipv4Addr::new(224, 0, 0, 0), 4, refused(Multicast)),
        (Ipv4Addr::new(255, 255, 255, 255), 32, refused(Broadcast)),
        (Ipv4Addr::new(240, 0, 0, 0), 4, refused(Reserved)),
        // AS112 (192.31.196/24) and AMT (192.52.193/24) are globally
        // reachable rows: not listed, like the rest of the space.
    ]
};

/// First match wins, as for [`V4`]; an address no row matches is outside
/// global unicast, reserved by the IETF.
const V6: &[(Ipv6Addr, u8, Rule)] = {
    use AddressKind::*;
    use Embedding::*;
    use Rule::{Embeds, Reachable, Refused};
    const fn v6(a: u16, b: u16, c: u16, d: u16, h: u16) -> Ipv6Addr {
        Ipv6Addr::new(a, b, c, d, 0, 0, 0, h)
    }
    &[
        (Ipv6Addr::UNSPECIFIED, 128, Refused(Unspecified)),
        (Ipv6Addr::LOCALHOST, 128, Refused(Loopback)),
        // IPv4-compatible `::a.b.c.d` (deprecated by RFC 4291).
        (Ipv6Addr::UNSPECIFIED, 96, Embeds(Deprecated)),
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, Embeds(Last32)),
        // SIIT's IPv4-translated `::ffff:0:a.b.c.d` (RFC 2765, since dropped).
        (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, Embeds(Deprecated)),
        (v6(0x64, 0xff9b, 0, 0, 0), 96, Embeds(Last32)),
        // Local-use NAT64 (RFC 8215): where it embeds depends on the
        // network's own prefix length, and only that network translates it.
        (v6(0x64, 0xff9b, 1, 0, 0), 48, Refused(SpecialPurpose)),
        // Discard-only (RFC 6666) and the dummy prefix (RFC 9780).
        (v6(0x100, 0, 0, 0, 0), 64, Refused(SpecialPurpose)),
        (v6(0x100, 0, 0, 1, 0), 64, Refused(SpecialPurpose)),
        // The globally reachable exceptions inside 2001::/23: PCP, TURN and
        // DNS-SD SRP anycast, AMT, AS112-v6, ORCHIDv2, drone remote ID tags.
        (v6(0x2001, 1, 0, 0, 1), 128, Reachable),
        (v6(0x2001, 1, 0, 0, 2), 128, Reachable),
        (v6(0x2001, 1, 0, 0, 3), 128, Reachable),
        (v6(0x2001, 3, 0, 0, 0), 32, Reachable),
        (v6(0x2001, 4, 0x112, 0, 0), 48, Reachable),
        (v6(0x2001, 0x20, 0, 0, 0), 28, Reachable),
        (v6(0x2001, 0x30, 0, 0, 0), 28, Reachable),
        (v6(0x2001, 0, 0, 0, 0), 32, Embeds(Teredo)),
        (v6(0x2001, 2, 0, 0, 0), 48, Refused(Benchmarking)),
        // IETF protocol assignments, with the deprecated ORCHID 2001:10::/28.
        (v6(0x2001, 0, 0, 0, 0), 23, Refused(SpecialPurpose)),
        (v6(0x2001, 0xdb8, 0, 0, 0), 32, Refused(Documentation)),
        (v6(0x2002, 0, 0, 0, 0), 16, Embeds(SixToFour)),
        (v6(0x3fff, 0, 0, 0, 0), 20, Refused(Documentation)),
        // Segment routing SIDs (RFC 9602).
        (v6(0x5f00, 0, 0, 0, 0), 16, Refused(SpecialPurpose)),
        (v6(0xfc00, 0, 0, 0, 0), 7, Refused(Private)),
        (v6(0xfe80, 0, 0, 0, 0), 10, Refused(LinkLocal)),
        // Site-local, deprecated by RFC 3879: private in effect.
        (v6(0xfec0, 0, 0, 0, 0), 10, Refused(Private)),
        (v6(0xff00, 0, 0, 0, 0), 8, Refused(Multicast)),
        // Global unicast, the only IPv6 space assigned for the internet;
        // 2620:4f:8000::/48 (AS112 direct delegation) is a reachable row in it.
        (v6(0x2000, 0, 0, 0, 0), 3, Reachable),
    ]
};

fn forbidden_v4(ip: Ipv4Addr) -> Option<AddressKind> {
    let bits = u32::from(ip);
    V4.iter()
        .find(|(net, len, _)| bits & u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0) == u32::from(*net))
        .and_then(|(_, _, kind)| *kind)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<AddressKind> {
    let bits = u128::from(ip);
    let Some((_, _, rule)) = V6
        .iter()
        .find(|(net, len, _)| bits & u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0) == u128::from(*net))
    else {
        return Some(AddressKind::Reserved);
    };
    // Each truncation keeps exactly the 32 bits the embedding puts there.
    let last32 = Ipv4Addr::from(bits as u32);
    match rule {
        Rule::Reachable => None,
        Rule::Refused(kind) => Some(*kind),
        Rule::Embeds(Embedding::Last32) => forbidden_v4(last32),
        Rule::Embeds(Embedding::Deprecated) => Some(forbidden_v4(last32).unwrap_or(AddressKind::Reserved)),
        Rule::Embeds(Embedding::SixToFour) => forbidden_v4(Ipv4Addr::from((bits >> 80) as u32)),
        Rule::Embeds(Embedding::Teredo) => {
            let server = Ipv4Addr::from((bits >> 64) as u32);
            let client = Ipv4Addr::from(!(bits as u32));
            forbidden_v4(client).or_else(|| forbidden_v4(server))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressKind::*;

    const REACHABLE: Option<AddressKind> = None;

    fn check(cases: &[(&str, Option<AddressKind>)]) {
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(ip, want)| {
                let got = forbidden_address(ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}")));
                (got != *want).then(|| format!("{ip}: {got:?}, not {want:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "judged wrongly:\n{}", wrong.join("\n"));
    }

    /// Every row of the IPv4 registry (and multicast): its first and last
    /// address, and the addresses just outside it.
    #[test]
    fn ipv4_follows_the_special_purpose_registry() {
        check(&[
            ("0.0.0.0", Some(Unspecified)),
            ("0.255.255.255", Some(Unspecified)),
            ("1.0.0.0", REACHABLE),
            ("9.255.255.255", REACHABLE),
            ("10.0.0.0", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("11.0.0.0", REACHABLE),
            ("100.63.255.255", REACHABLE),
            ("100.64.0.0", Some(Private)),
            ("100.127.255.255", Some(Private)),
            ("100.128.0.0", REACHABLE),
            ("126.255.255.255", REACHABLE),
            ("127.0.0.0", Some(Loopback)),
            ("127.255.255.255", Some(Loopback)),
            ("128.0.0.0", REACHABLE),
            ("169.253.255.255", REACHABLE),
            ("169.254.0.0", Some(LinkLocal)),
            ("169.254.169.254", Some(LinkLocal)),
            ("169.254.255.255", Some(LinkLocal)),
            ("169.255.0.0", REACHABLE),
            ("172.15.255.255", REACHABLE),
            ("172.16.0.0", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.0", REACHABLE),
            ("191.255.255.255", REACHABLE),
            // IETF protocol assignments, with their two reachable anycasts.
            ("192.0.0.0", Some(SpecialPurpose)),
            ("192.0.0.7", Some(SpecialPurpose)),
            ("192.0.0.8", Some(SpecialPurpose)),
            ("192.0.0.9", REACHABLE),
            ("192.0.0.10", REACHABLE),
            ("192.0.0.11", Some(SpecialPurpose)),
            ("192.0.0.170", Some(SpecialPurpose)),
            ("192.0.0.171", Some(SpecialPurpose)),
            ("192.0.0.255", Some(SpecialPurpose)),
            ("192.0.1.0", REACHABLE),
            ("192.0.1.255", REACHABLE),
            ("192.0.2.0", Some(Documentation)),
            ("192.0.2.1", Some(Documentation)),
            ("192.0.2.255", Some(Documentation)),
            ("192.0.3.0", REACHABLE),
            // AS112-v4 and AMT: globally reachable rows.
            ("192.31.196.0", REACHABLE),
            ("192.31.196.255", REACHABLE),
            ("192.52.193.0", REACHABLE),
            ("192.52.193.255", REACHABLE),
            ("192.88.98.255", REACHABLE),
            ("192.88.99.0", Some(SpecialPurpose)),
            ("192.88.99.2", Some(SpecialPurpose)),
            ("192.88.99.255", Some(SpecialPurpose)),
            ("192.88.100.0", REACHABLE),
            ("192.167.255.255", REACHABLE),
            ("192.168.0.0", Some(Private)),
            ("192.168.255.255", Some(Private)),
            ("192.169.0.0", REACHABLE),
            ("198.17.255.255", REACHABLE),
            ("198.18.0.0", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("198.20.0.0", REACHABLE),
            ("198.51.99.255", REACHABLE),
            ("198.51.100.0", Some(Documentation)),
            ("198.51.100.255", Some(Documentation)),
            ("198.51.101.0", REACHABLE),
            ("203.0.112.255", REACHABLE),
            ("203.0.113.0", Some(Documentation)),
            ("203.0.113.255", Some(Documentation)),
            ("203.0.114.0", REACHABLE),
            ("223.255.255.255", REACHABLE),
            ("224.0.0.0", Some(Multicast)),
            ("239.255.255.255", Some(Multicast)),
            ("240.0.0.0", Some(Reserved)),
            ("255.255.255.254", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            ("8.8.8.8", REACHABLE),
            ("93.184.216.34", REACHABLE),
        ]);
    }

    /// Every row of the IPv6 registry, the edges of global unicast and the
    /// other blocks outside it.
    #[test]
    fn ipv6_follows_the_special_purpose_registry() {
        check(&[
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("2000::", REACHABLE),
            ("2606:4700:4700::1111", REACHABLE),
            ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", REACHABLE),
            ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", REACHABLE),
            ("4000::", Some(Reserved)),
            ("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("64:ff9b:0:0:0:1::", Some(Reserved)),
            ("64:ff9b::ffff:ffff", Some(Broadcast)),
            ("64:ff9b:1::", Some(SpecialPurpose)),
            ("64:ff9b:1::808:808", Some(SpecialPurpose)),
            ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Some(SpecialPurpose)),
            ("64:ff9b:2::", Some(Reserved)),
            ("100::", Some(SpecialPurpose)),
            ("100::ffff:ffff:ffff:ffff", Some(SpecialPurpose)),
            ("100:0:0:1::", Some(SpecialPurpose)),
            ("100:0:0:1:ffff:ffff:ffff:ffff", Some(SpecialPurpose)),
            ("100:0:0:2::", Some(Reserved)),
            // IETF protocol assignments and the reachable rows inside them.
            ("2001:1::", Some(SpecialPurpose)),
            ("2001:1::1", REACHABLE),
            ("2001:1::2", REACHABLE),
            ("2001:1::3", REACHABLE),
            ("2001:1::4", Some(SpecialPurpose)),
            ("2001:1:ffff:ffff:ffff:ffff:ffff:ffff", Some(SpecialPurpose)),
            ("2001:2::", Some(Benchmarking)),
            ("2001:2:0:ffff:ffff:ffff:ffff:ffff", Some(Benchmarking)),
            ("2001:2:1::", Some(SpecialPurpose)),
            ("2001:2:ffff:ffff:ffff:ffff:ffff:ffff", Some(SpecialPurpose)),
            ("2001:3::", REACHABLE),
            ("2001:3:ffff:ffff:ffff:ffff:ffff:ffff", REACHABLE),
            ("2001:4::", Some(SpecialPurpose)),
            ("2001:4:111:ffff:ffff:ffff:ffff:ffff", Some(SpecialPurpose)),
            ("2001:4:112::", REACHABLE),
            ("2001:4:112:ffff:ffff:ffff:ffff:ffff", REACHABLE),
            ("2001:4:113::", Some(SpecialPurpose)),
            ("2001:10::", Some(SpecialPurpose)),
            ("2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", Some(SpecialPurpose)),
            ("2001:20::", REACHABLE),
            ("2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", REACHABLE),
            ("2001:30::", REACHABLE),
            ("2001:3f:ffff:ffff:ffff:ffff:ffff:ffff", REACHABLE),
            ("2001:40::", Some(SpecialPurpose)),
            ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", Some(SpecialPurpose)),
            ("2001:200::", REACHABLE),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", REACHABLE),
            ("2001:db8::", Some(Documentation)),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Some(Documentation)),
            ("2001:db9::", REACHABLE),
            ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", REACHABLE),
            ("2003::", REACHABLE),
            // AS112 direct delegation: a reachable row.
            ("2620:4f:8000::", REACHABLE),
            ("3fff::", Some(Documentation)),
            ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Documentation)),
            ("3fff:1000::", REACHABLE),
            ("5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("5f00::", Some(SpecialPurpose)),
            ("5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(SpecialPurpose)),
            ("5f01::", Some(Reserved)),
            ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("fc00::", Some(Private)),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Private)),
            ("fe00::", Some(Reserved)),
            ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("fe80::", Some(LinkLocal)),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(LinkLocal)),
            ("fec0::", Some(Private)),
            ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Private)),
            ("ff00::", Some(Multicast)),
            ("ff0e::1", Some(Multicast)),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Multicast)),
        ]);
    }

    /// Each way an IPv6 address carries an IPv4 one, decoded.
    #[test]
    fn ipv6_embedding_ipv4_is_judged_by_what_it_reaches() {
        check(&[
            // IPv4-mapped: reached as the IPv4 address itself.
            ("::ffff:8.8.8.8", REACHABLE),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:192.0.2.1", Some(Documentation)),
            ("::ffff:198.18.0.1", Some(Benchmarking)),
            ("::ffff:192.0.0.9", REACHABLE),
            // IPv4-compatible and SIIT: deprecated, refused even when public.
            ("::2", Some(Unspecified)),
            ("::8.8.8.8", Some(Reserved)),
            ("::127.0.0.1", Some(Loopback)),
            ("::169.254.169.254", Some(LinkLocal)),
            ("::255.255.255.255", Some(Broadcast)),
            ("::1:0:0", Some(Reserved)),
            ("::fffe:ffff:ffff", Some(Reserved)),
            ("::ffff:0:8.8.8.8", Some(Reserved)),
            ("::ffff:0:10.0.0.1", Some(Private)),
            ("::ffff:0:169.254.169.254", Some(LinkLocal)),
            ("::1:ffff:0:0", Some(Reserved)),
            // NAT64's well-known prefix: the translator reaches the IPv4 address.
            ("64:ff9b::8.8.8.8", REACHABLE),
            ("64:ff9b::10.0.0.1", Some(Private)),
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::192.0.2.1", Some(Documentation)),
            ("64:ff9b::0.0.0.0", Some(Unspecified)),
            // 6to4: bits 16..48.
            ("2002::", Some(Unspecified)),
            ("2002:808:808::1", REACHABLE),
            ("2002:a9fe:a9fe::", Some(LinkLocal)),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:c000:0204::", Some(Documentation)),
            ("2002:c612::", Some(Benchmarking)),
            ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Broadcast)),
            // Teredo: the server is bits 32..64, the client the last 32 bits
            // inverted. RFC 4380's example: server 65.54.227.120, client
            // 192.0.2.45 (documentation).
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some(Documentation)),
            // Server 8.8.4.4, client 8.8.8.8 (inverted f7f7:f7f7).
            ("2001:0:808:404::f7f7:f7f7", REACHABLE),
            // Client 10.0.0.1, 127.0.0.1; server 169.254.169.254, 192.168.0.1.
            ("2001:0:808:404::f5ff:fffe", Some(Private)),
            ("2001:0:808:404::80ff:fffe", Some(Loopback)),
            ("2001:0:a9fe:a9fe::f7f7:f7f7", Some(LinkLocal)),
            ("2001:0:c0a8:1::f7f7:f7f7", Some(Private)),
            // The edges of the Teredo /32: all-zero bits invert to the
            // broadcast client, all-one bits to the unspecified one.
            ("2001::", Some(Broadcast)),
            ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", Some(Unspecified)),
        ]);
    }
}
