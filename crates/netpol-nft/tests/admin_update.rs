//! One admin policy changed, as an incremental update: the tiers' exact-port maps and lookup
//! chains are named from the least workload they serve, not from their elements, so a changed
//! rule changes the elements of the exact maps holding it in place (and replaces only the range
//! maps holding it), and recreates or rewrites no identity chain, grant map or unrelated map;
//! and old table + update = new table in the real kernel for (a) a port of one rule changed, (b)
//! a rule's action changed, (c) a policy deleted, (d) a policy added, on a synthetic cluster with
//! admin policies of every feature and on random ones.

// Helpers outside #[test] functions panic too: in a test a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::admin_edits::{deciding_rule, flip_action, has_numeric_port, move_first_port};
use common::update::{check_update, require_kernel};
use netpol_core::synth::{add_admin_policies, generate, SynthParams};
use netpol_core::*;
use netpol_nft::{compile, update_script, Ruleset};
use netpol_test_support::arb::{self, ClusterShape, TierShape, NODES};
use proptest::prelude::*;

const NODE: &str = "node-00";

/// 400 workloads, 80 NetworkPolicies on 4 nodes, and 16 admin policies of both tiers using
/// every feature (`synth::add_admin_policies`).
fn tiered_synthetic() -> Cluster {
    let mut c = generate(&SynthParams {
        workloads: 400,
        namespaces: 16,
        policies: 80,
        nodes: 4,
        seed: 3,
    });
    add_admin_policies(&mut c, 16, 1);
    c
}

/// What an update script does, statement by statement.
#[derive(Default, Debug)]
struct ScriptEffect {
    /// Objects declared in the `table inet netpol { ... }` block (`chain X`, `map X`, ...).
    declared: BTreeSet<String>,
    /// Maps whose elements are deleted or added.
    elements_of: BTreeSet<String>,
    /// Chains flushed and filled again (flushed, rules added, not deleted).
    rewritten: BTreeSet<String>,
    /// `delete chain`/`delete map`/`delete counter` targets, as `chain X` etc.
    deleted: BTreeSet<String>,
}

fn effect(script: &str) -> ScriptEffect {
    let mut e = ScriptEffect::default();
    let mut in_block = false;
    for line in script.lines() {
        if line == "table inet netpol {" {
            in_block = true;
            continue;
        }
        if in_block {
            if line == "}" {
                in_block = false;
            } else if let Some(decl) = line.strip_prefix('\t').filter(|l| !l.starts_with('\t')) {
                let mut words = decl.split_whitespace();
                if let (Some(kind), Some(name)) = (words.next(), words.next()) {
                    e.declared.insert(format!("{kind} {name}"));
                }
            }
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["delete" | "add", "element", "inet", "netpol", map, ..] => {
                e.elements_of.insert(map.to_string());
            }
            ["delete", kind, "inet", "netpol", name] => {
                e.deleted.insert(format!("{kind} {name}"));
            }
            ["flush", "chain", "inet", "netpol", name] => {
                e.rewritten.insert(name.to_string());
            }
            _ => {}
        }
    }
    let deleted = &e.deleted;
    e.rewritten
        .retain(|c| !deleted.contains(&format!("chain {c}")));
    e
}

/// `map X` for every X.
fn maps(names: &BTreeSet<String>) -> BTreeSet<String> {
    names.iter().map(|n| format!("map {n}")).collect()
}

/// The identity chains of both directions.
fn identity_chains(r: &Ruleset) -> BTreeSet<String> {
    let ir = r.ir();
    [&ir.ingress, &ir.egress]
        .iter()
        .flat_map(|d| d.identities.iter().map(|i| i.chain.clone()))
        .collect()
}

/// The tier maps (exact and range) of `r` whose elements are decided by the rule labelled
/// `label`.
fn tier_maps_holding(r: &Ruleset, label: &str) -> BTreeSet<String> {
    let ir = r.ir();
    [&ir.ingress, &ir.egress]
        .iter()
        .flat_map(|d| d.tiers.iter())
        .flat_map(|t| {
            t.segments
                .iter()
                .filter(|s| {
                    ir.admin_rules
                        .get(s.rule)
                        .is_some_and(|a| a.label() == label)
                })
                .map(|s| {
                    if s.exact() {
                        t.exact_map.clone()
                    } else {
                        t.range_map.clone()
                    }
                })
        })
        .collect()
}

/// Whether `object` (`map X`, `chain X`) is a tier map or a tier lookup chain.
fn is_tier_object(object: &str) -> bool {
    let name = object.split_whitespace().nth(1).unwrap_or("");
    ["_t_", "_tx_", "_tl_"]
        .iter()
        .any(|infix| name.get(2..).is_some_and(|rest| rest.starts_with(infix)))
}

