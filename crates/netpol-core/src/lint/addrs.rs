//! Exact sets of IP addresses as sorted, disjoint, inclusive intervals per family, so that
//! "which addresses does this rule admit" is answered from the ipBlocks themselves, never by
//! sampling an address (lint's redundancy check and the exposure report both need it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::Serialize;

use crate::model::IpBlock;

/// Inclusive `(first, last)` address intervals of one family, as integers.
type Intervals = Vec<(u128, u128)>;

const V4_LAST: u128 = u32::MAX as u128;

/// A set of IPv4 and IPv6 addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddrSet {
    /// `[IPv4, IPv6]`, each sorted, disjoint and not adjacent (merged).
    families: [Intervals; 2],
}

fn net_interval(net: &IpNet) -> (usize, u128, u128) {
    match net {
        IpNet::V4(n) => (
            0,
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        ),
        IpNet::V6(n) => (
            1,
            u128::from(n.network()),
            u128::from(n.network()) | !u128::from(n.netmask()),
        ),
    }
}

fn addr_value(a: IpAddr) -> (usize, u128) {
    match a {
        IpAddr::V4(v) => (0, u128::from(u32::from(v))),
        IpAddr::V6(v) => (1, u128::from(v)),
    }
}

/// Merges overlapping and adjacent intervals of an unsorted list.
fn normalize(mut list: Intervals) -> Intervals {
    list.sort_unstable();
    let mut out: Intervals = Vec::with_capacity(list.len());
    for (lo, hi) in list {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn subtract(a: &[(u128, u128)], b: &[(u128, u128)]) -> Intervals {
    let mut out = Vec::new();
    let mut j = 0;
    for &(lo, hi) in a {
        let mut cur = lo;
        let mut done = false;
        while j < b.len() && b[j].1 < cur {
            j += 1;
        }
        let mut k = j;
        while k < b.len() && b[k].0 <= hi {
            let (blo, bhi) = b[k];
            if blo > cur {
                out.push((cur, blo - 1));
            }
            if bhi >= hi {
                done = true;
                break;
            }
            cur = cur.max(bhi + 1);
            k += 1;
        }
        if !done {
            out.push((cur, hi));
        }
    }
    out
}

impl AddrSet {
    /// No address.
    pub fn empty() -> Self {
        AddrSet::default()
    }

    /// Every IPv4 and every IPv6 address.
    pub fn everything() -> Self {
        AddrSet {
            families: [vec![(0, V4_LAST)], vec![(0, u128::MAX)]],
        }
    }

    /// The addresses of one CIDR.
    pub fn of_net(net: &IpNet) -> Self {
        let (f, lo, hi) = net_interval(net);
        let mut s = AddrSet::empty();
        s.families[f].push((lo, hi));
        s
    }

    /// The addresses an ipBlock contains: its CIDR minus its holes.
    pub fn of_block(block: &IpBlock) -> Self {
        let mut holes = AddrSet::empty();
        for e in &block.except {
            holes = holes.union(&AddrSet::of_net(e));
        }
        AddrSet::of_net(&block.cidr).minus(&holes)
    }

    /// These single addresses.
    pub fn of_addresses<'a>(addresses: impl IntoIterator<Item = &'a IpAddr>) -> Self {
        let mut lists: [Intervals; 2] = Default::default();
        for a in addresses {
            let (f, v) = addr_value(*a);
            lists[f].push((v, v));
        }
        let [v4, v6] = lists;
        AddrSet {
            families: [normalize(v4), normalize(v6)],
        }
    }

    /// Addresses in either set.
    pub fn union(&self, other: &AddrSet) -> AddrSet {
        let merge = |f: usize| {
            let mut all = self.families[f].clone();
            all.extend_from_slice(&other.families[f]);
            normalize(all)
        };
        AddrSet {
            families: [merge(0), merge(1)],
        }
    }

    /// Addresses of `self` not in `other`.
    pub fn minus(&self, other: &AddrSet) -> AddrSet {
        AddrSet {
            families: [
                subtract(&self.families[0], &other.families[0]),
                subtract(&self.families[1], &other.families[1]),
            ],
        }
    }

    /// Whether the set has no address.
    pub fn is_empty(&self) -> bool {
        self.families.iter().all(Vec::is_empty)
    }

    /// Whether every address of `self` is in `other`.
    pub fn is_subset(&self, other: &AddrSet) -> bool {
        self.minus(other).is_empty()
    }

    /// The intervals of `self` that hold some address of `other`, whole.
    pub fn keep_overlapping(&self, other: &AddrSet) -> AddrSet {
        let keep = |f: usize| -> Intervals {
            let theirs = &other.families[f];
            self.families[f]
                .iter()
                .copied()
                .filter(|&(lo, hi)| {
                    let i = theirs.partition_point(|&(_, end)| end < lo);
                    theirs.get(i).is_some_and(|&(start, _)| start <= hi)
                })
                .collect()
        };
        AddrSet {
            families: [keep(0), keep(1)],
        }
    }

    /// Whether some address of `net` is in the set.
    pub fn overlaps(&self, net: &IpNet) -> bool {
        let (f, lo, hi) = net_interval(net);
        let list = &self.families[f];
        let i = list.partition_point(|&(_, end)| end < lo);
        list.get(i).is_some_and(|&(start, _)| start <= hi)
    }

    /// Whether `address` is in the set.
    pub fn contains(&self, address: IpAddr) -> bool {
        let (f, v) = addr_value(address);
        let list = &self.families[f];
        let i = list.partition_point(|&(lo, _)| lo <= v);
        i > 0 && list[i - 1].1 >= v
    }

    /// The set as the fewest CIDRs that cover exactly it, IPv4 first, each family ascending.
    pub fn to_cidrs(&self) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (f, list) in self.families.iter().enumerate() {
            let bits: u32 = if f == 0 { 32 } else { 128 };
            for &(lo, hi) in list {
                cidrs_of_range(f, bits, lo, hi, &mut out);
            }
        }
        out
    }

    /// A representative address of the set (the first address of the first interval), if any.
    pub fn first(&self) -> Option<IpAddr> {
        self.families
            .iter()
            .enumerate()
            .find_map(|(f, list)| list.first().map(|&(lo, _)| to_addr(f, lo)))
    }
}

