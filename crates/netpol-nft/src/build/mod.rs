//! From the compiled policy set to the IR of one node: local identities, peer classes and grant
//! segments. The peers and subjects come from [`netpol_core::PolicySet`]; nothing here matches a
//! selector or an ipBlock against a workload on its own.
//!
//! The steps, per direction (the two directions are built side by side on two threads):
//! [`classes`] classifies every address the relevant peers care about into peer classes,
//! [`grants`] turns the rules isolating each local workload into port segments per class, and
//! [`direction`] groups local workloads with identical grants into identities. Naming (chain names
//! and mark values derived from content) is a pass of its own over the finished IR
//! ([`crate::naming`]).

mod classes;
mod direction;
mod grants;
mod tiers;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use netpol_core::policy_set::rules::{AdminPolicyId, AdminRuleId, PolicyId};
use netpol_core::{Cluster, Direction, EvalOptions, PolicySet, Workload};

use crate::{
    CompileError, CtMarkBits, DirectionIr, LocalWorkload, NodeOptions, PolicyCounter, Ruleset,
    RulesetIr, Summary, NON_PORT_PROTOCOLS,
};

/// Compiles the table enforcing the policies of the workloads that run on `node`.
///
/// Deterministic: the same cluster, options and node give the same text. Workloads without an
/// address cannot be enforced by address and are left out of the dispatch maps.
pub fn compile(cluster: &Cluster, opts: EvalOptions, node: &str) -> Result<Ruleset, CompileError> {
    compile_for_node(cluster, opts, node, &NodeOptions::default())
}

/// [`compile`] with the peer class in the conntrack mark bits `bits`.
pub fn compile_with_ct_mark(
    cluster: &Cluster,
    opts: EvalOptions,
    node: &str,
    bits: CtMarkBits,
) -> Result<Ruleset, CompileError> {
    let node_options = NodeOptions {
        ct_mark_bits: bits,
        ..NodeOptions::default()
    };
    compile_for_node(cluster, opts, node, &node_options)
}

/// [`compile`] with the node's own settings (conntrack mark bits, source-address check).
pub fn compile_for_node(
    cluster: &Cluster,
    opts: EvalOptions,
    node: &str,
    node_options: &NodeOptions,
) -> Result<Ruleset, CompileError> {
    if node.is_empty() {
        return Err(CompileError::EmptyNodeName);
    }
    // The address check and the policy set read the cluster independently: side by side.
    let (checked, set) = std::thread::scope(|scope| {
        let checked = scope.spawn(|| check_addresses(cluster));
        let set = PolicySet::for_selectors(cluster, opts);
        let checked = checked
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (checked, set)
    });
    checked?;
    let ir = build_ir(cluster, &set, node, node_options);
    // Freeing the set (every identity's labels, every peer's bitset) is a few milliseconds at
    // 10,000 workloads: done on the second core while this one names and renders.
    std::thread::scope(|scope| {
        scope.spawn(move || drop(set));
        finish(cluster, ir)
    })
}

/// [`compile`] from a policy set already compiled from `cluster` (one set serves every node).
pub fn compile_policy_set(
    cluster: &Cluster,
    set: &PolicySet,
    node: &str,
) -> Result<Ruleset, CompileError> {
    if node.is_empty() {
        return Err(CompileError::EmptyNodeName);
    }
    check_addresses(cluster)?;
    finish(
        cluster,
        build_ir(cluster, set, node, &NodeOptions::default()),
    )
}

/// A node's IR before naming, with the workloads it hosts.
struct UnnamedIr {
    local: Vec<usize>,
    ir: RulesetIr,
}

fn build_ir(
    cluster: &Cluster,
    set: &PolicySet,
    node: &str,
    node_options: &NodeOptions,
) -> UnnamedIr {
    let local = local_workloads(cluster, node);
    let isolation = Isolation::of(cluster, set, &local);
    // Counter names are the naming pass's (crate::naming::counter_names).
    let policies = isolation
        .relevant
        .iter()
        .map(|&id| PolicyCounter {
            key: set.policy(id).key.clone(),
            counter: String::new(),
        })
        .collect();
    let ctx = direction::Ctx {
        cluster,
        set,
        ir_index: &isolation.ir_index,
        admin_index: &isolation.admin_index,
    };
    // The two directions are independent: built side by side (the agent's change latency).
    let (ingress, egress) = std::thread::scope(|scope| {
        let egress = scope.spawn(|| ctx.direction(Direction::Egress, &isolation.egress));
        let ingress = ctx.direction(Direction::Ingress, &isolation.ingress);
        let egress = egress
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (ingress, egress)
    });
    let opts = set.options();
    let ir = RulesetIr {
        node: node.to_string(),
        ipblock_matches_workloads: opts.ipblock_matches_workloads,
        policies,
        ingress,
        egress,
        node_options: node_options.clone(),
        admin_rules: isolation.admin_rules,
        hairpin: isolation.hairpin,
    };
    UnnamedIr { local, ir }
}

