//! What lint's property tests do to a cluster.

use std::collections::BTreeSet;

use netpol_core::lint::redundant::redundancies;
use netpol_core::model::{Cluster, Direction, EvalOptions};

/// The cluster without every rule and policy NP003 reports (redundant): removing them must change
/// no verdict, which the property tests hold.
pub fn without_redundancies(c: &Cluster, opts: EvalOptions) -> Cluster {
    let found = redundancies(c, opts);
    let mut out = c.clone();
    // Rules from the back, so that the indices stay valid; whole policies last.
    let mut rules: Vec<(usize, Direction, usize)> = found
        .iter()
        .filter_map(|r| r.rule.map(|(d, i)| (r.policy, d, i)))
        .collect();
    rules.sort_by_key(|r| std::cmp::Reverse(r.2));
    for (p, d, i) in rules {
        match d {
            Direction::Ingress => out.policies[p].ingress.remove(i),
            Direction::Egress => out.policies[p].egress.remove(i),
        };
    }
    let gone: BTreeSet<usize> = found
        .iter()
        .filter(|r| r.rule.is_none())
        .map(|r| r.policy)
        .collect();
    out.policies = out
        .policies
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !gone.contains(i))
        .map(|(_, p)| p)
        .collect();
    out
}
