//! One admin policy changed, as an incremental update: the tier verdict maps are named from the
//! admin policies selecting the identities, not from their elements, so a changed rule changes
//! elements of the maps holding it and nothing else (no chain or unrelated map recreated), and
//! old table + update = new table in the real kernel for (a) a port of one rule changed, (b) a
//! rule's action changed, (c) a policy deleted, (d) a policy added, on a synthetic cluster with
//! admin policies of every feature and on random ones.

// Helpers outside #[test] functions panic too: in a test a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

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

/// Where an admin rule is: policy index in the cluster, direction, rule index.
#[derive(Clone, Copy, Debug)]
struct RuleAt {
    policy: usize,
    direction: Direction,
    rule: usize,
}

impl RuleAt {
    fn get_mut(self, c: &mut Cluster) -> &mut AdminRule {
        let p = &mut c.admin_policies[self.policy];
        let rules = match self.direction {
            Direction::Ingress => &mut p.ingress,
            Direction::Egress => &mut p.egress,
        };
        &mut rules[self.rule]
    }

    /// `cnp/NAME ingress[0]`: how comments and counters label the rule.
    fn label(self, c: &Cluster) -> String {
        format!(
            "{} {}[{}]",
            c.admin_policies[self.policy].key(),
            self.direction,
            self.rule
        )
    }
}

/// The first admin rule of `r` that `fits` and decides some port segment of its tier maps.
fn deciding_rule(c: &Cluster, r: &Ruleset, fits: impl Fn(&AdminRule) -> bool) -> RuleAt {
    let ir = r.ir();
    let decides = |i: usize| {
        [&ir.ingress, &ir.egress]
            .iter()
            .flat_map(|d| d.tiers.iter())
            .any(|t| {
                t.segments
                    .iter()
                    .any(|s| s.rule == i && s.protocol.is_some())
            })
    };
    r.admin_rule_counters()
        .iter()
        .enumerate()
        .filter(|(i, _)| decides(*i))
        .find_map(|(_, a)| {
            let policy = c.admin_policies.iter().position(|p| p.key() == a.policy)?;
            let at = RuleAt {
                policy,
                direction: a.direction,
                rule: a.rule,
            };
            fits(c.admin_policies[policy].rules(a.direction).get(a.rule)?).then_some(at)
        })
        .expect("an admin rule deciding some segment")
}

fn has_numeric_port(rule: &AdminRule) -> bool {
    rule.ports
        .iter()
        .flatten()
        .any(|p| matches!(p, AdminPort::Protocol { ports: Some(_), .. }))
}

/// The first numeric port range of the rule moves up by one port.
fn move_first_port(rule: &mut AdminRule) {
    for p in rule.ports.iter_mut().flatten() {
        if let AdminPort::Protocol {
            ports: Some((lo, hi)),
            ..
        } = p
        {
            *lo = lo.saturating_add(1);
            *hi = (*hi).max(*lo);
            return;
        }
    }
}

/// Deny <-> Accept, Pass -> Deny (valid in both tiers).
fn flip_action(rule: &mut AdminRule) {
    rule.action = match rule.action {
        AdminAction::Deny => AdminAction::Accept,
        AdminAction::Accept | AdminAction::Pass => AdminAction::Deny,
    };
}

/// What an update script does, statement by statement.
#[derive(Default, Debug)]
struct ScriptEffect {
    /// Objects declared in the `table inet netpol { ... }` block (`chain X`, `map X`, ...).
    declared: Vec<String>,
    /// Maps whose elements are deleted or added.
    elements_of: BTreeSet<String>,
    /// `delete chain`/`delete map`/`delete counter` targets, as `chain X` etc.
    deleted: Vec<String>,
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
                    e.declared.push(format!("{kind} {name}"));
                }
            }
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["delete" | "add", "element", "inet", "netpol", map, ..] => {
                e.elements_of.insert(map.to_string());
            }
            ["delete", kind, "inet", "netpol", name] => e.deleted.push(format!("{kind} {name}")),
            _ => {}
        }
    }
    e
}

/// The tier maps of `r` whose elements are decided by the rule labelled `label`.
fn tier_maps_holding(r: &Ruleset, label: &str) -> BTreeSet<String> {
    let ir = r.ir();
    [&ir.ingress, &ir.egress]
        .iter()
        .flat_map(|d| d.tiers.iter())
        .filter(|t| {
            t.segments.iter().any(|s| {
                ir.admin_rules
                    .get(s.rule)
                    .is_some_and(|a| a.label() == label)
            })
        })
        .map(|t| t.name.clone())
        .collect()
}

fn chain_of(r: &Ruleset, label: &str) -> String {
    r.admin_rule_counters()
        .iter()
        .find(|a| a.label() == label)
        .map(|a| a.chain.clone())
        .expect("the rule has a chain")
}

#[test]
fn a_port_change_of_one_admin_rule_changes_only_elements_of_the_tier_maps_holding_it() {
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
    assert!(e.declared.is_empty(), "nothing is (re)declared: {script}");
    assert!(e.deleted.is_empty(), "nothing is deleted: {script}");
    let holding: BTreeSet<String> = tier_maps_holding(&old, &label)
        .union(&tier_maps_holding(&new, &label))
        .cloned()
        .collect();
    assert!(!e.elements_of.is_empty(), "{script}");
    assert!(
        e.elements_of.is_subset(&holding),
        "elements change only in the maps holding {label} ({holding:?}): {:?}",
        e.elements_of
    );
    // Every identity chain keeps its name: the maps it looks up kept theirs.
    let chains = |r: &Ruleset| -> Vec<String> {
        let ir = r.ir();
        [&ir.ingress, &ir.egress]
            .iter()
            .flat_map(|d| d.identities.iter().map(|i| i.chain.clone()))
            .collect()
    };
    assert_eq!(chains(&old), chains(&new));
    require_kernel();
    check_update(&old, &new).unwrap();
    check_update(&new, &old).unwrap();
}

#[test]
fn an_action_change_of_one_admin_rule_swaps_its_rule_chain_and_the_elements_jumping_to_it() {
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
    assert_eq!(e.declared, [format!("chain {new_chain}")], "{script}");
    assert_eq!(e.deleted, [format!("chain {old_chain}")], "{script}");
    let holding: BTreeSet<String> = tier_maps_holding(&old, &label)
        .union(&tier_maps_holding(&new, &label))
        .cloned()
        .collect();
    assert!(
        !e.elements_of.is_empty() && e.elements_of.is_subset(&holding),
        "elements change only in the maps holding {label} ({holding:?}): {:?}",
        e.elements_of
    );
    // The new chain is declared before elements jump to it, the old one deleted after.
    let declared = script.find(&format!("chain {new_chain} {{")).unwrap();
    let first_element = script.find(" element inet netpol ").unwrap();
    let flushed = script
        .find(&format!("flush chain inet netpol {old_chain}"))
        .unwrap();
    assert!(
        declared < first_element && first_element < flushed,
        "{script}"
    );
    require_kernel();
    check_update(&old, &new).unwrap();
    check_update(&new, &old).unwrap();
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
