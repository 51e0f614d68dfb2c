//! Bulk analyses over every ordered pair of workloads: truth tables for one protocol/port and the
//! full connectivity map, computed without evaluating pairs one by one.
//!
//! How: workloads that no selector, named port or ipBlock can tell apart are grouped into
//! *identities* (same namespace, labels, named ports and — only when ipBlocks can match workloads
//! — the same ipBlock membership of the addresses flows would use). Every distinct selector is
//! evaluated once into a bitset over identities; a rule becomes the bitset of identities its peers
//! match. Truth-table rows are ORs of those bitsets. The connectivity map splits each protocol's
//! port space into *atoms* (maximal port ranges no rule boundary or named port cuts), so a port
//! set is a small bitset over atoms, and identical results are shared between pairs.
//!
//! The reference for all of this is [`crate::eval::evaluate`]; the property tests compare the two.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use fixedbitset::FixedBitSet;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::bits::Bits;
use crate::model::{
    Cluster, EvalOptions, IpBlock, LabelSelector, Labels, Peer, PortSpec, Protocol, Workload,
};

/// The names outputs use for workloads, by index into `cluster.workloads`: `namespace/name`, or
/// `kind/namespace/name` (`vm/p/a`, `pod/p/a`) for the rare keys that a Pod and a VM share, so
/// that JSON object keys stay unique.
pub fn output_keys(cluster: &Cluster) -> Vec<String> {
    let mut count: HashMap<String, usize> = HashMap::new();
    for w in &cluster.workloads {
        *count.entry(w.key()).or_default() += 1;
    }
    cluster
        .workloads
        .iter()
        .map(|w| {
            let k = w.key();
            if count.get(&k).copied().unwrap_or(0) > 1 {
                format!("{}/{k}", w.kind.short_name())
            } else {
                k
            }
        })
        .collect()
}

/// Workload indices sorted by `namespace/name`, then kind: the order of every output.
pub fn workload_order(cluster: &Cluster) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cluster.workloads.len()).collect();
    order.sort_by_cached_key(|&i| {
        let w = &cluster.workloads[i];
        (w.namespace.clone(), w.name.clone(), w.kind)
    });
    order
}

/// An address family, for choosing which address of a workload a flow uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Family {
    V4,
    V6,
}

fn family(a: &IpAddr) -> Family {
    if a.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    }
}

/// The families of a workload's addresses in order of first appearance; this is all
/// [`crate::eval::flow_addresses`] needs to pick a pair's family. Encoded as 0..5.
fn family_class(w: &Workload) -> usize {
    let mut order: Vec<Family> = Vec::new();
    for a in &w.addresses {
        let f = family(a);
        if !order.contains(&f) {
            order.push(f);
        }
    }
    match order.as_slice() {
        [] => 0,
        [Family::V4] => 1,
        [Family::V6] => 2,
        [Family::V4, Family::V6] => 3,
        _ => 4,
    }
}

const CLASS_FAMILIES: [&[Family]; 5] = [
    &[],
    &[Family::V4],
    &[Family::V6],
    &[Family::V4, Family::V6],
    &[Family::V6, Family::V4],
];

/// The family a flow between workloads of these classes uses (see `flow_addresses`).
fn pair_family(src_class: usize, dst_class: usize) -> Option<Family> {
    let src = CLASS_FAMILIES.get(src_class)?;
    let dst = CLASS_FAMILIES.get(dst_class)?;
    src.iter().copied().find(|f| dst.contains(f))
}

/// Splits each protocol's ports 1..=65535 into atoms; every atom index is global over protocols.
struct Atoms {
    /// Per protocol (in `Protocol::ALL` order): sorted atom start ports.
    starts: [Vec<u32>; 3],
    /// Per protocol: the global index of its first atom.
    offset: [usize; 3],
    total: usize,
}

fn proto_index(p: Protocol) -> usize {
    match p {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
        Protocol::Sctp => 2,
    }
}

