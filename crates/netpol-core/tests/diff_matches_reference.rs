//! Property test: the diff of two connectivity maps ([`netpol_core::analysis::diff`]) is exactly
//! the per-pair difference of the plain evaluator's answers on the two clusters, on random small
//! clusters and random edits of them (policies replaced, added or removed, a workload removed,
//! one added, labels moved between workloads, a workload scaled between one instance and several,
//! a node removed). Every pair includes a workload's own: between two of its replicas where it
//! has them (an instance reaching its own address never changes). Checked: which pairs changed and
//! how (gained, lost, changed), the ports gained and lost per family, the counts, and the
//! connections of endpoints present on one side only.

use std::collections::BTreeMap;

use netpol_core::analysis::diff::{diff_maps, Change};
use netpol_core::analysis::Analyzer;
use netpol_core::eval::{evaluate_ends, FlowEnd};
use netpol_core::model::*;
use netpol_test_support::arb::{self, ClusterShape};
use proptest::prelude::*;

fn end(c: &Cluster, i: usize) -> FlowEnd {
    if i < c.workloads.len() {
        FlowEnd::Workload {
            index: i,
            address: None,
        }
    } else {
        FlowEnd::Node(i - c.workloads.len())
    }
}

/// The evaluator's answers for one pair: per (protocol, port), the allowed flag per family the
/// flow uses (in the source's order).
type Answers = Vec<Vec<(Option<IpFamily>, bool)>>;

fn answers(c: &Cluster, opts: EvalOptions, s: usize, d: usize, ports: &[u16]) -> Answers {
    let mut out = Vec::new();
    for protocol in Protocol::ALL {
        for &port in ports {
            let fv = evaluate_ends(c, opts, &end(c, s), &end(c, d), protocol, port);
            out.push(fv.verdicts.iter().map(|(f, v)| (*f, v.allowed)).collect());
        }
    }
    out
}

fn any_allowed(a: &Answers) -> bool {
    a.iter().flatten().any(|(_, allowed)| *allowed)
}

/// Endpoint identities: `w:kind/ns/name` or `n:name`.
fn ids(c: &Cluster) -> Vec<String> {
    let w = c
        .workloads
        .iter()
        .map(|w| format!("w:{}/{}", w.kind.short_name(), w.key()));
    w.chain(c.nodes.iter().map(|n| format!("n:{}", n.name)))
        .collect()
}

fn in_ranges(r: &[(u16, u16)], port: u16) -> bool {
    r.iter().any(|(lo, hi)| *lo <= port && port <= *hi)
}

fn is_node(c: &Cluster, i: usize) -> bool {
    i >= c.workloads.len()
}

/// Connections of endpoint `e` of `c` as the evaluator sees them: (outgoing, incoming); its own
/// pair counts once each way when it is a flow between two of its replicas.
fn connections(c: &Cluster, opts: EvalOptions, e: usize, ports: &[u16]) -> (usize, usize) {
    let total = c.workloads.len() + c.nodes.len();
    let replicated = c.workloads.get(e).is_some_and(|w| w.has_replicas());
    let mut out = 0;
    let mut inc = 0;
    for t in (0..total).filter(|&t| t != e || replicated) {
        if is_node(c, e) && is_node(c, t) {
            // Nothing isolates a node.
            out += 1;
            inc += 1;
            continue;
        }
        out += usize::from(any_allowed(&answers(c, opts, e, t, ports)));
        inc += usize::from(any_allowed(&answers(c, opts, t, e, ports)));
    }
    (out, inc)
}

fn check(old: &Cluster, new: &Cluster, opts: EvalOptions) -> Result<(), TestCaseError> {
    let (oa, na) = (Analyzer::new(old, opts), Analyzer::new(new, opts));
    let (om, nm) = (oa.connectivity_map(), na.connectivity_map());
    let diff = diff_maps(old, &om, new, &nm);
    let ports = netpol_test_support::interesting_ports([old, new], &[]);
    let old_ids: BTreeMap<String, usize> = ids(old)
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    let new_ids = ids(new);
    let listed: BTreeMap<(usize, usize), _> = diff.pairs().map(|p| (p.new, p)).collect();
    let mut expected = 0;
    for (s, sk) in new_ids.iter().enumerate() {
        for (d, dk) in new_ids.iter().enumerate() {
            let (Some(&os), Some(&od)) = (old_ids.get(sk), old_ids.get(dk)) else {
                continue;
            };
            if is_node(new, s) && is_node(new, d) {
                prop_assert!(!listed.contains_key(&(s, d)));
                continue;
            }
            let before = answers(old, opts, os, od, &ports);
            let after = answers(new, opts, s, d, &ports);
            let Some(pair) = listed.get(&(s, d)) else {
                prop_assert_eq!(&before, &after, "{} -> {} unlisted but changed", sk, dk);
                continue;
            };
            expected += 1;
            prop_assert_ne!(&before, &after, "{} -> {} listed but unchanged", sk, dk);
            prop_assert_eq!(pair.old, (os, od));
            let change = match (any_allowed(&before), any_allowed(&after)) {
                (false, _) => Change::Gained,
                (_, false) => Change::Lost,
                _ => Change::Changed,
            };
            prop_assert_eq!(pair.change, change, "{} -> {}", sk, dk);
            let (gained, lost) = (pair.gained(), pair.lost());
            let cells = Protocol::ALL
                .iter()
                .enumerate()
                .flat_map(|(pi, _)| ports.iter().map(move |&port| (pi, port)));
            for (i, (pi, port)) in cells.enumerate() {
                for ((f, was), (_, is)) in before[i].iter().zip(&after[i]) {
                    let f = f.unwrap_or(IpFamily::V4);
                    let g = in_ranges(&gained.family(f)[pi], port);
                    let l = in_ranges(&lost.family(f)[pi], port);
                    prop_assert_eq!(g, *is && !*was, "gained {} -> {} {}/{}", sk, dk, pi, port);
                    prop_assert_eq!(l, *was && !*is, "lost {} -> {} {}/{}", sk, dk, pi, port);
                }
            }
        }
    }
    prop_assert_eq!(listed.len(), expected);
    let counts = diff.counts();
    prop_assert_eq!(counts.total(), expected);
    for (what, count) in [
        (Change::Gained, counts.gained),
        (Change::Lost, counts.lost),
        (Change::Changed, counts.changed),
    ] {
        prop_assert_eq!(listed.values().filter(|p| p.change == what).count(), count);
    }
    for (c, sided) in [(new, diff.added()), (old, diff.removed())] {
        for one in sided {
            let (out, inc) = connections(c, opts, one.index, &ports);
            prop_assert_eq!((one.outgoing, one.incoming), (out, inc), "{}", one.key);
        }
    }
    let unchanged = expected == 0
        && diff
            .added()
            .iter()
            .chain(diff.removed())
            .all(|o| !o.connected());
    prop_assert_eq!(diff.is_unchanged(), unchanged);
    Ok(())
}