/// Names, renders and summarizes a node's IR.
fn finish(cluster: &Cluster, unnamed: UnnamedIr) -> Result<Ruleset, CompileError> {
    let UnnamedIr { local, mut ir } = unnamed;
    let bits = ir.node_options.ct_mark_bits;
    let pre = crate::naming::name(&mut ir).map_err(|o| CompileError::TooManyClasses {
        direction: o.direction,
        classes: o.classes,
        bits,
        capacity: o.capacity,
    })?;
    let (text, elements, objects) = crate::render::render(&ir, pre);
    let summary = summary(cluster, &local, &ir, elements);
    Ok(Ruleset {
        text,
        summary,
        ir,
        objects,
    })
}

/// The workloads on `node`, sorted by key then kind (the index breaks ties, so this unstable
/// cached sort orders like a stable one).
fn local_workloads(cluster: &Cluster, node: &str) -> Vec<usize> {
    let mut local: Vec<usize> = (0..cluster.workloads.len())
        .filter(|&i| cluster.workloads[i].node.as_deref() == Some(node))
        .collect();
    local.sort_by_cached_key(|&i| {
        let w = &cluster.workloads[i];
        (w.key(), w.kind, i)
    });
    local
}

/// A local workload checked in one direction: the NetworkPolicies isolating it (in key order)
/// and the admin policies selecting it (in walk order); at least one of them is not empty.
pub(crate) struct Isolated {
    pub(crate) workload: usize,
    pub(crate) policies: Vec<PolicyId>,
    pub(crate) admin: Vec<AdminPolicyId>,
    /// Some admin policy selects the workload (in either direction): its hairpin traffic walks
    /// the tiers.
    pub(crate) hairpin: bool,
}

/// Which policies isolate each local workload, per direction, and the IR's policy numbering.
struct Isolation {
    ingress: Vec<Isolated>,
    egress: Vec<Isolated>,
    /// Policies isolating some local workload, in key order: the IR's policy list.
    relevant: Vec<PolicyId>,
    /// Policy -> its index in `relevant`.
    ir_index: BTreeMap<PolicyId, usize>,
    /// The admin rules of the admin policies selecting some local workload (the IR's list).
    admin_rules: Vec<crate::AdminRuleRef>,
    /// Admin rule -> its index in `admin_rules`.
    admin_index: BTreeMap<AdminRuleId, usize>,
    /// Addresses of the local workloads whose hairpin traffic walks the tiers.
    hairpin: BTreeSet<IpAddr>,
}

impl Isolation {
    fn of(cluster: &Cluster, set: &PolicySet, local: &[usize]) -> Self {
        let mut relevant: BTreeSet<PolicyId> = BTreeSet::new();
        let mut hairpin = BTreeSet::new();
        let admin_of = |wi: usize, d: Direction| match set.identity_of(wi) {
            Some(identity) => set.admin_policies_of(identity, d),
            None => Vec::new(),
        };
        let mut per_direction = |d: Direction| -> Vec<Isolated> {
            let mut list = Vec::new();
            for &wi in local {
                let w = &cluster.workloads[wi];
                if w.addresses.is_empty() {
                    continue;
                }
                let policies = set.isolating(w, wi, d);
                let admin = admin_of(wi, d);
                let tiered = !admin_of(wi, Direction::Ingress).is_empty()
                    || !admin_of(wi, Direction::Egress).is_empty();
                if tiered {
                    hairpin.extend(w.addresses.iter().copied());
                }
                if !policies.is_empty() || !admin.is_empty() {
                    relevant.extend(policies.iter().copied());
                    list.push(Isolated {
                        workload: wi,
                        policies,
                        admin,
                        hairpin: tiered,
                    });
                }
            }
            list
        };
        let ingress = per_direction(Direction::Ingress);
        let egress = per_direction(Direction::Egress);
        let (admin_rules, admin_index) = tiers::admin_rules(set, &ingress, &egress);
        let relevant: Vec<PolicyId> = set
            .policies_by_key()
            .iter()
            .copied()
            .filter(|id| relevant.contains(id))
            .collect();
        let ir_index = relevant
            .iter()
            .enumerate()
            .map(|(ir, &id)| (id, ir))
            .collect();
        Isolation {
            ingress,
            egress,
            relevant,
            ir_index,
            admin_rules,
            admin_index,
            hairpin,
        }
    }
}

fn summary(
    cluster: &Cluster,
    local: &[usize],
    ir: &RulesetIr,
    elements: BTreeMap<String, usize>,
) -> Summary {
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
    Summary {
        node: ir.node.clone(),
        ipblock_matches_workloads: ir.ipblock_matches_workloads,
        local_workloads,
        policies: ir.policies.clone(),
        ingress_identities: ir.ingress.identities.len(),
        egress_identities: ir.egress.identities.len(),
        ingress_classes: ir.ingress.classes.len(),
        egress_classes: ir.egress.classes.len(),
        total_elements: elements.values().sum(),
        elements,
        non_port_protocols: NON_PORT_PROTOCOLS.to_string(),
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