impl Atoms {
    fn new(boundaries: [Vec<u32>; 3]) -> Self {
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

    /// The global index of the atom holding `port` (1..=65535).
    fn index(&self, p: Protocol, port: u16) -> usize {
        let pi = proto_index(p);
        let starts = &self.starts[pi];
        let local = starts
            .partition_point(|&s| s <= u32::from(port))
            .saturating_sub(1);
        self.offset[pi] + local
    }

    /// Sets every atom of `lo..=hi` (clipped to 1..=65535); both ends must be atom boundaries,
    /// which holds for every range the analyzer asks about.
    fn set_range(&self, bits: &mut Bits, p: Protocol, lo: u16, hi: u16) {
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

    fn set_protocol(&self, bits: &mut Bits, p: Protocol) {
        self.set_range(bits, p, 1, 65535);
    }

    /// Inclusive merged port ranges of one protocol in an atom set.
    fn ranges(&self, bits: &Bits, p: Protocol) -> Vec<(u16, u16)> {
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

/// A rule, compiled against identities.
struct CompiledRule {
    /// Identities the owning policy selects (the workloads this rule can open up).
    targets: Bits,
    /// Identities the rule's selector peers match (everyone when the rule has no peers).
    selected_peers: Bits,
    /// Identities whose IPv4 / IPv6 flow address one of the rule's ipBlocks contains.
    ip_peers: [Bits; 2],
    has_ip_peers: bool,
    /// `ports` is empty: every port of every protocol.
    all_ports: bool,
    /// Numeric entries: (protocol, lo, hi); `None` port = 1..=65535.
    numeric: Vec<(Protocol, u16, u16)>,
    /// Named entries: (interned name, protocol); names no workload defines are left out, since
    /// they match nothing.
    named: Vec<(u32, Protocol)>,
    /// The atoms of the numeric part (and everything, for `all_ports`).
    base_atoms: Bits,
}

impl CompiledRule {
    /// Whether identity `x` is among the peers when the flow uses family `f`.
    fn peer_contains(&self, x: usize, f: Option<Family>) -> bool {
        self.selected_peers.get(x)
            || (self.has_ip_peers
                && match f {
                    Some(Family::V4) => self.ip_peers[0].get(x),
                    Some(Family::V6) => self.ip_peers[1].get(x),
                    None => false,
                })
    }

    fn numeric_matches(&self, protocol: Protocol, port: u16) -> bool {
        self.all_ports
            || self
                .numeric
                .iter()
                .any(|(p, lo, hi)| *p == protocol && *lo <= port && port <= *hi)
    }
}

/// What one identity stands for.
struct Identity {
    /// Family class (see `family_class`).
    class: usize,
    /// Named ports: the first port of each (interned name, protocol), as `resolve_named_port`
    /// finds it.
    named_ports: Vec<(u32, Protocol, u16)>,
}

impl Identity {
    fn named_port(&self, name: u32, protocol: Protocol) -> Option<u16> {
        self.named_ports
            .iter()
            .find(|(n, p, _)| *n == name && *p == protocol)
            .map(|(_, _, port)| *port)
    }
}

/// Precomputed indexes for the bulk analyses of one cluster and one set of options.
pub struct Analyzer {
    workload_count: usize,
    keys: Vec<String>,
    order: Vec<usize>,
    /// Workload index -> identity index.
    identity_of: Vec<usize>,
    identities: Vec<Identity>,
    rules: Vec<CompiledRule>,
    /// Identity -> egress rules of the policies isolating it for egress.
    egress_rules_of: Vec<Vec<usize>>,
    /// Identity -> ingress rules of the policies isolating it for ingress.
    ingress_rules_of: Vec<Vec<usize>>,
    /// Every compiled ingress rule (of a policy that affects ingress and selects someone).
    ingress_rules: Vec<usize>,
    egress_isolated: Bits,
    ingress_isolated: Bits,
    /// `[class][family]`: identities d such that a flow from an identity of `class` to d uses
    /// `family` (0 = IPv4, 1 = IPv6).
    family_dsts: Vec<[Bits; 2]>,
    atoms: Atoms,
    /// Identity -> source side; a source side's representative identity.
    src_side: Vec<usize>,
    src_reps: Vec<usize>,
    /// Identity -> destination side; a destination side's representative identity.
    dst_side: Vec<usize>,
    dst_reps: Vec<usize>,
}

impl Analyzer {
    pub fn new(cluster: &Cluster, opts: EvalOptions) -> Self {
        let n = cluster.workloads.len();

        // Distinct ipBlocks, which matter for identities only when they can match workloads.
        let mut blocks: Vec<&IpBlock> = Vec::new();
        let mut block_index: HashMap<&IpBlock, usize> = HashMap::new();
        if opts.ipblock_matches_workloads {
            for p in &cluster.policies {
                for r in p.ingress.iter().chain(&p.egress) {
                    for peer in &r.peers {
                        if let Peer::IpBlock(b) = peer {
                            block_index.entry(b).or_insert_with(|| {
                                blocks.push(b);
                                blocks.len() - 1
                            });
                        }
                    }
                }
            }
        }

        // Namespace index (a namespace missing from the cluster gets its own slot).
        let mut ns_index: HashMap<&str, usize> = HashMap::new();
        let mut ns_labels: Vec<Labels> = Vec::new();
        for ns in &cluster.namespaces {
            ns_index.entry(ns.name.as_str()).or_insert_with(|| {
                ns_labels.push(ns.labels.clone());
                ns_labels.len() - 1
            });
        }
        for name in cluster
            .workloads
            .iter()
            .map(|w| w.namespace.as_str())
            .chain(cluster.policies.iter().map(|p| p.namespace.as_str()))
        {
            ns_index.entry(name).or_insert_with(|| {
                ns_labels.push(crate::eval::namespace_labels(cluster, name));
                ns_labels.len() - 1
            });
        }

        // Identities.
        type IdentityKey = (
            usize,
            Labels,
            Vec<(String, Protocol, u16)>,
            Vec<(bool, Vec<bool>)>,
        );
        let mut identity_index: HashMap<IdentityKey, usize> = HashMap::new();
        let mut port_names: HashMap<String, u32> = HashMap::new();
        let mut identity_of = Vec::with_capacity(n);
        let mut identities: Vec<Identity> = Vec::new();
        let mut identity_ns: Vec<usize> = Vec::new();
        let mut identity_labels: Vec<&Labels> = Vec::new();
        // Per identity, per family: which blocks contain its flow address of that family.
        let mut identity_blocks: Vec<[Vec<bool>; 2]> = Vec::new();
        for w in &cluster.workloads {
            let ns = ns_index.get(w.namespace.as_str()).copied().unwrap_or(0);
            let mut named: BTreeMap<(String, Protocol), u16> = BTreeMap::new();
            for np in &w.named_ports {
                named
                    .entry((np.name.clone(), np.protocol))
                    .or_insert(np.port);
            }
            let mut per_family: [Vec<bool>; 2] = [Vec::new(), Vec::new()];
            let mut addr_key: Vec<(bool, Vec<bool>)> = Vec::new();
            let class = family_class(w);
            if !blocks.is_empty() {
                for (fi, fam) in [Family::V4, Family::V6].iter().enumerate() {
                    if let Some(a) = w.addresses.iter().find(|a| family(a) == *fam) {
                        per_family[fi] = blocks.iter().map(|b| b.contains(*a)).collect();
                    }
                }
                for fam in CLASS_FAMILIES[class] {
                    let fi = usize::from(*fam == Family::V6);
                    addr_key.push((*fam == Family::V4, per_family[fi].clone()));
                }
            }
            let key: IdentityKey = (
                ns,
                w.labels.clone(),
                named
                    .iter()
                    .map(|((name, p), port)| (name.clone(), *p, *port))
                    .collect(),
                addr_key,
            );
            let next = identities.len();
            let id = *identity_index.entry(key).or_insert(next);
            if id == next {
                let named_ports = named
                    .iter()
                    .map(|((name, p), port)| {
                        let next_name = port_names.len() as u32;
                        let nid = *port_names.entry(name.clone()).or_insert(next_name);
                        (nid, *p, *port)
                    })
                    .collect();
                identities.push(Identity { class, named_ports });
                identity_ns.push(ns);
                identity_labels.push(&w.labels);
                identity_blocks.push(per_family);
            }
            identity_of.push(id);
        }
        let ic = identities.len();

        // Identities per namespace, and per distinct label set (selectors run once per label set).
        let mut ns_identities: Vec<Bits> = vec![Bits::new(ic); ns_labels.len()];
        for (id, &ns) in identity_ns.iter().enumerate() {
            if let Some(b) = ns_identities.get_mut(ns) {
                b.set(id);
            }
        }
        let mut label_set_index: HashMap<&Labels, usize> = HashMap::new();
        let mut label_sets: Vec<&Labels> = Vec::new();
        let mut label_set_identities: Vec<Bits> = Vec::new();
        for (id, l) in identity_labels.iter().enumerate() {
            let li = *label_set_index.entry(l).or_insert_with(|| {
                label_sets.push(l);
                label_set_identities.push(Bits::new(ic));
                label_sets.len() - 1
            });
            label_set_identities[li].set(id);
        }

        let pod_eval = |s: &LabelSelector| -> Bits {
            let mut b = Bits::new(ic);
            for (li, l) in label_sets.iter().enumerate() {
                if s.matches(l) {
                    b.or_assign(&label_set_identities[li]);
                }
            }
            b
        };
        let ns_eval = |s: &LabelSelector| -> Bits {
            let mut b = Bits::new(ic);
            for (ni, l) in ns_labels.iter().enumerate() {
                if s.matches(l) {
                    b.or_assign(&ns_identities[ni]);
                }
            }
            b
        };
        let mut pod_cache: HashMap<&LabelSelector, Bits> = HashMap::new();
        let mut ns_cache: HashMap<&LabelSelector, Bits> = HashMap::new();

        // Identities whose flow address of each family lies in each block.
        let block_members: Vec<[Bits; 2]> = (0..blocks.len())
            .map(|bi| {
                let mut v4 = Bits::new(ic);
                let mut v6 = Bits::new(ic);
                for (id, per_family) in identity_blocks.iter().enumerate() {
                    if per_family[0].get(bi).copied().unwrap_or(false) {
                        v4.set(id);
                    }
                    if per_family[1].get(bi).copied().unwrap_or(false) {
                        v6.set(id);
                    }
                }
                [v4, v6]
            })
            .collect();

        // Atom boundaries: every number, range end and named port value.
        let mut boundaries: [Vec<u32>; 3] = Default::default();
        for p in &cluster.policies {
            for r in p.ingress.iter().chain(&p.egress) {
                for port in &r.ports {
                    let b = &mut boundaries[proto_index(port.protocol)];
                    match &port.port {
                        Some(PortSpec::Number(x)) => {
                            b.push(u32::from(*x));
                            b.push(u32::from(*x) + 1);
                        }
                        Some(PortSpec::Range { start, end }) => {
                            b.push(u32::from(*start));
                            b.push(u32::from(*end) + 1);
                        }
                        Some(PortSpec::Named(_)) | None => {}
                    }
                }
            }
        }
        for w in &cluster.workloads {
            for np in &w.named_ports {
                let b = &mut boundaries[proto_index(np.protocol)];
                b.push(u32::from(np.port));
                b.push(u32::from(np.port) + 1);
            }
        }
        let atoms = Atoms::new(boundaries);

        // Compile rules of policies that select someone.
        let mut rules: Vec<CompiledRule> = Vec::new();
        let mut egress_rules_of: Vec<Vec<usize>> = vec![Vec::new(); ic];
        let mut ingress_rules_of: Vec<Vec<usize>> = vec![Vec::new(); ic];
        let mut ingress_rules: Vec<usize> = Vec::new();
        let mut egress_isolated = Bits::new(ic);
        let mut ingress_isolated = Bits::new(ic);
        for p in &cluster.policies {
            if !p.affects_ingress && !p.affects_egress {
                continue;
            }
            let own_ns = ns_index.get(p.namespace.as_str()).copied().unwrap_or(0);
            let mut targets = cached(&mut pod_cache, &p.pod_selector, &pod_eval);
            if let Some(nsb) = ns_identities.get(own_ns) {
                targets.and_assign(nsb);
            }
            if targets.is_empty() {
                continue;
            }
            let selected: Vec<usize> = targets.ones().collect();
            for (affects, rule_list, is_ingress) in [
                (p.affects_ingress, &p.ingress, true),
                (p.affects_egress, &p.egress, false),
            ] {
                if !affects {
                    continue;
                }
                for &id in &selected {
                    if is_ingress {
                        ingress_isolated.set(id);
                    } else {
                        egress_isolated.set(id);
                    }
                }
                for r in rule_list {
                    let mut selected_peers = Bits::new(ic);
                    let mut ip_peers = [Bits::new(ic), Bits::new(ic)];
                    let mut has_ip_peers = false;
                    if r.peers.is_empty() {
                        selected_peers = Bits::full(ic);
                    }
                    for peer in &r.peers {
                        match peer {
                            Peer::Selector {
                                pod_selector,
                                namespace_selector,
                            } => {
                                let mut b = match namespace_selector {
                                    None => ns_identities
                                        .get(own_ns)
                                        .cloned()
                                        .unwrap_or_else(|| Bits::new(ic)),
                                    Some(s) => cached(&mut ns_cache, s, &ns_eval),
                                };
                                if let Some(ps) = pod_selector {
                                    b.and_assign(&cached(&mut pod_cache, ps, &pod_eval));
                                }
                                selected_peers.or_assign(&b);
                            }
                            Peer::IpBlock(b) => {
                                if let Some(&bi) = block_index.get(b) {
                                    has_ip_peers = true;
                                    ip_peers[0].or_assign(&block_members[bi][0]);
                                    ip_peers[1].or_assign(&block_members[bi][1]);
                                }
                            }
                        }
                    }
                    let mut numeric = Vec::new();
                    let mut named = Vec::new();
                    let mut base_atoms = Bits::new(atoms.total);
                    if r.ports.is_empty() {
                        base_atoms = Bits::full(atoms.total);
                    }
                    for port in &r.ports {
                        match &port.port {
                            None => {
                                numeric.push((port.protocol, 0, 65535));
                                atoms.set_protocol(&mut base_atoms, port.protocol);
                            }
                            Some(PortSpec::Number(x)) => {
                                numeric.push((port.protocol, *x, *x));
                                atoms.set_range(&mut base_atoms, port.protocol, *x, *x);
                            }
                            Some(PortSpec::Range { start, end }) => {
                                numeric.push((port.protocol, *start, *end));
                                atoms.set_range(&mut base_atoms, port.protocol, *start, *end);
                            }
                            Some(PortSpec::Named(name)) => {
                                if let Some(&nid) = port_names.get(name) {
                                    named.push((nid, port.protocol));
                                }
                            }
                        }
                    }
                    let ri = rules.len();
                    rules.push(CompiledRule {
                        targets: targets.clone(),
                        selected_peers,
                        ip_peers,
                        has_ip_peers,
                        all_ports: r.ports.is_empty(),
                        numeric,
                        named,
                        base_atoms,
                    });
                    if is_ingress {
                        ingress_rules.push(ri);
                    }
                    for &id in &selected {
                        if is_ingress {
                            ingress_rules_of[id].push(ri);
                        } else {
                            egress_rules_of[id].push(ri);
                        }
                    }
                }
            }
        }

        let mut family_dsts: Vec<[Bits; 2]> = Vec::with_capacity(CLASS_FAMILIES.len());
        for class in 0..CLASS_FAMILIES.len() {
            let mut v4 = Bits::new(ic);
            let mut v6 = Bits::new(ic);
            for (id, ident) in identities.iter().enumerate() {
                match pair_family(class, ident.class) {
                    Some(Family::V4) => v4.set(id),
                    Some(Family::V6) => v6.set(id),
                    None => {}
                }
            }
            family_dsts.push([v4, v6]);
        }

        // Sides: identities that behave the same as a source (same egress rules, same membership
        // in every ingress rule's peers) share a source side; likewise for destinations (same
        // ingress rules, named ports, membership in every egress rule's peers). Rows are computed
        // once per source side, columns of the map once per destination side.
        let any_ip = rules.iter().any(|r| r.has_ip_peers);
        let egress_rules: Vec<usize> = (0..rules.len())
            .filter(|ri| !ingress_rules.contains(ri))
            .collect();
        let membership = |x: usize, list: &[usize]| -> Vec<u64> {
            let mut b = Bits::new(list.len() * 3);
            for (k, &ri) in list.iter().enumerate() {
                let r = &rules[ri];
                if r.selected_peers.get(x) {
                    b.set(3 * k);
                }
                if r.has_ip_peers && r.ip_peers[0].get(x) {
                    b.set(3 * k + 1);
                }
                if r.has_ip_peers && r.ip_peers[1].get(x) {
                    b.set(3 * k + 2);
                }
            }
            b.words().to_vec()
        };
        type SideKey = (usize, bool, Vec<usize>, Vec<(u32, Protocol, u16)>, Vec<u64>);
        let mut src_index: HashMap<SideKey, usize> = HashMap::new();
        let mut dst_index: HashMap<SideKey, usize> = HashMap::new();
        let mut src_side = Vec::with_capacity(ic);
        let mut dst_side = Vec::with_capacity(ic);
        let mut src_reps = Vec::new();
        let mut dst_reps = Vec::new();
        for (x, ident) in identities.iter().enumerate() {
            let class = if any_ip { ident.class } else { 0 };
            let key: SideKey = (
                class,
                egress_isolated.get(x),
                egress_rules_of[x].clone(),
                Vec::new(),
                membership(x, &ingress_rules),
            );
            let next = src_reps.len();
            let side = *src_index.entry(key).or_insert(next);
            if side == next {
                src_reps.push(x);
            }
            src_side.push(side);
            let key: SideKey = (
                class,
                ingress_isolated.get(x),
                ingress_rules_of[x].clone(),
                ident.named_ports.clone(),
                membership(x, &egress_rules),
            );
            let next = dst_reps.len();
            let side = *dst_index.entry(key).or_insert(next);
            if side == next {
                dst_reps.push(x);
            }
            dst_side.push(side);
        }

        Analyzer {
            src_side,
            dst_side,
            src_reps,
            dst_reps,
            workload_count: n,
            keys: output_keys(cluster),
            order: workload_order(cluster),
            identity_of,
            identities,
            rules,
            egress_rules_of,
            ingress_rules_of,
            ingress_rules,
            egress_isolated,
            ingress_isolated,
            family_dsts,
            atoms,
        }
    }

    /// Workload indices sorted by `namespace/name`, then kind: the order of every output.
    pub fn workload_order(&self) -> Vec<usize> {
        self.order.clone()
    }

    /// How many identities (classes of workloads no policy can tell apart) the cluster has.
    pub fn identity_count(&self) -> usize {
        self.identities.len()
    }

    /// The identity index of each workload, by workload index.
    pub fn identity_of(&self, workload: usize) -> Option<usize> {
        self.identity_of.get(workload).copied()
    }

    /// Number of distinct source and destination behaviours (rows and columns actually computed).
    pub fn side_counts(&self) -> (usize, usize) {
        (self.src_reps.len(), self.dst_reps.len())
    }

    /// Number of port atoms over all protocols (how finely rules cut the port space).
    pub fn atom_count(&self) -> usize {
        self.atoms.total
    }

    /// Identities `d` for which rule `r` admits traffic to/from d on (protocol, port), ignoring
    /// peers: everyone, when a numeric entry matches; else those whose named port resolves to it.
    fn port_ok(&self, r: &CompiledRule, protocol: Protocol, port: u16) -> PortOk {
        if r.numeric_matches(protocol, port) {
            return PortOk::All;
        }
        let mut b = Bits::new(self.identities.len());
        let mut any = false;
        for (name, p) in &r.named {
            if *p != protocol {
                continue;
            }
            for (id, ident) in self.identities.iter().enumerate() {
                if ident.named_port(*name, *p) == Some(port) {
                    b.set(id);
                    any = true;
                }
            }
        }
        if any {
            PortOk::Some(b)
        } else {
            PortOk::None
        }
    }

    /// Whether each ordered pair of workloads may talk on one protocol and port.
    pub fn truth_table(&self, protocol: Protocol, port: u16) -> TruthTable {
        let ic = self.identities.len();
        let all = Bits::full(ic);
        let port_ok: Vec<PortOk> = self
            .rules
            .iter()
            .map(|r| self.port_ok(r, protocol, port))
            .collect();

        // Destinations no policy isolates for ingress admit everyone.
        let not_ingress_isolated = self.ingress_isolated.complement();

        // One row over identities per source side.
        let mut side_rows: Vec<Bits> = Vec::with_capacity(self.src_reps.len());
        let mut egress = Bits::new(ic);
        let mut peers = Bits::new(ic);
        let mut ingress = Bits::new(ic);
        for &s in &self.src_reps {
            let class = self.identities[s].class;
            let [d4, d6] = &self.family_dsts[class];
            // Egress of s: which destinations its egress rules admit.
            if self.egress_isolated.get(s) {
                egress.clear();
                for &ri in &self.egress_rules_of[s] {
                    let r = &self.rules[ri];
                    let ok = match &port_ok[ri] {
                        PortOk::None => continue,
                        PortOk::All => &all,
                        PortOk::Some(b) => b,
                    };
                    peers.clear();
                    peers.or_assign(&r.selected_peers);
                    if r.has_ip_peers {
                        peers.or_and(&r.ip_peers[0], d4);
                        peers.or_and(&r.ip_peers[1], d6);
                    }
                    egress.or_and(&peers, ok);
                }
            } else {
                egress.clone_from(&all);
            }
            // Ingress: which destinations admit s.
            ingress.clone_from(&not_ingress_isolated);
            for &ri in &self.ingress_rules {
                let r = &self.rules[ri];
                let ok = match &port_ok[ri] {
                    PortOk::None => continue,
                    PortOk::All => &all,
                    PortOk::Some(b) => b,
                };
                if r.selected_peers.get(s) {
                    ingress.or_and(&r.targets, ok);
                } else if r.has_ip_peers {
                    if r.ip_peers[0].get(s) {
                        ingress.or_and3(&r.targets, ok, d4);
                    }
                    if r.ip_peers[1].get(s) {
                        ingress.or_and3(&r.targets, ok, d6);
                    }
                }
            }
            egress.and_assign(&ingress);
            side_rows.push(egress.clone());
        }

        // Expand side rows to workload rows; a workload may always talk to itself.
        let n = self.workload_count;
        let mut per_side: Vec<Option<FixedBitSet>> = vec![None; side_rows.len()];
        let mut rows: Vec<FixedBitSet> = Vec::with_capacity(n);
        let mut allowed = 0usize;
        for (w, &x) in self.identity_of.iter().enumerate() {
            let side = self.src_side[x];
            let base = per_side[side].get_or_insert_with(|| {
                let mut row = FixedBitSet::with_capacity(n);
                let ir = &side_rows[side];
                for (v, &d) in self.identity_of.iter().enumerate() {
                    if ir.get(d) {
                        row.insert(v);
                    }
                }
                row
            });
            let mut row = base.clone();
            row.insert(w);
            allowed += row.count_ones(..);
            rows.push(row);
        }
        TruthTable {
            protocol,
            port,
            keys: self.keys.clone(),
            order: self.order.clone(),
            rows,
            allowed_count: allowed,
        }
    }

    /// Writes the atoms of rule `r`'s ports for destination identity `d` into `out` (ORed).
    fn or_rule_atoms(&self, out: &mut Bits, r: &CompiledRule, d: usize) {
        out.or_assign(&r.base_atoms);
        if r.named.is_empty() {
            return;
        }
        let ident = &self.identities[d];
        for (name, p) in &r.named {
            if let Some(port) = ident.named_port(*name, *p) {
                if port >= 1 {
                    out.set(self.atoms.index(*p, port));
                }
            }
        }
    }

    /// For every ordered pair of workloads, the ports allowed per protocol.
    pub fn connectivity_map(&self) -> ConnectivityMap {
        let a = self.atoms.total;
        let all = Bits::full(a);
        let mut interned: HashMap<Vec<u64>, u32, BuildFx> = HashMap::default();
        let mut sets: Vec<Bits> = Vec::new();
        let dst_count = self.dst_reps.len();
        let mut matrix: Vec<u32> = Vec::with_capacity(self.src_reps.len() * dst_count);
        let mut e = Bits::new(a);
        let mut i = Bits::new(a);
        // Neighbouring pairs often share a result: skip the hash lookup then.
        let mut last: Option<(Bits, u32)> = None;
        for &s in &self.src_reps {
            let s_class = self.identities[s].class;
            let s_isolated = self.egress_isolated.get(s);
            for &d in &self.dst_reps {
                let f = pair_family(s_class, self.identities[d].class);
                if s_isolated {
                    e.clear();
                    for &ri in &self.egress_rules_of[s] {
                        let r = &self.rules[ri];
                        if r.peer_contains(d, f) {
                            self.or_rule_atoms(&mut e, r, d);
                        }
                    }
                } else {
                    e.clone_from(&all);
                }
                if self.ingress_isolated.get(d) && !e.is_empty() {
                    i.clear();
                    for &ri in &self.ingress_rules_of[d] {
                        let r = &self.rules[ri];
                        if r.peer_contains(s, f) {
                            self.or_rule_atoms(&mut i, r, d);
                        }
                    }
                    e.and_assign(&i);
                }
                if let Some((prev, id)) = &last {
                    if *prev == e {
                        matrix.push(*id);
                        continue;
                    }
                }
                let id = match interned.get(e.words()) {
                    Some(&id) => id,
                    None => {
                        let id = u32::try_from(sets.len()).unwrap_or(u32::MAX);
                        interned.insert(e.words().to_vec(), id);
                        sets.push(e.clone());
                        id
                    }
                };
                last = Some((e.clone(), id));
                matrix.push(id);
            }
        }
        let port_sets: Vec<[Vec<(u16, u16)>; 3]> = sets
            .iter()
            .map(|b| Protocol::ALL.map(|p| self.atoms.ranges(b, p)))
            .collect();
        ConnectivityMap {
            keys: self.keys.clone(),
            order: self.order.clone(),
            src_of: self.identity_of.iter().map(|&x| self.src_side[x]).collect(),
            dst_of: self.identity_of.iter().map(|&x| self.dst_side[x]).collect(),
            dst_count,
            matrix,
            port_sets,
        }
    }
}

/// A multiply-rotate hasher (FxHash) for interning short word slices; SipHash costs more than
/// the work it guards here.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type BuildFx = std::hash::BuildHasherDefault<Fx>;

/// Evaluates each distinct selector once.
fn cached<'c>(
    cache: &mut HashMap<&'c LabelSelector, Bits>,
    selector: &'c LabelSelector,
    eval: &dyn Fn(&LabelSelector) -> Bits,
) -> Bits {
    cache
        .entry(selector)
        .or_insert_with(|| eval(selector))
        .clone()
}

enum PortOk {
    All,
    None,
    Some(Bits),
}

/// Which ordered pairs of workloads may talk on one protocol and port.
#[derive(Clone, Debug)]
pub struct TruthTable {
    pub protocol: Protocol,
    pub port: u16,
    keys: Vec<String>,
    order: Vec<usize>,
    /// Row per source workload (index into `cluster.workloads`); bit = destination index.
    rows: Vec<FixedBitSet>,
    allowed_count: usize,
}

impl TruthTable {
    /// Whether `from` may send to `to` (indices into `cluster.workloads`); false for bad indices.
    pub fn allowed(&self, from: usize, to: usize) -> bool {
        self.rows.get(from).is_some_and(|r| r.contains(to))
    }

    /// The destinations `from` may reach, as a bitset over workload indices.
    pub fn row(&self, from: usize) -> Option<&FixedBitSet> {
        self.rows.get(from)
    }

    /// Number of allowed ordered pairs (self pairs included).
    pub fn allowed_count(&self) -> usize {
        self.allowed_count
    }

    /// Number of denied ordered pairs.
    pub fn denied_count(&self) -> usize {
        self.rows.len() * self.rows.len() - self.allowed_count
    }

    /// Workload indices in output order.
    pub fn workload_order(&self) -> &[usize] {
        &self.order
    }

    /// The JSON document `{"port", "protocol", "workloads", "allowed": {from: {to: bool}}}`.
    pub fn to_json(&self) -> serde_json::Value {
        // The streaming `Serialize` below is the one definition of the document; string keys and
        // plain values cannot fail to serialize.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Serializes to the same document as [`TruthTable::to_json`], streaming (no intermediate tree).
impl Serialize for TruthTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(4))?;
        m.serialize_entry("port", &self.port)?;
        m.serialize_entry("protocol", self.protocol.as_str())?;
        m.serialize_entry("workloads", &KeyList(&self.keys, &self.order))?;
        m.serialize_entry(
            "allowed",
            &PairMatrix {
                keys: &self.keys,
                order: &self.order,
                cell: |from, to| self.allowed(from, to),
            },
        )?;
        m.end()
    }
}

/// The workload keys in output order, as a JSON array.
struct KeyList<'a>(&'a [String], &'a [usize]);

impl Serialize for KeyList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.1.len()))?;
        for &i in self.1 {
            seq.serialize_element(&self.0[i])?;
        }
        seq.end()
    }
}