/// No identity chain is declared, deleted or rewritten by `e`.
fn identity_chains_untouched(e: &ScriptEffect, old: &Ruleset, new: &Ruleset, script: &str) {
    assert_eq!(identity_chains(old), identity_chains(new));
    let identities = identity_chains(new);
    assert!(
        e.rewritten.is_disjoint(&identities),
        "rewritten: {:?}\n{script}",
        e.rewritten
    );
    for object in e.declared.iter().chain(&e.deleted) {
        let name = object.split_whitespace().nth(1).unwrap_or("");
        assert!(!identities.contains(name), "{object}: {script}");
    }
}

fn chain_of(r: &Ruleset, label: &str) -> String {
    r.admin_rule_counters()
        .iter()
        .find(|a| a.label() == label)
        .map(|a| a.chain.clone())
        .expect("the rule has a chain")
}

#[test]
fn a_port_change_of_one_admin_rule_changes_the_elements_of_the_tier_maps_holding_it_and_no_identity_chain(
) {
    let c = tiered_synthetic();
    let opts = EvalOptions::default();
    let old = compile(&c, opts, NODE).unwrap();
    let at = deciding_rule(&c, &old, has_numeric_port);
    let label = at.label(&c);
    let mut changed = c.clone();
    move_first_port(at.get_mut(&mut changed));
    let new = compile(&changed, opts, NODE).unwrap();
    assert_ne!(old.text, new.text, "{label}'s port decides some segment");
    let script = update_script(&old, &new).unwrap();
    let e = effect(&script);
    let (before, after) = (
        tier_maps_holding(&old, &label),
        tier_maps_holding(&new, &label),
    );
    // Only tier objects come and go, and only elements of maps holding the rule change.
    assert!(
        !e.elements_of.is_empty() || !e.declared.is_empty(),
        "{script}"
    );
    for object in e.declared.iter().chain(&e.deleted) {
        assert!(is_tier_object(object), "{object}: {script}");
    }
    let holding: BTreeSet<String> = before.union(&after).cloned().collect();
    assert!(
        e.elements_of.is_subset(&holding),
        "{:?} not in {holding:?}",
        e.elements_of
    );
    assert!(e
        .declared
        .iter()
        .filter(|o| o.starts_with("map "))
        .all(|m| maps(&after).contains(m)));
    identity_chains_untouched(&e, &old, &new, &script);
    require_kernel();
    check_update(&old, &new).unwrap();
    check_update(&new, &old).unwrap();
}

#[test]
fn an_action_change_of_one_admin_rule_swaps_its_rule_chain_and_changes_the_elements_of_the_tier_maps_holding_it(
) {
    let c = tiered_synthetic();
    let opts = EvalOptions::default();
    let old = compile(&c, opts, NODE).unwrap();
    let at = deciding_rule(&c, &old, |_| true);
    let label = at.label(&c);
    let mut changed = c.clone();
    flip_action(at.get_mut(&mut changed));
    let new = compile(&changed, opts, NODE).unwrap();
    let (old_chain, new_chain) = (chain_of(&old, &label), chain_of(&new, &label));
    assert_ne!(
        old_chain, new_chain,
        "the rule chain is named from what it does"
    );
    let script = update_script(&old, &new).unwrap();
    let e = effect(&script);
    // The rule's chain is swapped and the elements of the tier maps holding it changed (range
    // maps replaced); nothing else comes or goes.
    assert!(
        e.declared.contains(&format!("chain {new_chain}")),
        "{script}"
    );
    assert!(
        e.deleted.contains(&format!("chain {old_chain}")),
        "{script}"
    );
    for object in e.declared.iter().chain(&e.deleted) {
        assert!(
            is_tier_object(object)
                || *object == format!("chain {new_chain}")
                || *object == format!("chain {old_chain}"),
            "{object}: {script}"
        );
    }
    let holding: BTreeSet<String> = tier_maps_holding(&old, &label)
        .union(&tier_maps_holding(&new, &label))
        .cloned()
        .collect();
    assert!(e.elements_of.is_subset(&holding), "{:?}", e.elements_of);
    identity_chains_untouched(&e, &old, &new, &script);
    // The new rule chain is declared (in the block) before any element jumps to it, and the old
    // one deleted after the elements and maps that jumped to it.
    let declared_at = script.find(&format!("chain {new_chain} {{")).unwrap();
    if let Some(first_add) = script.find("add element inet netpol ") {
        assert!(declared_at < first_add, "{script}");
    }
    let chain_deleted = script
        .find(&format!("delete chain inet netpol {old_chain}\n"))
        .unwrap();
    for last in ["delete element inet netpol ", "delete map inet netpol "] {
        if let Some(at) = script.rfind(last) {
            assert!(at < chain_deleted, "{script}");
        }
    }
    require_kernel();
    check_update(&old, &new).unwrap();
    check_update(&new, &old).unwrap();
}

/// `c` with the first numeric port of policy `i`'s rules moved up by one; `None` when it has
/// none.
fn network_policy_port_moved(c: &Cluster, i: usize) -> Option<Cluster> {
    let mut t = c.clone();
    let p = t.policies.get_mut(i)?;
    let port = p
        .ingress
        .iter_mut()
        .chain(p.egress.iter_mut())
        .flat_map(|r| r.ports.iter_mut())
        .find_map(|port| match &mut port.port {
            Some(PortSpec::Number(n)) if *n < u16::MAX => Some(n),
            _ => None,
        })?;
    *port += 1;
    Some(t)
}

