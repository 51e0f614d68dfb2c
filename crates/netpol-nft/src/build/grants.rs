//! What the policies isolating one local workload allow, as grant segments per peer class: the
//! ports open to every peer, the classes open on every port, and `class . protocol . ports`
//! segments, each credited to the first rule (policy key, then rule order) that grants it.

use std::collections::{BTreeMap, BTreeSet};

use netpol_core::policy_set::rules::{CompiledRule, PolicyId, RulePeers};
use netpol_core::{Direction, PolicyPort, PortSpec, Protocol, Workload};

use super::classes::Classes;
use super::direction::Ctx;
use crate::{ClassPortSegment, Grant, IdentityRules, PortSegment};

/// Port intervals collected before splitting into disjoint segments.
type Intervals = Vec<(u16, u16, Grant)>;

/// The grants of one identity while its rules are walked.
#[derive(Default)]
struct Collected {
    open: Option<Grant>,
    any: BTreeMap<Protocol, Intervals>,
    all: BTreeMap<u32, Grant>,
    cls: BTreeMap<(u32, Protocol), Intervals>,
}

fn min_into(slot: &mut Option<Grant>, g: Grant) {
    *slot = Some(slot.map_or(g, |o| o.min(g)));
}

impl Ctx<'_> {
    /// What the policies `pols` (in key order) allow for the local workload `w`.
    pub(crate) fn identity_rules(
        &self,
        d: Direction,
        pols: &[PolicyId],
        w: &Workload,
        classes: &Classes,
    ) -> IdentityRules {
        let mut c = Collected::default();
        for &id in pols {
            let Some(&policy) = self.ir_index.get(&id) else {
                continue;
            };
            for &rule_id in self.set.policy(id).rules(d) {
                let rule = self.set.rule(rule_id);
                let g = Grant {
                    policy,
                    rule: rule.index,
                };
                let ports = &self.set.port_set(rule.ports).entries;
                match &rule.peers {
                    RulePeers::Any => any_peer(&mut c, d, w, ports, g, classes),
                    RulePeers::Listed(_) => {
                        listed_peers(&mut c, d, w, rule, ports, g, classes);
                    }
                }
            }
        }
        finish(c)
    }
}

/// A rule without peers: its ports open to every peer.
fn any_peer(
    c: &mut Collected,
    d: Direction,
    w: &Workload,
    ports: &[PolicyPort],
    g: Grant,
    classes: &Classes,
) {
    if ports.is_empty() {
        min_into(&mut c.open, g);
        return;
    }
    for port in ports {
        match &port.port {
            Some(PortSpec::Named(name)) => match d {
                // The destination is the local workload.
                Direction::Ingress => {
                    if let Some(v) = w.resolve_named_port(name, port.protocol) {
                        c.any.entry(port.protocol).or_default().push((v, v, g));
                    }
                }
                // The destination is any workload defining the name.
                Direction::Egress => {
                    for (class, key) in classes.keys.iter().enumerate() {
                        if let Some(v) = key.named_port(name, port.protocol) {
                            let class = u32::try_from(class).unwrap_or(u32::MAX);
                            c.cls
                                .entry((class, port.protocol))
                                .or_default()
                                .push((v, v, g));
                        }
                    }
                }
            },
            other => {
                let (lo, hi) = numeric_range(other);
                c.any.entry(port.protocol).or_default().push((lo, hi, g));
            }
        }
    }
}

/// A rule with peers: its ports open to every class one of its peers matches.
fn listed_peers(
    c: &mut Collected,
    d: Direction,
    w: &Workload,
    rule: &CompiledRule,
    ports: &[PolicyPort],
    g: Grant,
    classes: &Classes,
) {
    for class in rule_classes(rule, classes) {
        if ports.is_empty() {
            let e = c.all.entry(class).or_insert(g);
            *e = (*e).min(g);
            continue;
        }
        for port in ports {
            let range = match &port.port {
                Some(PortSpec::Named(name)) => {
                    let resolved = match d {
                        Direction::Ingress => w.resolve_named_port(name, port.protocol),
                        Direction::Egress => classes
                            .keys
                            .get(class as usize)
                            .and_then(|k| k.named_port(name, port.protocol)),
                    };
                    match resolved {
                        Some(v) => (v, v),
                        None => continue,
                    }
                }
                other => numeric_range(other),
            };
            c.cls
                .entry((class, port.protocol))
                .or_default()
                .push((range.0, range.1, g));
        }
    }
}

/// Every class some peer of `rule` matches.
fn rule_classes(rule: &CompiledRule, classes: &Classes) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    if let RulePeers::Listed(peers) = &rule.peers {
        for peer in peers {
            if let Some(&a) = classes.atom_of.get(peer) {
                if let Some(cs) = classes.atom_classes.get(a) {
                    out.extend(cs.iter().copied());
                }
            }
        }
    }
    out
}

/// Disjoint segments from the collected intervals.
fn finish(c: Collected) -> IdentityRules {
    if let Some(g) = c.open {
        return IdentityRules {
            open: Some(g),
            ..IdentityRules::default()
        };
    }
    let none: Intervals = Vec::new();
    let mut any_peer = Vec::new();
    for (proto, ivs) in &c.any {
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
    for ((class, proto), ivs) in &c.cls {
        if c.all.contains_key(class) {
            continue;
        }
        let mask = c.any.get(proto).unwrap_or(&none);
        for (first, last, grant) in segments(ivs, mask) {
            class_ports.push(ClassPortSegment {
                class: *class,
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
        class_all: c.all,
        class_ports,
        ..IdentityRules::default()
    }
}

/// Inclusive bounds of a numeric port spec; `None` is every port.
pub(super) fn numeric_range(spec: &Option<PortSpec>) -> (u16, u16) {
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
/// The admin tiers use it with the rules' walk positions: the first rule matching decides.
pub(super) fn segments<G: Copy + Ord>(
    ivs: &[(u16, u16, G)],
    mask: &[(u16, u16, G)],
) -> Vec<(u16, u16, G)> {
    let valid = |&&(lo, hi, _): &&(u16, u16, G)| lo <= hi;
    let mut bounds: BTreeSet<u32> = BTreeSet::new();
    for &(lo, hi, _) in ivs.iter().filter(valid).chain(mask.iter().filter(valid)) {
        bounds.insert(u32::from(lo));
        bounds.insert(u32::from(hi) + 1);
    }
    let bounds: Vec<u32> = bounds.into_iter().collect();
    let mut out: Vec<(u16, u16, G)> = Vec::new();
    for pair in bounds.windows(2) {
        let (Ok(lo), Ok(hi)) = (u16::try_from(pair[0]), u16::try_from(pair[1] - 1)) else {
            continue;
        };
        let covers = |&&(a, b, _): &&(u16, u16, G)| a <= lo && lo <= b;
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
}
