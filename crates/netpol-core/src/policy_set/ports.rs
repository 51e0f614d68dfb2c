//! Port sets and atoms: every distinct `ports` list of the cluster once, and the split of each
//! protocol's port space into *atoms* (maximal port ranges that no rule boundary or named port
//! cuts), so that a set of ports is a small bitset over atoms.

use std::collections::HashMap;

use crate::bits::Bits;
use crate::hash::FxBuildHasher;
use crate::model::{AdminPort, Cluster, PolicyPort, PortSpec, Protocol};

/// Index of a protocol in [`Protocol::ALL`] order.
pub(crate) fn proto_index(p: Protocol) -> usize {
    match p {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
        Protocol::Sctp => 2,
    }
}

/// Splits each protocol's ports 1..=65535 into atoms; every atom index is global over protocols.
pub(crate) struct Atoms {
    /// Per protocol (in `Protocol::ALL` order): sorted atom start ports.
    starts: [Vec<u32>; 3],
    /// Per protocol: the global index of its first atom.
    offset: [usize; 3],
    pub(crate) total: usize,
}

impl Atoms {
    pub(crate) fn new(boundaries: [Vec<u32>; 3]) -> Self {
        let mut starts: [Vec<u32>; 3] = Default::default();
        let mut offset = [0usize; 3];
        let mut total = 0;
        for (i, b) in boundaries.into_iter().enumerate() {
            let mut s: Vec<u32> = b
                .into_iter()
                .filter(|&p| (2..=65535).contains(&p))
                .collect();
            s.push(1);
            s.sort_unstable();
            s.dedup();
            offset[i] = total;
            total += s.len();
            starts[i] = s;
        }
        Atoms {
            starts,
            offset,
            total,
        }
    }

    /// The atoms of a cluster: cut at every number, range end and named port value.
    pub(crate) fn of_cluster(cluster: &Cluster) -> Self {
        let mut boundaries: [Vec<u32>; 3] = Default::default();
        let mut cut = |p: Protocol, lo: u16, hi: u16| {
            let b = &mut boundaries[proto_index(p)];
            b.push(u32::from(lo));
            b.push(u32::from(hi) + 1);
        };
        for p in &cluster.policies {
            for r in p.ingress.iter().chain(&p.egress) {
                for port in &r.ports {
                    match &port.port {
                        Some(PortSpec::Number(x)) => cut(port.protocol, *x, *x),
                        Some(PortSpec::Range { start, end }) => cut(port.protocol, *start, *end),
                        Some(PortSpec::Named(_)) | None => {}
                    }
                }
            }
        }
        for p in &cluster.admin_policies {
            for r in p.ingress.iter().chain(&p.egress) {
                for port in r.ports.iter().flatten() {
                    if let AdminPort::Protocol {
                        protocol,
                        ports: Some((lo, hi)),
                    } = port
                    {
                        cut(*protocol, *lo, *hi);
                    }
                }
            }
        }
        for w in &cluster.workloads {
            for np in &w.named_ports {
                cut(np.protocol, np.port, np.port);
            }
        }
        Atoms::new(boundaries)
    }

    /// The global index of the atom holding `port` (1..=65535).
    pub(crate) fn index(&self, p: Protocol, port: u16) -> usize {
        let pi = proto_index(p);
        let starts = &self.starts[pi];
        let local = starts
            .partition_point(|&s| s <= u32::from(port))
            .saturating_sub(1);
        self.offset[pi] + local
    }

    /// Sets every atom of `lo..=hi` (clipped to 1..=65535); both ends must be atom boundaries,
    /// which holds for every range the analyzer asks about.
    pub(crate) fn set_range(&self, bits: &mut Bits, p: Protocol, lo: u16, hi: u16) {
        let lo = lo.max(1);
        if hi < lo {
            return;
        }
        let a = self.index(p, lo);
        let b = self.index(p, hi);
        for i in a..=b {
            bits.set(i);
        }
    }

    #[cfg(test)]
    pub(crate) fn set_protocol(&self, bits: &mut Bits, p: Protocol) {
        self.set_range(bits, p, 1, 65535);
    }

    /// Inclusive merged port ranges of one protocol in an atom set.
    pub(crate) fn ranges(&self, bits: &Bits, p: Protocol) -> Vec<(u16, u16)> {
        let pi = proto_index(p);
        let starts = &self.starts[pi];
        let mut out: Vec<(u16, u16)> = Vec::new();
        for (local, &start) in starts.iter().enumerate() {
            if !bits.get(self.offset[pi] + local) {
                continue;
            }
            let end = starts.get(local + 1).map_or(65535, |n| n - 1);
            let (s, e) = (clamp_port(start), clamp_port(end));
            match out.last_mut() {
                Some(last) if u32::from(last.1) + 1 == start => last.1 = e,
                _ => out.push((s, e)),
            }
        }
        out
    }
}

fn clamp_port(p: u32) -> u16 {
    u16::try_from(p).unwrap_or(u16::MAX)
}

/// The index of a distinct `ports` list in [`PortSets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortSetId(pub u32);

/// A numeric port entry: `lo..=hi` of one protocol (a protocol-only entry is `0..=65535`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NumericPorts {
    pub(crate) protocol: Protocol,
    pub(crate) lo: u16,
    pub(crate) hi: u16,
}

/// A named port entry, by interned name (see [`PortNames`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NamedPortRef {
    pub(crate) name: u32,
    pub(crate) protocol: Protocol,
}

