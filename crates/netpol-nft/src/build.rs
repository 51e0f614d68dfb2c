//! From the model to the IR: local identities, peer classes and grant segments.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use netpol_core::{
    Cluster, Direction, EvalOptions, IpBlock, LabelSelector, Labels, Peer, Policy, PortSpec,
    Protocol, Rule, Workload, NAMESPACE_NAME_LABEL,
};

use crate::interval::{self, addr_key, key_addr, net_range};
use crate::{
    ClassPortSegment, CompileError, DirectionIr, Dispatch, ExternalRange, Grant, Identity,
    IdentityRules, LocalWorkload, PeerClass, PolicyCounter, PortSegment, Ruleset, RulesetIr,
    Summary, WorkloadClass, NON_PORT_PROTOCOLS,
};

/// Compiles the table enforcing the policies of the workloads that run on `node`.
///
/// Deterministic: the same cluster, options and node give the same text. Workloads without an
/// address cannot be enforced by address and are left out of the dispatch maps.
pub fn compile(cluster: &Cluster, opts: EvalOptions, node: &str) -> Result<Ruleset, CompileError> {
    if node.is_empty() {
        return Err(CompileError::EmptyNodeName);
    }
    check_addresses(cluster)?;

    // Policies in key order; the IR refers to them by this position.
    let mut order: Vec<usize> = (0..cluster.policies.len()).collect();
    // Cached: the key is a fresh String, too costly to build on every comparison.
    order.sort_by_cached_key(|&i| (cluster.policies[i].key(), i));

    let mut local: Vec<usize> = (0..cluster.workloads.len())
        .filter(|&i| cluster.workloads[i].node.as_deref() == Some(node))
        .collect();
    // The index breaks ties, so this unstable cached sort orders like a stable one.
    local.sort_by_cached_key(|&i| {
        let w = &cluster.workloads[i];
        (w.key(), w.kind, i)
    });

    // Which sorted policies isolate each local workload, per direction.
    // Policies only select workloads of their own namespace, so they are grouped by it first
    // (each group keeps key order).
    let mut by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
    for &pi in &order {
        let p = &cluster.policies[pi];
        by_namespace
            .entry(p.namespace.as_str())
            .or_default()
            .push(pi);
    }
    let isolating = |w: &Workload, d: Direction| -> Vec<usize> {
        by_namespace
            .get(w.namespace.as_str())
            .map(|group| {
                group
                    .iter()
                    .copied()
                    .filter(|&pi| {
                        let p = &cluster.policies[pi];
                        p.affects(d) && p.pod_selector.matches(&w.labels)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut per_dir: BTreeMap<Direction, Vec<(usize, Vec<usize>)>> = BTreeMap::new();
    let mut relevant: BTreeSet<usize> = BTreeSet::new();
    for d in [Direction::Ingress, Direction::Egress] {
        let mut list = Vec::new();
        for &wi in &local {
            let w = &cluster.workloads[wi];
            let pols = isolating(w, d);
            if !pols.is_empty() && !w.addresses.is_empty() {
                relevant.extend(pols.iter().copied());
                list.push((wi, pols));
            }
        }
        per_dir.insert(d, list);
    }
    // IR policy index <- cluster policy index, in key order.
    let relevant_sorted: Vec<usize> = order
        .iter()
        .copied()
        .filter(|i| relevant.contains(i))
        .collect();
    let ir_index: BTreeMap<usize, usize> = relevant_sorted
        .iter()
        .enumerate()
        .map(|(ir, &ci)| (ci, ir))
        .collect();
    let policies = counter_names(
        &relevant_sorted
            .iter()
            .map(|&ci| cluster.policies[ci].key())
            .collect::<Vec<_>>(),
    );

    let ctx = Ctx {
        cluster,
        opts,
        ir_index: &ir_index,
    };
    let empty = Vec::new();
    let isolated = |d: Direction| per_dir.get(&d).unwrap_or(&empty);
    // The two directions are independent: built side by side (the agent's change latency).
    let (ingress, egress) = std::thread::scope(|scope| {
        let egress = scope.spawn(|| ctx.direction(Direction::Egress, isolated(Direction::Egress)));
        let ingress = ctx.direction(Direction::Ingress, isolated(Direction::Ingress));
        let egress = egress
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (ingress, egress)
    });

    let mut ir = RulesetIr {
        node: node.to_string(),
        ipblock_matches_workloads: opts.ipblock_matches_workloads,
        policies,
        ingress,
        egress,
    };
    // Chain names depend on the rendered content, which needs the policies' counter names. The
    // identities rendered for naming are kept and reused by the full rendering.
    let ((in_names, in_objects), (eg_names, eg_objects)) = std::thread::scope(|scope| {
        let egress = scope.spawn(|| crate::render::identity_names(&ir, &ir.egress));
        let ingress = crate::render::identity_names(&ir, &ir.ingress);
        let egress = egress
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (ingress, egress)
    });
    let pre = crate::render::Prerendered {
        ingress: in_objects,
        egress: eg_objects,
    };
    for (ident, name) in ir.ingress.identities.iter_mut().zip(in_names) {
        ident.chain = name;
    }
    for (ident, name) in ir.egress.identities.iter_mut().zip(eg_names) {
        ident.chain = name;
    }
    let (text, elements, objects) = crate::render::render(&ir, pre);
    let local_workloads = local
        .iter()
        .map(|&wi| {
            let w = &cluster.workloads[wi];
            let identity_of = |d: &DirectionIr| {
                w.addresses
                    .first()
                    .and_then(|a| d.dispatch.get(a))
                    .map(|x| x.identity)
            };
            LocalWorkload {
                key: w.key(),
                addresses: w.addresses.clone(),
                ingress_identity: identity_of(&ir.ingress),
                egress_identity: identity_of(&ir.egress),
            }
        })
        .collect();
    let summary = Summary {
        node: node.to_string(),
        ipblock_matches_workloads: opts.ipblock_matches_workloads,
        local_workloads,
        policies: ir.policies.clone(),
        ingress_identities: ir.ingress.identities.len(),
        egress_identities: ir.egress.identities.len(),
        ingress_classes: ir.ingress.classes.len(),
        egress_classes: ir.egress.classes.len(),
        total_elements: elements.values().sum(),
        elements,
        non_port_protocols: NON_PORT_PROTOCOLS.to_string(),
    };
    Ok(Ruleset {
        text,
        summary,
        ir,
        objects,
    })
}

/// `namespace/name`, as [`Workload::key`] without the formatting machinery (it runs for every
/// workload address).
fn workload_key(w: &Workload) -> String {
    let mut k = String::with_capacity(w.namespace.len() + 1 + w.name.len());
    k.push_str(&w.namespace);
    k.push('/');
    k.push_str(&w.name);
    k
}

/// A fast non-cryptographic hasher (the `FxHash` mix) for interning class keys; nothing depends
/// on its iteration order.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Every address must belong to one workload only.
fn check_addresses(cluster: &Cluster) -> Result<(), CompileError> {
    // Hashed: only membership matters, and the first clash in workload order is reported.
    let mut owners: HashMap<IpAddr, &Workload> = HashMap::with_capacity(cluster.workloads.len());
    for w in &cluster.workloads {
        for a in &w.addresses {
            if let Some(prev) = owners.insert(*a, w) {
                if !std::ptr::eq(prev, w) {
                    return Err(CompileError::DuplicateAddress {
                        address: *a,
                        first: format!("{}/{}", prev.kind.short_name(), prev.key()),
                        second: format!("{}/{}", w.kind.short_name(), w.key()),
                    });
                }
            }
        }
    }
    Ok(())
}

/// `pol_<namespace>_<name>` with characters nft identifiers cannot hold replaced, made unique.
fn counter_names(keys: &[String]) -> Vec<PolicyCounter> {
    let mut used: BTreeSet<String> = BTreeSet::new();
    keys.iter()
        .map(|key| {
            let base: String = format!("pol_{}", key.replacen('/', "_", 1))
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(200)
                .collect();
            let mut name = base.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}_{n}");
                n += 1;
            }
            PolicyCounter {
                key: key.clone(),
                counter: name,
            }
        })
        .collect()
}

/// Which namespaces a selector peer covers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum NsMatch {
    /// No namespaceSelector: the policy's own namespace.
    Own(String),
    Selector(LabelSelector),
}

/// A distinct peer, whatever policy or rule it appears in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Atom {
    Selector {
        namespaces: NsMatch,
        pods: Option<LabelSelector>,
    },
    Block(IpBlock),
}

impl Atom {
    fn of(policy: &Policy, peer: &Peer) -> Atom {
        match peer {
            Peer::Selector {
                pod_selector,
                namespace_selector,
            } => Atom::Selector {
                namespaces: match namespace_selector {
                    None => NsMatch::Own(policy.namespace.clone()),
                    Some(s) => NsMatch::Selector(s.clone()),
                },
                pods: pod_selector.clone(),
            },
            Peer::IpBlock(b) => Atom::Block(b.clone()),
        }
    }

    fn render(&self) -> String {
        match self {
            Atom::Selector { namespaces, pods } => {
                let ns = match namespaces {
                    NsMatch::Own(n) => format!("namespace {n}"),
                    NsMatch::Selector(s) => format!("namespaceSelector {s}"),
                };
                match pods {
                    Some(p) => format!("{ns} podSelector {p}"),
                    None => ns,
                }
            }
            Atom::Block(b) => format!("ipBlock {b}"),
        }
    }

    /// Whether the atom's namespace part admits workloads of namespace `ns` (never for blocks).
    fn matches_namespace(&self, ns: &str, ns_labels: &Labels) -> bool {
        match self {
            Atom::Selector { namespaces, .. } => match namespaces {
                NsMatch::Own(n) => n == ns,
                NsMatch::Selector(s) => s.matches(ns_labels),
            },
            Atom::Block(_) => false,
        }
    }

    /// Whether the atom's pod part admits `w` (the namespace part is checked apart).
    fn matches_pods(&self, w: &Workload) -> bool {
        match self {
            Atom::Selector { pods, .. } => pods.as_ref().is_none_or(|p| p.matches(&w.labels)),
            Atom::Block(_) => false,
        }
    }
}

/// The address ranges of an ipBlock (its CIDR minus its holes), inclusive, in the CIDR's family.
fn block_ranges(b: &IpBlock) -> Vec<(u128, u128)> {
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

/// A peer class: the atoms matching an address and (egress) the named ports of its workload.
type ClassKey = (Vec<usize>, Vec<(String, Protocol, u16)>);

struct Ctx<'a> {
    cluster: &'a Cluster,
    opts: EvalOptions,
    /// cluster policy index -> IR policy index.
    ir_index: &'a BTreeMap<usize, usize>,
}

/// Port intervals collected before splitting into disjoint segments.
type Intervals = Vec<(u16, u16, Grant)>;

impl Ctx<'_> {
    fn namespace_labels(&self, name: &str) -> Labels {
        match self.cluster.namespace(name) {
            Some(ns) => ns.labels.clone(),
            None => Labels::from([(NAMESPACE_NAME_LABEL.to_string(), name.to_string())]),
        }
    }

    /// Builds one direction for the isolated local workloads `isolated` (workload index, sorted
    /// cluster policy indices).
    fn direction(&self, d: Direction, isolated: &[(usize, Vec<usize>)]) -> DirectionIr {
        let cluster = self.cluster;
        let relevant: BTreeSet<usize> = isolated
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .collect();

        // Distinct peers of every relevant rule, with the first rule naming each.
        let mut atom_origin: BTreeMap<Atom, (usize, usize)> = BTreeMap::new();
        let mut named: BTreeSet<(String, Protocol)> = BTreeSet::new();
        for &ci in &relevant {
            let p = &cluster.policies[ci];
            let ir = self.ir_index.get(&ci).copied().unwrap_or(usize::MAX);
            for (ri, rule) in p.rules(d).iter().enumerate() {
                for peer in &rule.peers {
                    let origin = atom_origin.entry(Atom::of(p, peer)).or_insert((ir, ri));
                    *origin = (*origin).min((ir, ri));
                }
                for port in &rule.ports {
                    if let Some(PortSpec::Named(n)) = &port.port {
                        named.insert((n.clone(), port.protocol));
                    }
                }
            }
        }
        let atoms: Vec<Atom> = atom_origin.keys().cloned().collect();
        let atom_id: BTreeMap<&Atom, usize> =
            atoms.iter().enumerate().map(|(i, a)| (a, i)).collect();
        let blocks: Vec<(usize, &IpBlock)> = atoms
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Atom::Block(b) => Some((i, b)),
                Atom::Selector { .. } => None,
            })
            .collect();

        // External ranges per family.
        let mut ext_split: [Vec<(u128, u128, BTreeSet<usize>)>; 2] = [Vec::new(), Vec::new()];
        for (fam, v6) in [(0usize, false), (1usize, true)] {
            let ranges: Vec<(u128, u128, usize)> = blocks
                .iter()
                .filter(|(_, b)| b.cidr.addr().is_ipv6() == v6)
                .flat_map(|(i, b)| block_ranges(b).into_iter().map(move |(f, l)| (f, l, *i)))
                .collect();
            ext_split[fam] = interval::split(&ranges, v6);
        }
        let ext_atoms = |a: IpAddr| -> Vec<usize> {
            let fam = &ext_split[usize::from(a.is_ipv6())];
            let k = addr_key(a);
            let idx = fam.partition_point(|r| r.0 <= k);
            match idx.checked_sub(1).and_then(|i| fam.get(i)) {
                Some(r) if r.1 >= k => r.2.iter().copied().collect(),
                _ => Vec::new(),
            }
        };

        // Workload addresses. Atoms are first narrowed per namespace (most name one namespace),
        // and class keys are interned so each distinct key is built, compared and stored once.
        let mut ns_atoms: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut interned: HashMap<ClassKey, usize, BuildHasherDefault<FxHasher>> =
            HashMap::default();
        let mut key_list: Vec<ClassKey> = Vec::new();
        let mut intern = |k: ClassKey| -> usize {
            if let Some(&i) = interned.get(&k) {
                return i;
            }
            let i = key_list.len();
            key_list.push(k.clone());
            interned.insert(k, i);
            i
        };
        // (address, workload index, its class key, the class key of its external ranges)
        let mut wl_keys: Vec<(IpAddr, usize, usize, usize)> = Vec::new();
        for (wi, w) in cluster.workloads.iter().enumerate() {
            if w.addresses.is_empty() {
                continue;
            }
            let candidates = ns_atoms.entry(w.namespace.as_str()).or_insert_with(|| {
                let ns_labels = self.namespace_labels(&w.namespace);
                atoms
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.matches_namespace(&w.namespace, &ns_labels))
                    .map(|(i, _)| i)
                    .collect()
            });
            let sel: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&i| atoms.get(i).is_some_and(|a| a.matches_pods(w)))
                .collect();
            let ports: Vec<(String, Protocol, u16)> = if d == Direction::Egress {
                named
                    .iter()
                    .filter_map(|(n, p)| w.resolve_named_port(n, *p).map(|v| (n.clone(), *p, v)))
                    .collect()
            } else {
                Vec::new()
            };
            for &a in &w.addresses {
                let ext = ext_atoms(a);
                let mut mine = sel.clone();
                if self.opts.ipblock_matches_workloads {
                    mine.extend(ext.iter().copied());
                    mine.sort_unstable();
                    mine.dedup();
                }
                let k = intern((mine, ports.clone()));
                let e = intern((ext, Vec::new()));
                wl_keys.push((a, wi, k, e));
            }
        }
        let mut ext_idx: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        for (fam, split) in ext_split.iter().enumerate() {
            for (_, _, s) in split {
                let i = intern((s.iter().copied().collect(), Vec::new()));
                if let Some(v) = ext_idx.get_mut(fam) {
                    v.push(i);
                }
            }
        }

        // Class ids: 0 for "matches nothing", then sorted keys.
        let empty_key: ClassKey = (Vec::new(), Vec::new());
        let mut sorted: Vec<usize> = (0..key_list.len())
            .filter(|&i| key_list.get(i).is_some_and(|k| *k != empty_key))
            .collect();
        sorted.sort_unstable_by(|&a, &b| key_list[a].cmp(&key_list[b]));
        let mut class_of_interned: Vec<u32> = vec![0; key_list.len()];
        let mut class_keys: Vec<ClassKey> = vec![empty_key];
        for (rank, &i) in sorted.iter().enumerate() {
            class_of_interned[i] = u32::try_from(rank + 1).unwrap_or(u32::MAX);
            class_keys.push(std::mem::take(&mut key_list[i]));
        }
        let class_id = |i: usize| class_of_interned.get(i).copied().unwrap_or(0);

        // Sorted first (by the integer form, which orders like `IpAddr`) so the map is built in
        // bulk instead of by thousands of inserts.
        let mut wl_list: Vec<(IpAddr, WorkloadClass)> = Vec::new();
        for &(a, wi, mine, ext) in &wl_keys {
            let (c, e) = (class_id(mine), class_id(ext));
            if c != e {
                wl_list.push((
                    a,
                    WorkloadClass {
                        class: c,
                        workload: workload_key(&cluster.workloads[wi]),
                    },
                ));
            }
        }
        // Families apart (each usually already in order, which the stable sort handles in one
        // pass). Stable: an address listed twice keeps its last entry, as with inserts.
        let (mut wl_list, mut wl6): (Vec<_>, Vec<_>) =
            wl_list.into_iter().partition(|(a, _)| a.is_ipv4());
        wl_list.sort_by_key(|(a, _)| addr_key(*a));
        wl6.sort_by_key(|(a, _)| addr_key(*a));
        wl_list.append(&mut wl6);
        let workload_classes: BTreeMap<IpAddr, WorkloadClass> = wl_list.into_iter().collect();
        let mut external = Vec::new();
        for (fam, v6) in [(0usize, false), (1usize, true)] {
            for ((f, l, _), &i) in ext_split[fam].iter().zip(&ext_idx[fam]) {
                external.push(ExternalRange {
                    first: key_addr(*f, v6),
                    last: key_addr(*l, v6),
                    class: class_id(i),
                });
            }
        }

        // atom -> classes containing it; class -> named ports.
        let mut atom_classes: Vec<Vec<u32>> = vec![Vec::new(); atoms.len()];
        for (c, (ats, _)) in class_keys.iter().enumerate() {
            for &a in ats {
                if let Some(v) = atom_classes.get_mut(a) {
                    v.push(u32::try_from(c).unwrap_or(u32::MAX));
                }
            }
        }
        let classes: Vec<PeerClass> = class_keys
            .iter()
            .enumerate()
            .map(|(c, (ats, ports))| PeerClass {
                id: u32::try_from(c).unwrap_or(u32::MAX),
                peers: ats
                    .iter()
                    .filter_map(|&a| atoms.get(a).map(Atom::render))
                    .collect(),
                named_ports: ports
                    .iter()
                    .map(|(n, p, v)| format!("{n}/{p}={v}"))
                    .collect(),
            })
            .collect();

        // Identities.
        let view = ClassView {
            atom_id: &atom_id,
            atom_classes: &atom_classes,
            class_keys: &class_keys,
        };
        let mut cache: BTreeMap<(Vec<usize>, Vec<netpol_core::NamedPort>), IdentityRules> =
            BTreeMap::new();
        let mut identity_of: BTreeMap<IdentityRules, usize> = BTreeMap::new();
        let mut identities: Vec<Identity> = Vec::new();
        let mut id_policies: Vec<BTreeSet<String>> = Vec::new();
        let mut dispatch = BTreeMap::new();
        for (wi, pols) in isolated {
            let w = &cluster.workloads[*wi];
            let np = if d == Direction::Ingress {
                let mut v = w.named_ports.clone();
                v.sort();
                v
            } else {
                Vec::new()
            };
            let rules = cache
                .entry((pols.clone(), np))
                .or_insert_with(|| self.identity_rules(d, pols, w, &view))
                .clone();
            let id = match identity_of.get(&rules) {
                Some(id) => *id,
                None => {
                    let id = identities.len();
                    identity_of.insert(rules.clone(), id);
                    identities.push(Identity {
                        chain: String::new(),
                        workloads: Vec::new(),
                        policies: Vec::new(),
                        rules,
                    });
                    id_policies.push(BTreeSet::new());
                    id
                }
            };
            if let Some(ident) = identities.get_mut(id) {
                ident.workloads.push(workload_key(w));
            }
            if let Some(set) = id_policies.get_mut(id) {
                set.extend(pols.iter().map(|&ci| cluster.policies[ci].key()));
            }
            for a in &w.addresses {
                dispatch.insert(
                    *a,
                    Dispatch {
                        identity: id,
                        workload: workload_key(w),
                    },
                );
            }
        }
        for (ident, pols) in identities.iter_mut().zip(id_policies) {
            ident.policies = pols.into_iter().collect();
        }

        // From dense class indices to content-derived mark values.
        let contents: Vec<(&Vec<String>, &Vec<String>)> =
            classes.iter().map(|c| (&c.peers, &c.named_ports)).collect();
        let hashes: Vec<u32> = contents
            .iter()
            .map(|(peers, ports)| {
                let text = format!("{}\n{}", peers.join("\n"), ports.join("\n"));
                crate::render::hash32(text.as_bytes())
            })
            .collect();
        let mut marks = crate::render::assign_unique(&hashes[1..], &contents[1..], |h| h != 0);
        marks.insert(0, 0);
        let m = |c: u32| marks.get(c as usize).copied().unwrap_or(0);
        let mut classes = classes;
        for c in &mut classes {
            c.id = m(c.id);
        }
        classes.sort_by_key(|c| c.id);
        let workload_classes = workload_classes
            .into_iter()
            .map(|(a, mut w)| {
                w.class = m(w.class);
                (a, w)
            })
            .collect();
        let external = external
            .into_iter()
            .map(|mut r| {
                r.class = m(r.class);
                r
            })
            .collect();
        for ident in &mut identities {
            let r = &mut ident.rules;
            r.class_all = std::mem::take(&mut r.class_all)
                .into_iter()
                .map(|(c, g)| (m(c), g))
                .collect();
            for s in &mut r.class_ports {
                s.class = m(s.class);
            }
            r.class_ports.sort();
        }

        DirectionIr {
            direction: d,
            dispatch,
            workload_classes,
            external,
            classes,
            identities,
        }
    }

    /// What the policies `pols` (sorted cluster indices) allow for the local workload `w`.
    fn identity_rules(
        &self,
        d: Direction,
        pols: &[usize],
        w: &Workload,
        view: &ClassView<'_>,
    ) -> IdentityRules {
        let mut open: Option<Grant> = None;
        let mut any: BTreeMap<Protocol, Intervals> = BTreeMap::new();
        let mut all: BTreeMap<u32, Grant> = BTreeMap::new();
        let mut cls: BTreeMap<(u32, Protocol), Intervals> = BTreeMap::new();
        for &ci in pols {
            let p = &self.cluster.policies[ci];
            let Some(&pi) = self.ir_index.get(&ci) else {
                continue;
            };
            for (ri, rule) in p.rules(d).iter().enumerate() {
                let g = Grant {
                    policy: pi,
                    rule: ri,
                };
                if rule.peers.is_empty() {
                    if rule.ports.is_empty() {
                        open = Some(open.map_or(g, |o| o.min(g)));
                        continue;
                    }
                    for port in &rule.ports {
                        match &port.port {
                            Some(PortSpec::Named(name)) => match d {
                                // The destination is the local workload.
                                Direction::Ingress => {
                                    if let Some(v) = w.resolve_named_port(name, port.protocol) {
                                        any.entry(port.protocol).or_default().push((v, v, g));
                                    }
                                }
                                // The destination is any workload defining the name.
                                Direction::Egress => {
                                    for (c, (_, ports)) in view.class_keys.iter().enumerate() {
                                        if let Some(v) = lookup_named(ports, name, port.protocol) {
                                            let c = u32::try_from(c).unwrap_or(u32::MAX);
                                            cls.entry((c, port.protocol))
                                                .or_default()
                                                .push((v, v, g));
                                        }
                                    }
                                }
                            },
                            other => {
                                let (lo, hi) = numeric_range(other);
                                any.entry(port.protocol).or_default().push((lo, hi, g));
                            }
                        }
                    }
                    continue;
                }
                for c in view.rule_classes(p, rule) {
                    if rule.ports.is_empty() {
                        let e = all.entry(c).or_insert(g);
                        *e = (*e).min(g);
                        continue;
                    }
                    for port in &rule.ports {
                        let range = match &port.port {
                            Some(PortSpec::Named(name)) => {
                                let resolved = match d {
                                    Direction::Ingress => w.resolve_named_port(name, port.protocol),
                                    Direction::Egress => {
                                        view.class_keys.get(c as usize).and_then(|(_, ports)| {
                                            lookup_named(ports, name, port.protocol)
                                        })
                                    }
                                };
                                match resolved {
                                    Some(v) => (v, v),
                                    None => continue,
                                }
                            }
                            other => numeric_range(other),
                        };
                        cls.entry((c, port.protocol))
                            .or_default()
                            .push((range.0, range.1, g));
                    }
                }
            }
        }
        if let Some(g) = open {
            return IdentityRules {
                open: Some(g),
                ..IdentityRules::default()
            };
        }
        let none: Intervals = Vec::new();
        let mut any_peer = Vec::new();
        for (proto, ivs) in &any {
            for (first, last, grant) in segments(ivs, &none) {
                any_peer.push(PortSegment {
                    protocol: *proto,
                    first,
                    last,
                    grant,
                });
            }
        }
        let mut class_ports = Vec::new();
        for ((c, proto), ivs) in &cls {
            if all.contains_key(c) {
                continue;
            }
            let mask = any.get(proto).unwrap_or(&none);
            for (first, last, grant) in segments(ivs, mask) {
                class_ports.push(ClassPortSegment {
                    class: *c,
                    protocol: *proto,
                    first,
                    last,
                    grant,
                });
            }
        }
        IdentityRules {
            open: None,
            any_peer,
            class_all: all,
            class_ports,
        }
    }
}

