//! The key constraint: what a packet meets does not grow with the cluster. Every chain keeps a
//! small, fixed number of rules, however many policies, peers and workloads there are; the cluster
//! grows only the set/map element counts (and the number of identity chains, of which a packet
//! visits at most one per direction).

mod common;

use common::*;
use netpol_core::EvalOptions;
use netpol_nft::compile;

#[test]
fn rules_per_chain_stay_fixed_as_the_cluster_grows_tenfold() {
    let small = compile(&synthetic(100, 40, 4), EvalOptions::default(), "node0").unwrap();
    let large = compile(&synthetic(1000, 400, 4), EvalOptions::default(), "node0").unwrap();
    assert!(large.summary.total_elements > small.summary.total_elements);
    for r in [&small, &large] {
        let chains = chain_rules(&r.text);
        assert_eq!(chains["forward"], 7);
        assert_eq!(chains["input"], 4);
        assert_eq!(chains["in_classify"], 5);
        assert_eq!(chains["eg_classify"], 5);
        for (name, n) in &chains {
            assert!(*n <= 7, "chain {name} has {n} rules");
        }
        // Worst path: forward (7, the hairpin lookup included) + egress identity (6) + classify
        // (5) + ingress identity (6) + classify (5). A packet to the node: input (4) + egress
        // identity + classify.
        let identity_max = chains
            .iter()
            .filter(|(n, _)| {
                !matches!(
                    n.as_str(),
                    "forward" | "input" | "in_classify" | "eg_classify"
                )
            })
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        assert!(7 + 2 * (identity_max + 5) <= 29);
    }
}

#[test]
fn identities_group_workloads_with_the_same_rules() {
    let r = compile(&synthetic(1000, 400, 4), EvalOptions::default(), "node0").unwrap();
    let isolated = r
        .summary
        .local_workloads
        .iter()
        .filter(|w| w.ingress_identity.is_some())
        .count();
    assert!(isolated > 0);
    // Replicas come in groups of ten consecutive workloads (two or three per node) with the same
    // namespace, labels and named ports, so they share their identity.
    assert!(
        r.summary.ingress_identities * 2 <= isolated,
        "{} identities for {isolated} isolated workloads",
        r.summary.ingress_identities
    );
}