/// An edit of a cluster: keep the first `keep` policies and append `extra` ones (named so that
/// some take the name of a dropped one, a "changed" policy), remove workload `drop`, add a copy
/// of workload 0 under a new name, move workload `relabel`'s labels to the next one, scale
/// workload `rescale` between one instance and two, remove the last node.
#[derive(Clone, Debug)]
struct Edit {
    keep: usize,
    extra: Vec<Policy>,
    drop: Option<usize>,
    add: bool,
    relabel: Option<usize>,
    rescale: Option<usize>,
    drop_node: bool,
}

fn edit(shape: &ClusterShape) -> impl Strategy<Value = Edit> {
    (
        0usize..5,
        prop::collection::vec(arb::policy(shape), 0..3),
        prop::option::of(0usize..7),
        any::<bool>(),
        prop::option::of(0usize..7),
        prop::option::of(0usize..7),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(keep, extra, drop, add, relabel, rescale, drop_node)| Edit {
                keep,
                extra,
                drop,
                add,
                relabel,
                rescale,
                drop_node,
            },
        )
}

fn apply(old: &Cluster, e: &Edit) -> Cluster {
    let mut new = old.clone();
    new.policies.truncate(e.keep);
    for (i, p) in e.extra.iter().enumerate() {
        let mut p = p.clone();
        p.name = format!("p{}", e.keep + i);
        new.policies.push(p);
    }
    let n = new.workloads.len();
    if let Some(j) = e.relabel.filter(|&j| j < n && n > 1) {
        new.workloads[(j + 1) % n].labels = old.workloads[j].labels.clone();
    }
    if let Some(w) = e.rescale.and_then(|j| new.workloads.get_mut(j)) {
        w.instances = if w.has_replicas() {
            Instances::Count(1)
        } else {
            Instances::Count(2)
        };
    }
    if e.add {
        let mut w = new.workloads[0].clone();
        w.name = "added".to_string();
        new.workloads.push(w);
    }
    if let Some(j) = e.drop.filter(|&j| j < n) {
        new.workloads.remove(j);
    }
    if e.drop_node {
        new.nodes.pop();
    }
    new
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_diff_is_the_per_pair_difference_of_the_evaluator(
        (old, e) in arb::cluster(&ClusterShape::for_the_analyzer())
            .prop_flat_map(|c| (Just(c), edit(&ClusterShape::for_the_analyzer()))),
    ) {
        let new = apply(&old, &e);
        check(&old, &new, EvalOptions { ipblock_matches_workloads: true })?;
        check(&old, &new, EvalOptions { ipblock_matches_workloads: false })?;
    }

    #[test]
    fn the_diff_is_the_per_pair_difference_of_the_evaluator_with_nodes(
        (old, e) in arb::cluster(&ClusterShape::for_the_analyzer_with_nodes())
            .prop_flat_map(|c| (Just(c), edit(&ClusterShape::for_the_analyzer_with_nodes()))),
    ) {
        let new = apply(&old, &e);
        check(&old, &new, EvalOptions { ipblock_matches_workloads: true })?;
    }

    #[test]
    fn the_diff_under_the_admin_tiers_is_the_per_pair_difference_of_the_evaluator(
        (old, e, keep_admin, extra_admin) in arb::with_tiers(
            arb::cluster(&ClusterShape::for_the_analyzer_with_nodes()),
            &arb::TierShape::for_the_analyzer(),
        )
        .prop_flat_map(|c| (
            Just(c),
            edit(&ClusterShape::for_the_analyzer_with_nodes()),
            0usize..4,
            prop::option::of(arb::tiers::admin_policy(true)),
        )),
    ) {
        let mut new = apply(&old, &e);
        new.admin_policies.truncate(keep_admin);
        if let Some(mut extra) = extra_admin {
            extra.name = "added".to_string();
            new.admin_policies.push(extra);
        }
        check(&old, &new, EvalOptions { ipblock_matches_workloads: true })?;
    }

    #[test]
    fn a_cluster_compared_with_itself_has_no_change(
        c in arb::cluster(&ClusterShape::for_the_analyzer_with_nodes()),
    ) {
        let a = Analyzer::new(&c, EvalOptions::default()).connectivity_map();
        let diff = diff_maps(&c, &a, &c, &a);
        prop_assert!(diff.is_unchanged());
        prop_assert_eq!(diff.pairs().count(), 0);
    }
}
