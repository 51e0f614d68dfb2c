//! Peer classes of one direction: every address the relevant peers care about, classified by
//! the set of distinct peers matching it (plus, for egress, what the relevant named ports resolve
//! to on its workload). Workload addresses are classified through their identity in the policy
//! set (selector peers) and the ipBlock ranges (when ipBlocks match workloads); other addresses by
//! disjoint ranges split from every ipBlock.
//!
//! Class ids here are dense (0 = matches nothing, then the class keys in order); the naming pass
//! ([`crate::naming`]) replaces them by content-derived mark values.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use netpol_core::hash::FxBuildHasher;
use netpol_core::policy_set::identities::IdentityId;
use netpol_core::policy_set::peers::{PeerId, PeerKey};
use netpol_core::{Cluster, IpBlock, PolicySet, Protocol};

use crate::interval::{self, addr_key, key_addr, net_range};
use crate::{ExternalRange, PeerClass, WorkloadClass};

/// A named port of a classified workload: `name/PROTO=port`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ResolvedPort {
    pub(crate) name: String,
    pub(crate) protocol: Protocol,
    pub(crate) port: u16,
}

/// What a class stands for: the atoms (relevant peers, by index) matching an address and (egress)
/// the named ports of its workload.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ClassKey {
    pub(crate) atoms: Vec<usize>,
    pub(crate) named_ports: Vec<ResolvedPort>,
}

impl ClassKey {
    pub(crate) fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.named_ports
            .iter()
            .find(|p| p.name == name && p.protocol == protocol)
            .map(|p| p.port)
    }
}

/// The peer classes of one direction, with dense ids.
pub(crate) struct Classes {
    /// Relevant peer -> its atom index.
    pub(crate) atom_of: HashMap<PeerId, usize>,
    /// Atom -> the classes containing it.
    pub(crate) atom_classes: Vec<Vec<u32>>,
    /// Dense class id -> key (0: the empty key).
    pub(crate) keys: Vec<ClassKey>,
    pub(crate) classes: Vec<PeerClass>,
    pub(crate) workload_classes: BTreeMap<IpAddr, WorkloadClass>,
    pub(crate) external: Vec<ExternalRange>,
}

/// Disjoint ranges of one family, each with the atoms (blocks) containing it.
type Split = Vec<(u128, u128, BTreeSet<usize>)>;

/// Class keys, interned so each distinct key is built, compared and stored once.
#[derive(Default)]
struct Interner {
    index: HashMap<ClassKey, usize, FxBuildHasher>,
    keys: Vec<ClassKey>,
}

impl Interner {
    fn intern(&mut self, k: ClassKey) -> usize {
        if let Some(&i) = self.index.get(&k) {
            return i;
        }
        let i = self.keys.len();
        self.keys.push(k.clone());
        self.index.insert(k, i);
        i
    }
}

/// One workload address and the interned keys of its class and of its external ranges' class.
struct AddressKeys {
    address: IpAddr,
    workload: usize,
    own: usize,
    external: usize,
}

/// What classification needs.
pub(crate) struct ClassInput<'a> {
    pub(crate) cluster: &'a Cluster,
    pub(crate) set: &'a PolicySet,
    /// Relevant peers in [`PeerKey`] order (the atoms).
    pub(crate) atoms: Vec<PeerId>,
    /// Named ports the relevant rules use (egress: resolved on the destination workload).
    pub(crate) named: BTreeSet<(String, Protocol)>,
    pub(crate) egress: bool,
}