/// One distinct `ports` list, compiled against the atoms.
#[derive(Clone, Debug)]
pub struct PortSet {
    /// The entries as written (empty: every port of every protocol, and every other protocol).
    pub entries: Vec<PolicyPort>,
    pub(crate) numeric: Vec<NumericPorts>,
    /// Named entries whose name some workload defines (the others match nothing).
    pub(crate) named: Vec<NamedPortRef>,
    /// The atoms of the numeric part (every atom when `entries` is empty).
    pub(crate) base_atoms: Bits,
}

impl PortSet {
    /// Every port of every protocol: the list is empty.
    pub fn all_ports(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a numeric entry (or the empty list) admits `protocol`/`port` for every peer.
    pub(crate) fn numeric_matches(&self, protocol: Protocol, port: u16) -> bool {
        self.all_ports()
            || self
                .numeric
                .iter()
                .any(|n| n.protocol == protocol && n.lo <= port && port <= n.hi)
    }

    fn compile(entries: &[PolicyPort], atoms: &Atoms, names: &PortNames) -> PortSet {
        let mut numeric = Vec::new();
        let mut named = Vec::new();
        let mut base_atoms = Bits::new(atoms.total);
        if entries.is_empty() {
            base_atoms = Bits::full(atoms.total);
        }
        for port in entries {
            let protocol = port.protocol;
            let (lo, hi) = match &port.port {
                None => (0, 65535),
                Some(PortSpec::Number(x)) => (*x, *x),
                Some(PortSpec::Range { start, end }) => (*start, *end),
                Some(PortSpec::Named(name)) => {
                    if let Some(name) = names.get(name) {
                        named.push(NamedPortRef { name, protocol });
                    }
                    continue;
                }
            };
            numeric.push(NumericPorts { protocol, lo, hi });
            atoms.set_range(&mut base_atoms, protocol, lo, hi);
        }
        PortSet {
            entries: entries.to_vec(),
            numeric,
            named,
            base_atoms,
        }
    }
}

/// Every port name some workload defines, interned to a small number.
#[derive(Default)]
pub(crate) struct PortNames(HashMap<String, u32, FxBuildHasher>);

impl PortNames {
    /// Every port name the cluster's workloads define.
    pub(crate) fn of_cluster(cluster: &Cluster) -> Self {
        let mut names = PortNames::default();
        for w in &cluster.workloads {
            for np in &w.named_ports {
                names.intern(&np.name);
            }
        }
        names
    }

    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.0.get(name) {
            return id;
        }
        let id = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        self.0.insert(name.to_string(), id);
        id
    }

    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        self.0.get(name).copied()
    }
}

/// Every distinct `ports` list of the cluster, compiled once.
pub(crate) struct PortSets {
    sets: Vec<PortSet>,
    index: HashMap<Vec<PolicyPort>, PortSetId, FxBuildHasher>,
}

impl PortSets {
    pub(crate) fn new() -> Self {
        PortSets {
            sets: Vec::new(),
            index: HashMap::default(),
        }
    }

    pub(crate) fn intern(
        &mut self,
        entries: &[PolicyPort],
        atoms: &Atoms,
        names: &PortNames,
    ) -> PortSetId {
        if let Some(&id) = self.index.get(entries) {
            return id;
        }
        let id = PortSetId(u32::try_from(self.sets.len()).unwrap_or(u32::MAX));
        self.sets.push(PortSet::compile(entries, atoms, names));
        self.index.insert(entries.to_vec(), id);
        id
    }

    pub(crate) fn get(&self, id: PortSetId) -> &PortSet {
        &self.sets[id.0 as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoms_split_at_every_boundary_and_merge_back_into_ranges() {
        let atoms = Atoms::new([vec![80, 81, 8000, 8011], vec![53, 54], vec![]]);
        let mut b = Bits::new(atoms.total);
        atoms.set_range(&mut b, Protocol::Tcp, 80, 80);
        atoms.set_range(&mut b, Protocol::Tcp, 81, 7999);
        atoms.set_range(&mut b, Protocol::Udp, 53, 53);
        assert_eq!(atoms.ranges(&b, Protocol::Tcp), vec![(80, 7999)]);
        assert_eq!(atoms.ranges(&b, Protocol::Udp), vec![(53, 53)]);
        assert!(atoms.ranges(&b, Protocol::Sctp).is_empty());
        let mut full = Bits::new(atoms.total);
        atoms.set_protocol(&mut full, Protocol::Sctp);
        assert_eq!(atoms.ranges(&full, Protocol::Sctp), vec![(1, 65535)]);
    }

    #[test]
    fn a_named_port_no_workload_defines_is_left_out_of_the_port_set() {
        let atoms = Atoms::new([vec![80, 81], vec![], vec![]]);
        let mut names = PortNames::default();
        names.intern("http");
        let entries = vec![
            PolicyPort {
                protocol: Protocol::Tcp,
                port: Some(PortSpec::Named("http".into())),
            },
            PolicyPort {
                protocol: Protocol::Tcp,
                port: Some(PortSpec::Named("nobody-has-it".into())),
            },
            PolicyPort {
                protocol: Protocol::Tcp,
                port: Some(PortSpec::Number(80)),
            },
        ];
        let set = PortSet::compile(&entries, &atoms, &names);
        assert_eq!(set.named.len(), 1);
        assert!(set.numeric_matches(Protocol::Tcp, 80));
        assert!(!set.numeric_matches(Protocol::Tcp, 81));
        assert_eq!(atoms.ranges(&set.base_atoms, Protocol::Tcp), vec![(80, 80)]);
    }
}
