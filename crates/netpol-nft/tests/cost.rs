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
        assert_eq!(chains["forward"], 8);
        assert_eq!(chains["input"], 5);
        assert_eq!(chains["in_classify"], 5);
        assert_eq!(chains["eg_classify"], 5);
        for (name, n) in &chains {
            assert!(*n <= 8, "chain {name} has {n} rules");
        }
        // Worst path: forward (8, the table counter and the hairpin lookups included) + egress identity (6) + classify
        // (5) + ingress identity (6) + classify (5). A packet to the node: input (5) + egress
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
        assert!(8 + 2 * (identity_max + 5) <= 30);
    }
}

#[test]
fn rules_per_chain_stay_fixed_with_ten_times_the_admin_policies() {
    let with = |workloads, policies, admin| {
        let mut c = synthetic(workloads, policies, 4);
        c.admin_policies = netpol_test_support::admin_set::synthetic_admin_policies(admin);
        compile(&c, EvalOptions::default(), "node0").unwrap()
    };
    let small = with(100, 40, 10);
    let large = with(1000, 400, 100);
    assert!(large.admin_rule_counters().len() > small.admin_rule_counters().len());
    for r in [&small, &large] {
        let chains = chain_rules(&r.text);
        assert_eq!(chains["forward"], 8);
        assert_eq!(chains["in_classify"], 5);
        // An identity chain: classify, the jump to the Admin tier's lookup chain, the two
        // hairpin lookups, then the NetworkPolicy grants (open, any, all, port), log and drop;
        // or the Admin and Baseline jumps and the default. A lookup chain: its two maps. An
        // admin rule's chain: at most counter, log, drop.
        for (name, n) in &chains {
            assert!(*n <= 10, "chain {name} has {n} rules");
        }
        assert!(
            r.text.contains(" th dport vmap @eg_t_"),
            "some identity walks the Admin tier"
        );
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