#[test]
fn a_network_policy_edit_renames_no_tier_object_even_where_it_renames_tiered_identity_chains() {
    let c = tiered_synthetic();
    let opts = EvalOptions::default();
    let old = compile(&c, opts, NODE).unwrap();
    let mut tiered_renamed = 0;
    for i in 0..c.policies.len() {
        let Some(changed) = network_policy_port_moved(&c, i) else {
            continue;
        };
        let new = compile(&changed, opts, NODE).unwrap();
        let script = update_script(&old, &new).unwrap();
        let e = effect(&script);
        for object in e.declared.iter().chain(&e.deleted) {
            assert!(!is_tier_object(object), "{object}: {script}");
        }
        assert!(
            e.elements_of
                .iter()
                .all(|m| !is_tier_object(&format!("map {m}"))),
            "{script}"
        );
        let ir = new.ir();
        tiered_renamed += [&ir.ingress, &ir.egress]
            .iter()
            .flat_map(|d| d.identities.iter())
            .filter(|id| id.rules.admin.is_some() || id.rules.baseline.is_some())
            .filter(|id| e.declared.contains(&format!("chain {}", id.chain)))
            .count();
        if tiered_renamed >= 3 {
            break;
        }
    }
    assert!(
        tiered_renamed >= 3,
        "some edits rename identity chains walking the tiers"
    );
}

#[test]
fn deleting_or_adding_an_admin_policy_updates_the_kernel_to_exactly_the_new_table() {
    require_kernel();
    let c = tiered_synthetic();
    let opts = EvalOptions::default();
    let old = compile(&c, opts, NODE).unwrap();
    let at = deciding_rule(&c, &old, |_| true);
    let mut deleted = c.clone();
    let gone = deleted.admin_policies.remove(at.policy);
    let without = compile(&deleted, opts, NODE).unwrap();
    let script = update_script(&old, &without).unwrap();
    for a in old
        .admin_rule_counters()
        .iter()
        .filter(|a| a.policy == gone.key())
    {
        assert!(
            script.contains(&format!("delete counter inet netpol {}\n", a.counter)),
            "{script}"
        );
    }
    // (c) the policy deleted, and (d) added back (the reverse update).
    check_update(&old, &without).unwrap();
    check_update(&without, &old).unwrap();
}

/// One admin policy of a random cluster edited: a rule's ports or action changed, the policy
/// replaced, dropped, or a new one added.
#[derive(Clone, Debug)]
enum AdminEdit {
    Ports(usize),
    Action(usize),
    Replace(usize, AdminPolicy),
    Drop(usize),
    Add(AdminPolicy),
}

fn an_admin_edit() -> impl Strategy<Value = AdminEdit> {
    prop_oneof![
        (0..4usize).prop_map(AdminEdit::Ports),
        (0..4usize).prop_map(AdminEdit::Action),
        (0..4usize, arb::tiers::admin_policy(false)).prop_map(|(i, p)| AdminEdit::Replace(i, p)),
        (0..4usize).prop_map(AdminEdit::Drop),
        arb::tiers::admin_policy(false).prop_map(AdminEdit::Add),
    ]
}

fn first_rule(p: &mut AdminPolicy) -> Option<&mut AdminRule> {
    p.ingress.first_mut().or(p.egress.first_mut())
}

fn edited(c: &Cluster, edit: AdminEdit) -> Cluster {
    let mut t = c.clone();
    let n = t.admin_policies.len();
    match edit {
        AdminEdit::Ports(i) if i < n => {
            if let Some(r) = first_rule(&mut t.admin_policies[i]) {
                if has_numeric_port(r) {
                    move_first_port(r);
                } else {
                    r.ports = Some(vec![AdminPort::Protocol {
                        protocol: Protocol::Tcp,
                        ports: Some((81, 90)),
                    }]);
                }
            }
        }
        AdminEdit::Action(i) if i < n => {
            if let Some(r) = first_rule(&mut t.admin_policies[i]) {
                flip_action(r);
            }
        }
        AdminEdit::Replace(i, mut p) if i < n => {
            p.name = format!("edited{i}");
            t.admin_policies[i] = p;
        }
        AdminEdit::Drop(i) if i < n => {
            t.admin_policies.remove(i);
        }
        AdminEdit::Add(mut p) => {
            p.name = "added".to_string();
            t.admin_policies.push(p);
        }
        _ => {}
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn old_plus_an_admin_policy_update_equals_new_in_the_kernel(
        c in arb::with_tiers(arb::cluster(&ClusterShape::on_two_nodes()), &TierShape::for_the_compiler()),
        edit in an_admin_edit(),
    ) {
        require_kernel();
        let opts = EvalOptions::default();
        let target = edited(&c, edit);
        for node in NODES {
            let old = compile(&c, opts, node).unwrap();
            let new = compile(&target, opts, node).unwrap();
            if let Err(e) = check_update(&old, &new) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}
