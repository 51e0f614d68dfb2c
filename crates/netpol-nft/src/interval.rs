//! Address arithmetic: addresses as integers, CIDRs as inclusive ranges, and the split of many
//! overlapping ranges into disjoint ones (what an nftables interval map requires).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// An address as an integer; IPv4 and IPv6 are kept apart by the callers.
pub(crate) fn addr_key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The address of an integer in one family. IPv4 keys are always below 2^32 here.
pub(crate) fn key_addr(key: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(key))
    } else {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(key).unwrap_or(u32::MAX)))
    }
}

/// Inclusive integer bounds of a network.
pub(crate) fn net_range(net: &IpNet) -> (u128, u128) {
    (addr_key(net.network()), addr_key(net.broadcast()))
}

fn family_max(v6: bool) -> u128 {
    if v6 {
        u128::MAX
    } else {
        u128::from(u32::MAX)
    }
}

/// Splits the union of `ranges` (inclusive, one family, each tagged with an item) into disjoint
/// ranges, each with the set of items covering it; adjacent ranges with equal sets are merged and
/// ranges covered by nothing are left out. Output is sorted by first address.
pub(crate) fn split(
    ranges: &[(u128, u128, usize)],
    v6: bool,
) -> Vec<(u128, u128, BTreeSet<usize>)> {
    let max = family_max(v6);
    let mut bounds: BTreeSet<u128> = BTreeSet::new();
    for &(first, last, _) in ranges {
        bounds.insert(first);
        if last < max {
            bounds.insert(last + 1);
        }
    }
    let bounds: Vec<u128> = bounds.into_iter().collect();
    let mut out: Vec<(u128, u128, BTreeSet<usize>)> = Vec::new();
    for (i, &start) in bounds.iter().enumerate() {
        let end = match bounds.get(i + 1) {
            Some(next) => next - 1,
            None => max,
        };
        // Every range either covers the whole elementary interval or none of it.
        let items: BTreeSet<usize> = ranges
            .iter()
            .filter(|(f, l, _)| *f <= start && start <= *l)
            .map(|(_, _, item)| *item)
            .collect();
        if items.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(prev) if prev.1.checked_add(1) == Some(start) && prev.2 == items => prev.1 = end,
            _ => out.push((start, end, items)),
        }
    }
    out
}

/// nft element text for an inclusive range: a prefix when it is one, else `first-last`.
pub(crate) fn render_range(first: u128, last: u128, v6: bool) -> String {
    let bits: u32 = if v6 { 128 } else { 32 };
    let size = last.wrapping_sub(first).wrapping_add(1);
    if first == last {
        return key_addr(first, v6).to_string();
    }
    // A prefix: size is a power of two (or the whole space) and first is aligned to it.
    let whole = size == 0 || (!v6 && size == 1u128 << 32);
    if whole && first == 0 {
        return format!("{}/0", key_addr(0, v6));
    }
    if size.is_power_of_two() && first.is_multiple_of(size) {
        let prefix = bits - size.trailing_zeros();
        return format!("{}/{}", key_addr(first, v6), prefix);
    }
    format!("{}-{}", key_addr(first, v6), key_addr(last, v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_blocks_split_into_disjoint_ranges_with_their_owners() {
        let a: IpNet = "10.0.0.0/8".parse().unwrap();
        let hole: IpNet = "10.1.0.0/16".parse().unwrap();
        let b: IpNet = "10.1.2.0/24".parse().unwrap();
        let (a0, a1) = net_range(&a);
        let (b0, b1) = net_range(&b);
        let (h0, h1) = net_range(&hole);
        // Item 0 = a minus hole expressed as two ranges, item 1 = b.
        let ranges = vec![(a0, h0 - 1, 0), (h1 + 1, a1, 0), (b0, b1, 1)];
        let out = split(&ranges, false);
        let rendered: Vec<(String, Vec<usize>)> = out
            .iter()
            .map(|(f, l, s)| (render_range(*f, *l, false), s.iter().copied().collect()))
            .collect();
        assert_eq!(
            rendered,
            vec![
                ("10.0.0.0/16".to_string(), vec![0]),
                ("10.1.2.0/24".to_string(), vec![1]),
                ("10.2.0.0-10.255.255.255".to_string(), vec![0]),
            ]
        );
    }

    #[test]
    fn whole_address_spaces_render_as_slash_zero() {
        assert_eq!(render_range(0, u128::from(u32::MAX), false), "0.0.0.0/0");
        assert_eq!(render_range(0, u128::MAX, true), "::/0");
        let out = split(&[(0, u128::MAX, 3)], true);
        assert_eq!(out, vec![(0, u128::MAX, BTreeSet::from([3]))]);
    }
}