/// Read-only class tables shared by the identities of one direction.
struct ClassView<'a> {
    atom_id: &'a BTreeMap<&'a Atom, usize>,
    atom_classes: &'a [Vec<u32>],
    class_keys: &'a [ClassKey],
}

impl ClassView<'_> {
    /// Every class some peer of `rule` matches.
    fn rule_classes(&self, policy: &Policy, rule: &Rule) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        for peer in &rule.peers {
            if let Some(&a) = self.atom_id.get(&Atom::of(policy, peer)) {
                if let Some(cs) = self.atom_classes.get(a) {
                    out.extend(cs.iter().copied());
                }
            }
        }
        out
    }
}

fn lookup_named(ports: &[(String, Protocol, u16)], name: &str, proto: Protocol) -> Option<u16> {
    ports
        .iter()
        .find(|(n, p, _)| n == name && *p == proto)
        .map(|(_, _, v)| *v)
}

/// Inclusive bounds of a numeric port spec; `None` is every port.
fn numeric_range(spec: &Option<PortSpec>) -> (u16, u16) {
    match spec {
        None => (0, u16::MAX),
        Some(PortSpec::Number(n)) => (*n, *n),
        Some(PortSpec::Range { start, end }) => ((*start).min(*end), (*start).max(*end)),
        // Named ports are resolved by the callers; an unresolved one would match nothing, but
        // callers never pass one here.
        Some(PortSpec::Named(_)) => (1, 0),
    }
}