/// `{from: {to: cell(from, to)}}` over every ordered pair, in output order, streamed.
struct PairMatrix<'a, F> {
    keys: &'a [String],
    order: &'a [usize],
    cell: F,
}

impl<F, V> Serialize for PairMatrix<'_, F>
where
    F: Fn(usize, usize) -> V,
    V: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Row<'r, 'a, F>(&'r PairMatrix<'a, F>, usize);
        impl<F, V> Serialize for Row<'_, '_, F>
        where
            F: Fn(usize, usize) -> V,
            V: Serialize,
        {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let matrix = self.0;
                let mut m = s.serialize_map(Some(matrix.order.len()))?;
                for &to in matrix.order {
                    m.serialize_entry(&matrix.keys[to], &(matrix.cell)(self.1, to))?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(self.order.len()))?;
        for &from in self.order {
            m.serialize_entry(&self.keys[from], &Row(self, from))?;
        }
        m.end()
    }
}

const EVERYTHING: &[(u16, u16)] = &[(1, 65535)];

/// For every ordered pair of workloads, the allowed ports per protocol.
#[derive(Clone, Debug)]
pub struct ConnectivityMap {
    keys: Vec<String>,
    order: Vec<usize>,
    /// Workload -> source side / destination side (see `Analyzer`).
    src_of: Vec<usize>,
    dst_of: Vec<usize>,
    dst_count: usize,
    /// `[src side * dst_count + dst side]` -> index into `port_sets`.
    matrix: Vec<u32>,
    /// Distinct results: per protocol (in `Protocol::ALL` order) inclusive merged ranges.
    port_sets: Vec<[Vec<(u16, u16)>; 3]>,
}

