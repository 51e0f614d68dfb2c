//! The pieces of the admin policy CRDs' validation that are more than a range or an enum: CEL's
//! `isCIDR` (with the CRD's `maxLength: 43`) and the `DomainName` pattern.

use std::net::IpAddr;

use ipnet::IpNet;

/// The `DomainName` pattern of both API versions, as the CRD writes it (v1alpha1 writes
/// `[a-zA-z0-9]`, a typo upstream that also admits ``[\]^_` ``; netpol holds both versions to
/// the v1alpha2 pattern).
pub(crate) const DOMAIN_NAME_PATTERN: &str = r"^(\*\.)?([a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$";

/// The CRDs' `maxLength` of a CIDR.
pub(crate) const CIDR_MAX_LENGTH: usize = 43;

/// A CIDR as CEL's `isCIDR` accepts it (Go's `netip.ParsePrefix`: no leading zeros in IPv4
/// octets or in the prefix length, no zone), and the network it stands for.
pub(crate) struct AdminCidr {
    /// The network, host bits cleared.
    pub net: IpNet,
    /// Whether the text had bits set past the prefix length (`10.0.0.1/8`): `isCIDR` accepts
    /// it and implementations match the masked network.
    pub had_host_bits: bool,
}

/// `isCIDR(s)`: `Some` when CEL accepts it.
pub(crate) fn is_cidr(s: &str) -> Option<AdminCidr> {
    let (addr, len) = s.split_once('/')?;
    let digits_ok = !len.is_empty()
        && len.len() <= 3
        && len.bytes().all(|c| c.is_ascii_digit())
        && (len == "0" || !len.starts_with('0'));
    if !digits_ok {
        return None;
    }
    let prefix: u8 = len.parse().ok()?;
    // Rust's parser, like netip's, refuses IPv4 octets with leading zeros and zones.
    let ip: IpAddr = addr.parse().ok()?;
    let net = IpNet::new(ip, prefix).ok()?;
    Some(AdminCidr {
        net: net.trunc(),
        had_host_bits: net.trunc().addr() != ip,
    })
}

/// Whether `s` matches [`DOMAIN_NAME_PATTERN`]: an optional `*.` prefix, two or more labels of
/// letters, digits, `-` and `_` that start and end with a letter or digit, and an optional final
/// dot.
pub(crate) fn is_domain_name(s: &str) -> bool {
    let s = s.strip_prefix("*.").unwrap_or(s);
    let s = s.strip_suffix('.').unwrap_or(s);
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() >= 2 && labels.iter().all(|l| is_domain_label(l))
}

fn is_domain_label(l: &str) -> bool {
    let b = l.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_cidr_accepts_what_netip_parse_prefix_accepts() {
        assert_eq!(is_cidr("10.0.0.0/8").unwrap().net.to_string(), "10.0.0.0/8");
        assert_eq!(
            is_cidr("2001:db8::/32").unwrap().net.to_string(),
            "2001:db8::/32"
        );
        assert_eq!(is_cidr("0.0.0.0/0").unwrap().net.to_string(), "0.0.0.0/0");
        let c = is_cidr("10.1.2.3/8").unwrap();
        assert!(c.had_host_bits);
        assert_eq!(c.net.to_string(), "10.0.0.0/8");
        assert!(!is_cidr("10.0.0.0/8").unwrap().had_host_bits);
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "010.0.0.0/8",
            "10.0.0.0/08",
            "10.0.0.0/",
            "fe80::1%eth0/64",
            "2001:db8::/129",
            "example.com/8",
        ] {
            assert!(is_cidr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn domain_names_follow_the_crd_pattern() {
        for good in [
            "kubernetes.io",
            "*.kubernetes.io",
            "blog.kubernetes.io.",
            "my_host.example.com",
            "a-b.c",
        ] {
            assert!(is_domain_name(good), "{good}");
        }
        for bad in [
            "kubernetes",
            "*.io.*",
            "*kubernetes.io",
            "www.*.io",
            "-a.io",
            "a-.io",
            "a..io",
            "a.io..",
            "",
            "*.",
        ] {
            assert!(!is_domain_name(bad), "{bad}");
        }
    }
}