impl ClassInput<'_> {
    pub(crate) fn classify(self) -> Classes {
        let splits = self.external_splits();
        let mut interner = Interner::default();
        let addresses = self.workload_addresses(&splits, &mut interner);
        let mut ext_idx: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        for (fam, split) in splits.iter().enumerate() {
            for (_, _, s) in split {
                let atoms = s.iter().copied().collect();
                ext_idx[fam].push(interner.intern(ClassKey {
                    atoms,
                    named_ports: Vec::new(),
                }));
            }
        }
        let (keys, class_of) = dense_ids(interner.keys);
        let class_id = |i: usize| class_of.get(i).copied().unwrap_or(0);
        let workload_classes = self.workload_map(&addresses, &class_id);
        let mut external = Vec::new();
        for (fam, v6) in [(0usize, false), (1usize, true)] {
            for ((f, l, _), &i) in splits[fam].iter().zip(&ext_idx[fam]) {
                external.push(ExternalRange {
                    first: key_addr(*f, v6),
                    last: key_addr(*l, v6),
                    class: class_id(i),
                });
            }
        }
        let mut atom_classes: Vec<Vec<u32>> = vec![Vec::new(); self.atoms.len()];
        for (c, key) in keys.iter().enumerate() {
            for &a in &key.atoms {
                if let Some(v) = atom_classes.get_mut(a) {
                    v.push(u32::try_from(c).unwrap_or(u32::MAX));
                }
            }
        }
        let classes = self.render_classes(&keys);
        Classes {
            atom_of: self
                .atoms
                .iter()
                .enumerate()
                .map(|(i, &p)| (p, i))
                .collect(),
            atom_classes,
            keys,
            classes,
            workload_classes,
            external,
        }
    }

    fn key(&self, atom: usize) -> &PeerKey {
        self.set.peer(self.atoms[atom])
    }

    /// Per family, the disjoint ranges of every block atom.
    fn external_splits(&self) -> [Split; 2] {
        let blocks: Vec<(usize, &IpBlock)> = (0..self.atoms.len())
            .filter_map(|i| self.key(i).block().map(|b| (i, b)))
            .collect();
        [false, true].map(|v6| {
            let ranges: Vec<(u128, u128, usize)> = blocks
                .iter()
                .filter(|(_, b)| b.cidr.addr().is_ipv6() == v6)
                .flat_map(|(i, b)| block_ranges(b).into_iter().map(move |(f, l)| (f, l, *i)))
                .collect();
            interval::split(&ranges, v6)
        })
    }

    /// The class keys of every workload address.
    fn workload_addresses(&self, splits: &[Split; 2], interner: &mut Interner) -> Vec<AddressKeys> {
        let selectors: Vec<usize> = (0..self.atoms.len())
            .filter(|&i| self.key(i).block().is_none())
            .collect();
        // Selector atoms per identity: most workloads share their identity's answer.
        let mut by_identity: HashMap<IdentityId, Vec<usize>> = HashMap::new();
        let mut out = Vec::new();
        for (wi, w) in self.cluster.workloads.iter().enumerate() {
            if w.addresses.is_empty() {
                continue;
            }
            let Some(identity) = self.set.identity_of(wi) else {
                continue;
            };
            let sel = by_identity.entry(identity).or_insert_with(|| {
                selectors
                    .iter()
                    .copied()
                    .filter(|&i| self.set.peer_matches(self.atoms[i], identity))
                    .collect()
            });
            let named_ports: Vec<ResolvedPort> = if self.egress {
                self.named
                    .iter()
                    .filter_map(|(n, p)| {
                        w.resolve_named_port(n, *p).map(|port| ResolvedPort {
                            name: n.clone(),
                            protocol: *p,
                            port,
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            for &a in &w.addresses {
                let ext = external_atoms(splits, a);
                let mut atoms = sel.clone();
                if self.set.options().ipblock_matches_workloads {
                    atoms.extend(ext.iter().copied());
                    atoms.sort_unstable();
                    atoms.dedup();
                }
                let own = interner.intern(ClassKey {
                    atoms,
                    named_ports: named_ports.clone(),
                });
                let external = interner.intern(ClassKey {
                    atoms: ext,
                    named_ports: Vec::new(),
                });
                out.push(AddressKeys {
                    address: a,
                    workload: wi,
                    own,
                    external,
                });
            }
        }
        out
    }

    /// The workload map: only addresses whose class differs from their external ranges' class.
    fn workload_map(
        &self,
        addresses: &[AddressKeys],
        class_id: &dyn Fn(usize) -> u32,
    ) -> BTreeMap<IpAddr, WorkloadClass> {
        let mut list: Vec<(IpAddr, WorkloadClass)> = Vec::new();
        for k in addresses {
            let (c, e) = (class_id(k.own), class_id(k.external));
            if c != e {
                let workload = self.cluster.workloads[k.workload].key();
                list.push((k.address, WorkloadClass { class: c, workload }));
            }
        }
        // Sorted first (by the integer form, which orders like `IpAddr`, families apart) so the
        // map is built in bulk instead of by thousands of inserts. Stable: an address listed
        // twice keeps its last entry, as with inserts.
        let (mut v4, mut v6): (Vec<_>, Vec<_>) = list.into_iter().partition(|(a, _)| a.is_ipv4());
        v4.sort_by_key(|(a, _)| addr_key(*a));
        v6.sort_by_key(|(a, _)| addr_key(*a));
        v4.append(&mut v6);
        v4.into_iter().collect()
    }

    fn render_classes(&self, keys: &[ClassKey]) -> Vec<PeerClass> {
        keys.iter()
            .enumerate()
            .map(|(c, key)| PeerClass {
                id: u32::try_from(c).unwrap_or(u32::MAX),
                peers: key.atoms.iter().map(|&a| self.key(a).to_string()).collect(),
                named_ports: key
                    .named_ports
                    .iter()
                    .map(|p| format!("{}/{}={}", p.name, p.protocol, p.port))
                    .collect(),
            })
            .collect()
    }
}

/// Dense class ids: 0 for "matches nothing", then the keys in order. Returns the keys by id and
/// the id of every interned key.
fn dense_ids(mut interned: Vec<ClassKey>) -> (Vec<ClassKey>, Vec<u32>) {
    let empty = ClassKey::default();
    let mut sorted: Vec<usize> = (0..interned.len())
        .filter(|&i| interned[i] != empty)
        .collect();
    sorted.sort_unstable_by(|&a, &b| interned[a].cmp(&interned[b]));
    let mut class_of: Vec<u32> = vec![0; interned.len()];
    let mut keys: Vec<ClassKey> = vec![empty];
    for (rank, &i) in sorted.iter().enumerate() {
        class_of[i] = u32::try_from(rank + 1).unwrap_or(u32::MAX);
        keys.push(std::mem::take(&mut interned[i]));
    }
    (keys, class_of)
}

/// The block atoms whose ranges contain `a`.
fn external_atoms(splits: &[Split; 2], a: IpAddr) -> Vec<usize> {
    let fam = &splits[usize::from(a.is_ipv6())];
    let k = addr_key(a);
    let idx = fam.partition_point(|r| r.0 <= k);
    match idx.checked_sub(1).and_then(|i| fam.get(i)) {
        Some(r) if r.1 >= k => r.2.iter().copied().collect(),
        _ => Vec::new(),
    }
}

/// The address ranges of an ipBlock (its CIDR minus its holes), inclusive, in the CIDR's family.
pub(crate) fn block_ranges(b: &IpBlock) -> Vec<(u128, u128)> {
    let (first, last) = net_range(&b.cidr);
    let v6 = b.cidr.addr().is_ipv6();
    let mut holes: Vec<(u128, u128)> = b
        .except
        .iter()
        .filter(|e| e.addr().is_ipv6() == v6)
        .map(net_range)
        .collect();
    holes.sort();
    let mut out = Vec::new();
    let mut cursor = Some(first);
    for (h0, h1) in holes {
        let Some(c) = cursor else { break };
        if h1 < c || h0 > last {
            continue;
        }
        if h0 > c {
            out.push((c, h0 - 1));
        }
        cursor = if h1 >= last { None } else { Some(h1 + 1) };
    }
    if let Some(c) = cursor {
        if c <= last {
            out.push((c, last));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipblock_hole_at_the_end_of_its_cidr_leaves_only_the_front() {
        let b = IpBlock {
            cidr: "192.0.2.0/24".parse().unwrap(),
            except: vec![
                "192.0.2.128/25".parse().unwrap(),
                "192.0.2.0/30".parse().unwrap(),
            ],
        };
        let r: Vec<String> = block_ranges(&b)
            .iter()
            .map(|(f, l)| interval::render_range(*f, *l, false))
            .collect();
        assert_eq!(r, vec!["192.0.2.4-192.0.2.127".to_string()]);
    }
}