impl ConnectivityMap {
    /// The allowed ports of `protocol` from `from` to `to` (indices into `cluster.workloads`) as
    /// sorted, merged, inclusive ranges; a workload reaches itself on every port; empty for bad
    /// indices.
    pub fn ports(&self, from: usize, to: usize, protocol: Protocol) -> &[(u16, u16)] {
        if from == to && from < self.src_of.len() {
            return EVERYTHING;
        }
        let (Some(&s), Some(&d)) = (self.src_of.get(from), self.dst_of.get(to)) else {
            return &[];
        };
        self.matrix
            .get(s * self.dst_count + d)
            .and_then(|&id| self.port_sets.get(id as usize))
            .map_or(&[], |sets| sets[proto_index(protocol)].as_slice())
    }

    /// Whether anything at all is allowed from `from` to `to`.
    pub fn any_allowed(&self, from: usize, to: usize) -> bool {
        Protocol::ALL
            .iter()
            .any(|p| !self.ports(from, to, *p).is_empty())
    }

    /// Workload indices in output order.
    pub fn workload_order(&self) -> &[usize] {
        &self.order
    }

    /// How many distinct per-pair results the map holds (a measure of its compression).
    pub fn distinct_port_sets(&self) -> usize {
        self.port_sets.len()
    }

