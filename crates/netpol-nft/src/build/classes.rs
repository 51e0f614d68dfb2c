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

/// Class keys, interned so each distinct key is built, compared and stored once (in the map
/// only: [`Interner::into_keys`] lists them by number at the end, without a clone per key).
#[derive(Default)]
struct Interner {
    index: HashMap<ClassKey, usize, FxBuildHasher>,
}

impl Interner {
    fn intern(&mut self, k: ClassKey) -> usize {
        let next = self.index.len();
        *self.index.entry(k).or_insert(next)
    }

    /// The interned keys, by the number `intern` gave each.
    fn into_keys(self) -> Vec<ClassKey> {
        let mut keys = vec![ClassKey::default(); self.index.len()];
        for (k, i) in self.index {
            keys[i] = k;
        }
        keys
    }
}

/// Everything an address's class keys depend on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct AddressShape {
    identity: IdentityId,
    v6: bool,
    /// The disjoint external range holding the address (index into its family's split).
    range: Option<usize>,
    /// Egress: the relevant named ports resolved on the address's workload.
    ports: Vec<Option<u16>>,
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
        let (keys, class_of) = dense_ids(interner.into_keys());
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

    /// Per family, the disjoint ranges of every address atom (ipBlocks, admin networks and the
    /// addresses of the Node objects an admin `nodes` peer selects).
    fn external_splits(&self) -> [Split; 2] {
        let ranges: Vec<(usize, bool, (u128, u128))> = (0..self.atoms.len())
            .flat_map(|i| {
                self.atom_ranges(i)
                    .into_iter()
                    .map(move |(v6, r)| (i, v6, r))
            })
            .collect();
        [false, true].map(|v6| {
            let family: Vec<(u128, u128, usize)> = ranges
                .iter()
                .filter(|(_, f, _)| *f == v6)
                .map(|(i, _, (f, l))| (*f, *l, *i))
                .collect();
            interval::split(&family, v6)
        })
    }

    /// The address ranges an atom matches outside its workloads (each with its family); none for
    /// a selector. A `domainNames` peer is not an atom at all (the kernel matches no name).
    fn atom_ranges(&self, atom: usize) -> Vec<(bool, (u128, u128))> {
        match self.key(atom) {
            PeerKey::Block(b) => {
                let v6 = b.cidr.addr().is_ipv6();
                block_ranges(b).into_iter().map(|r| (v6, r)).collect()
            }
            PeerKey::Network(n) => vec![(n.addr().is_ipv6(), net_range(n))],
            PeerKey::Nodes(selector) => self
                .cluster
                .nodes
                .iter()
                .filter(|n| selector.matches(&n.labels))
                .flat_map(|n| n.addresses.iter())
                .map(|a| (a.is_ipv6(), (addr_key(*a), addr_key(*a))))
                .collect(),
            PeerKey::Selector { .. } | PeerKey::DomainNames(_) => Vec::new(),
        }
    }

    /// Whether an address atom also matches the workload addresses in its ranges: an ipBlock
    /// when the option says so, an admin network always, a node's address never (the API's
    /// `nodes` are Node objects, not workloads).
    fn matches_workloads(&self, atom: usize) -> bool {
        match self.key(atom) {
            PeerKey::Block(_) => self.set.options().ipblock_matches_workloads,
            PeerKey::Network(_) => true,
            PeerKey::Nodes(_) | PeerKey::Selector { .. } | PeerKey::DomainNames(_) => false,
        }
    }

    /// The class keys of every workload address.
    ///
    /// An address's keys depend only on its workload's identity, the disjoint external range
    /// holding it and (egress) the numbers its workload's named ports resolve to, so they are
    /// built and interned once per distinct [`AddressShape`]: ten thousand workloads share a few
    /// thousand shapes.
    fn workload_addresses(&self, splits: &[Split; 2], interner: &mut Interner) -> Vec<AddressKeys> {
        let mut shapes: HashMap<AddressShape, (usize, usize), FxBuildHasher> = HashMap::default();
        let mut selector_atoms: Vec<Option<Vec<usize>>> = Vec::new();
        let mut out = Vec::new();
        for (wi, w) in self.cluster.workloads.iter().enumerate() {
            if w.addresses.is_empty() {
                continue;
            }
            let Some(identity) = self.set.identity_of(wi) else {
                continue;
            };
            let ports = self.resolved_port_numbers(w);
            for &a in &w.addresses {
                let shape = AddressShape {
                    identity,
                    v6: a.is_ipv6(),
                    range: external_range(splits, a),
                    ports: ports.clone(),
                };
                let (own, external) = match shapes.get(&shape) {
                    Some(&keys) => keys,
                    None => {
                        let sel = self.selector_atoms(&mut selector_atoms, identity);
                        let keys = self.shape_keys(splits, &shape, sel, interner);
                        shapes.insert(shape, keys);
                        keys
                    }
                };
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

    /// The selector atoms matching an identity, computed once per identity.
    fn selector_atoms<'m>(
        &self,
        memo: &'m mut Vec<Option<Vec<usize>>>,
        identity: IdentityId,
    ) -> &'m [usize] {
        let i = identity.0 as usize;
        if memo.len() <= i {
            memo.resize(i + 1, None);
        }
        memo[i].get_or_insert_with(|| {
            (0..self.atoms.len())
                .filter(|&a| {
                    matches!(self.key(a), PeerKey::Selector { .. })
                        && self.set.peer_matches(self.atoms[a], identity)
                })
                .collect()
        })
    }

    /// Egress: what each relevant named port resolves to on `w` (in `named` order).
    fn resolved_port_numbers(&self, w: &netpol_core::Workload) -> Vec<Option<u16>> {
        if !self.egress {
            return Vec::new();
        }
        self.named
            .iter()
            .map(|(n, p)| w.resolve_named_port(n, *p))
            .collect()
    }

    /// The interned own and external keys of one address shape.
    fn shape_keys(
        &self,
        splits: &[Split; 2],
        shape: &AddressShape,
        selector_atoms: &[usize],
        interner: &mut Interner,
    ) -> (usize, usize) {
        let ext: Vec<usize> = shape
            .range
            .map(|r| splits[usize::from(shape.v6)][r].2.iter().copied().collect())
            .unwrap_or_default();
        let mut atoms = selector_atoms.to_vec();
        atoms.extend(ext.iter().copied().filter(|&a| self.matches_workloads(a)));
        atoms.sort_unstable();
        atoms.dedup();
        let named_ports = self
            .named
            .iter()
            .zip(&shape.ports)
            .filter_map(|((name, protocol), port)| {
                port.map(|port| ResolvedPort {
                    name: name.clone(),
                    protocol: *protocol,
                    port,
                })
            })
            .collect();
        let own = interner.intern(ClassKey { atoms, named_ports });
        let external = interner.intern(ClassKey {
            atoms: ext,
            named_ports: Vec::new(),
        });
        (own, external)
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

/// The index of the disjoint range (of `a`'s family) containing `a`, if any.
fn external_range(splits: &[Split; 2], a: IpAddr) -> Option<usize> {
    let fam = &splits[usize::from(a.is_ipv6())];
    let k = addr_key(a);
    let idx = fam.partition_point(|r| r.0 <= k).checked_sub(1)?;
    (fam.get(idx)?.1 >= k).then_some(idx)
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