fn to_addr(family: usize, v: u128) -> IpAddr {
    if family == 0 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

/// Splits `lo..=hi` into maximal aligned blocks.
fn cidrs_of_range(family: usize, bits: u32, lo: u128, hi: u128, out: &mut Vec<IpNet>) {
    let mut cur = lo;
    loop {
        // The largest block starting at `cur` (aligned) that does not pass `hi`.
        let mut size_log = if cur == 0 {
            bits
        } else {
            cur.trailing_zeros().min(bits)
        };
        while size_log > 0 {
            let span = if size_log >= 128 {
                u128::MAX
            } else {
                (1u128 << size_log) - 1
            };
            if cur.checked_add(span).is_some_and(|end| end <= hi) {
                break;
            }
            size_log -= 1;
        }
        let prefix = u8::try_from(bits - size_log).unwrap_or(0);
        if let Ok(net) = IpNet::new(to_addr(family, cur), prefix) {
            out.push(net);
        }
        let span = if size_log >= 128 {
            u128::MAX
        } else {
            (1u128 << size_log) - 1
        };
        match cur.checked_add(span) {
            Some(end) if end < hi => cur = end + 1,
            _ => return,
        }
    }
}

impl Serialize for AddrSet {
    /// As the list of CIDRs ([`AddrSet::to_cidrs`]).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let cidrs: Vec<String> = self.to_cidrs().iter().map(|n| n.to_string()).collect();
        cidrs.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn a_block_minus_its_hole_is_the_two_halves_around_it() {
        let b = IpBlock {
            cidr: net("192.0.2.0/24"),
            except: vec![net("192.0.2.0/25")],
        };
        let s = AddrSet::of_block(&b);
        assert_eq!(s.to_cidrs(), vec![net("192.0.2.128/25")]);
        assert!(!s.contains("192.0.2.1".parse().unwrap()));
        assert!(s.contains("192.0.2.200".parse().unwrap()));
    }

    #[test]
    fn everything_minus_one_address_prints_as_the_cidrs_around_it() {
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let s = AddrSet::of_net(&net("10.0.0.0/30")).minus(&AddrSet::of_addresses([&one]));
        assert_eq!(s.to_cidrs(), vec![net("10.0.0.0/32"), net("10.0.0.2/31")]);
        assert!(AddrSet::everything().to_cidrs().contains(&net("::/0")));
        assert!(AddrSet::everything().to_cidrs().contains(&net("0.0.0.0/0")));
    }

    #[test]
    fn a_union_of_two_halves_covers_the_whole() {
        let halves =
            AddrSet::of_net(&net("192.0.2.0/25")).union(&AddrSet::of_net(&net("192.0.2.128/25")));
        assert!(AddrSet::of_net(&net("192.0.2.0/24")).is_subset(&halves));
        assert!(!AddrSet::of_net(&net("192.0.0.0/16")).is_subset(&halves));
        assert_eq!(halves.to_cidrs(), vec![net("192.0.2.0/24")]);
    }
}