    /// The JSON document
    /// `{"workloads": [...], "connections": {from: {to: {"TCP": [[lo, hi]], "UDP": [], "SCTP": []}}}}`.
    pub fn to_json(&self) -> serde_json::Value {
        // The streaming `Serialize` below is the one definition of the document.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// One line per ordered pair of distinct workloads with anything allowed, in output order:
    /// `p/b -> p/a  TCP 80-90, UDP 53`. Self pairs are left out: a workload always reaches itself
    /// on every port, and a line per workload saying so would bury the real answers.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for &f in &self.order {
            for &t in self.order.iter().filter(|&&t| t != f) {
                let parts: Vec<String> = Protocol::ALL
                    .iter()
                    .filter_map(|p| {
                        let r = self.ports(f, t, *p);
                        (!r.is_empty()).then(|| format!("{p} {}", render_ranges(r)))
                    })
                    .collect();
                if !parts.is_empty() {
                    let _ = writeln!(
                        out,
                        "{} -> {}  {}",
                        self.keys[f],
                        self.keys[t],
                        parts.join(", ")
                    );
                }
            }
        }
        out
    }
}

/// `80-90,443` style: single ports as `53`, ranges as `lo-hi`, joined by `,`.
pub fn render_ranges(ranges: &[(u16, u16)]) -> String {
    ranges
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Serializes to the same document as [`ConnectivityMap::to_json`], streaming.
impl Serialize for ConnectivityMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// `{"TCP": [[lo, hi], ...], "UDP": [...], "SCTP": [...]}` of one ordered pair.
        struct Pair<'a>(&'a ConnectivityMap, usize, usize);
        impl Serialize for Pair<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(3))?;
                for p in Protocol::ALL {
                    let ranges: Vec<[u16; 2]> = self
                        .0
                        .ports(self.1, self.2, p)
                        .iter()
                        .map(|(lo, hi)| [*lo, *hi])
                        .collect();
                    m.serialize_entry(p.as_str(), &ranges)?;
                }
                m.end()
            }
        }
        let mut m = serializer.serialize_map(Some(2))?;
        m.serialize_entry("workloads", &KeyList(&self.keys, &self.order))?;
        m.serialize_entry(
            "connections",
            &PairMatrix {
                keys: &self.keys,
                order: &self.order,
                cell: |from, to| Pair(self, from, to),
            },
        )?;
        m.end()
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
    fn a_pair_uses_the_first_source_family_the_destination_has() {
        assert_eq!(pair_family(4, 3), Some(Family::V6));
        assert_eq!(pair_family(3, 4), Some(Family::V4));
        assert_eq!(pair_family(1, 2), None);
        assert_eq!(pair_family(0, 3), None);
        assert_eq!(pair_family(4, 1), Some(Family::V4));
    }

    #[test]
    fn ranges_render_single_ports_without_a_dash() {
        assert_eq!(render_ranges(&[(53, 53), (80, 90)]), "53,80-90");
    }
}