/// Disjoint, merged segments of the union of `ivs`, each credited to the smallest grant covering
/// it, leaving out ports covered by `mask` (a map checked earlier that already accepts them).
fn segments(ivs: &[(u16, u16, Grant)], mask: &[(u16, u16, Grant)]) -> Vec<(u16, u16, Grant)> {
    let valid = |&&(lo, hi, _): &&(u16, u16, Grant)| lo <= hi;
    let mut bounds: BTreeSet<u32> = BTreeSet::new();
    for &(lo, hi, _) in ivs.iter().filter(valid).chain(mask.iter().filter(valid)) {
        bounds.insert(u32::from(lo));
        bounds.insert(u32::from(hi) + 1);
    }
    let bounds: Vec<u32> = bounds.into_iter().collect();
    let mut out: Vec<(u16, u16, Grant)> = Vec::new();
    for pair in bounds.windows(2) {
        let (Ok(lo), Ok(hi)) = (u16::try_from(pair[0]), u16::try_from(pair[1] - 1)) else {
            continue;
        };
        let covers = |&&(a, b, _): &&(u16, u16, Grant)| a <= lo && lo <= b;
        if mask.iter().filter(valid).any(|m| covers(&m)) {
            continue;
        }
        let Some(g) = ivs.iter().filter(valid).filter(covers).map(|x| x.2).min() else {
            continue;
        };
        match out.last_mut() {
            Some(prev) if u32::from(prev.1) + 1 == u32::from(lo) && prev.2 == g => prev.1 = hi,
            _ => out.push((lo, hi, g)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(policy: usize, rule: usize) -> Grant {
        Grant { policy, rule }
    }

    #[test]
    fn overlapping_port_ranges_become_disjoint_segments_credited_to_the_first_policy() {
        let ivs = vec![(80, 90, g(1, 0)), (85, 100, g(0, 2)), (200, 200, g(1, 1))];
        assert_eq!(
            segments(&ivs, &[]),
            vec![(80, 84, g(1, 0)), (85, 100, g(0, 2)), (200, 200, g(1, 1))]
        );
    }

    #[test]
    fn ports_already_open_to_every_peer_are_left_out_of_class_segments() {
        let ivs = vec![(0, u16::MAX, g(0, 0))];
        let mask = vec![(53, 53, g(1, 0))];
        assert_eq!(
            segments(&ivs, &mask),
            vec![(0, 52, g(0, 0)), (54, u16::MAX, g(0, 0))]
        );
    }

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
