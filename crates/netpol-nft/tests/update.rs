//! Incremental updates against the real kernel: loading the old table and then
//! `update_script(old, new)` must leave exactly the table that loading `new` directly leaves
//! (compared as nft's JSON listing without handles and counter values, with set elements and
//! top-level objects in a canonical order, since hash sets list in no fixed order).
//! Skipped (with a message) when not root or without `nft`.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::update::{check_update, require_kernel};
use common::*;
use netpol_core::*;
use netpol_nft::{compile, update_script};
use netpol_test_support::arb::{self, ClusterShape, NODES};
use proptest::prelude::*;

#[test]
fn an_update_between_the_users_page_and_an_edited_copy_matches_a_full_load() {
    require_kernel();
    let old_c = users_page();
    let mut new_c = old_c.clone();
    // Widen one policy's port range and drop another policy altogether.
    let mut edited = false;
    for p in &mut new_c.policies {
        for r in &mut p.egress {
            for port in &mut r.ports {
                if let Some(PortSpec::Range { end, .. }) = &mut port.port {
                    *end = 33000;
                    edited = true;
                }
            }
        }
    }
    assert!(edited, "the users' page has a port range to widen");
    new_c
        .policies
        .retain(|p| p.name != "allow-ingress-from-vm-b-to-vm-a");
    let opts = EvalOptions::default();
    let old = compile(&old_c, opts, "virtlab-2").unwrap();
    let new = compile(&new_c, opts, "virtlab-2").unwrap();
    let script = update_script(&old, &new).unwrap();
    // Only what changed is in it: the dropped policy's counter goes, nothing is recreated.
    assert!(script
        .contains("delete counter inet netpol pol_test-project_allow-ingress-from-vm-b-to-vm-a"));
    assert!(!script.contains("delete table"));
    assert!(!script.contains("counter pol_test-project_vm-a-deny-ingress"));
    check_update(&old, &new).unwrap();
    check_update(&new, &old).unwrap();
}

#[test]
fn a_one_policy_port_edit_in_a_synthetic_cluster_touches_a_few_objects_only() {
    let params = netpol_core::synth::SynthParams {
        workloads: 1000,
        namespaces: 40,
        policies: 200,
        nodes: 10,
        seed: 7,
    };
    let c = netpol_core::synth::generate(&params);
    let opts = EvalOptions::default();
    let node = "node-00";
    let old = compile(&c, opts, node).unwrap();
    // Edit a numeric port of a policy that isolates something on this node.
    let key = old.summary.policies.first().unwrap().key.clone();
    let mut c2 = c.clone();
    let p = c2.policies.iter_mut().find(|p| p.key() == key).unwrap();
    let mut edited = false;
    for r in p.ingress.iter_mut().chain(p.egress.iter_mut()) {
        for port in &mut r.ports {
            if let Some(PortSpec::Number(n)) = &mut port.port {
                *n = n.wrapping_add(1).max(1);
                edited = true;
            }
        }
    }
    if !edited {
        p.ingress.push(Rule {
            peers: vec![],
            ports: vec![PolicyPort {
                protocol: Protocol::Tcp,
                port: Some(PortSpec::Number(4321)),
            }],
        });
    }
    let new = compile(&c2, opts, node).unwrap();
    assert_ne!(old.text, new.text);
    let script = update_script(&old, &new).unwrap();
    assert!(
        script.len() * 10 < new.text.len(),
        "the update ({} bytes) is not much smaller than the table ({} bytes)",
        script.len(),
        new.text.len()
    );
    require_kernel();
    check_update(&old, &new).unwrap();
}

/// Small edits of a random cluster: replace, drop or add one policy.
fn an_edit() -> impl Strategy<Value = (usize, Option<Policy>)> {
    (
        0..4usize,
        prop::option::of(arb::policy(&ClusterShape::on_two_nodes())),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn old_plus_update_equals_new_in_the_kernel(
        c1 in arb::cluster(&ClusterShape::on_two_nodes()),
        ipblock in any::<bool>(),
        c2 in arb::cluster(&ClusterShape::on_two_nodes()),
        (at, replacement) in an_edit(),
        unrelated in any::<bool>(),
    ) {
        require_kernel();
        let opts = EvalOptions { ipblock_matches_workloads: ipblock };
        // Either an unrelated cluster, or c1 with one policy replaced, dropped or added.
        let target = if unrelated {
            c2
        } else {
            let mut t = c1.clone();
            match replacement {
                Some(mut p) => {
                    p.name = format!("edited{at}");
                    if at < t.policies.len() {
                        t.policies[at] = p;
                    } else {
                        t.policies.push(p);
                    }
                }
                None if at < t.policies.len() => {
                    t.policies.remove(at);
                }
                None => {}
            }
            t
        };
        for node in NODES {
            let old = compile(&c1, opts, node).unwrap();
            let new = compile(&target, opts, node).unwrap();
            if let Err(e) = check_update(&old, &new) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}

/// Two workloads on node n1; `web` isolated for ingress by one policy allowing `app=db` on
/// `port`, with the policy named `name`.
fn one_policy(name: &str, port: u16) -> Cluster {
    let mut p = policy("ns0", name, sel(&[("app", "web")]), true, false);
    p.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("app", "db")])],
        ports: vec![tcp(port)],
    });
    cluster(
        namespaces(&["ns0"]),
        vec![
            pod("ns0", "web", &[("app", "web")], &["10.0.0.1"], &[]).on("n1"),
            pod("ns0", "db", &[("app", "db")], &["10.0.0.2"], &[]).on("n1"),
        ],
        vec![p],
    )
}

#[test]
fn a_port_edit_replaces_the_identity_and_repoints_its_dispatch_element_only() {
    let opts = EvalOptions::default();
    let old = compile(&one_policy("allow-db", 5432), opts, "n1").unwrap();
    let new = compile(&one_policy("allow-db", 5433), opts, "n1").unwrap();
    let (old_chain, new_chain) = (
        old.ir().ingress.identities[0].chain.clone(),
        new.ir().ingress.identities[0].chain.clone(),
    );
    assert_ne!(old_chain, new_chain, "the chain name follows the content");
    let script = update_script(&old, &new).unwrap();
    // The new identity chain and its map are added, web's dispatch element is replaced (deleted
    // before it is added again), the old chain and map go; the policy's counter stays.
    assert!(script.contains(&format!("chain {new_chain} {{")));
    assert!(script.contains(&format!("map {new_chain}_port {{")));
    let del = script
        .find("delete element inet netpol in_dispatch4")
        .unwrap();
    let add = script.find("add element inet netpol in_dispatch4").unwrap();
    let gone = script
        .find(&format!("delete chain inet netpol {old_chain}"))
        .unwrap();
    assert!(del < add && add < gone, "{script}");
    assert!(script.contains(&format!("delete map inet netpol {old_chain}_port")));
    assert!(!script.contains("counter pol_ns0_allow-db"), "{script}");
    // The classification of db does not change: its map is not touched.
    assert!(!script.contains("in_wl4"), "{script}");
    require_kernel();
    check_update(&old, &new).unwrap();
}

#[test]
fn a_counter_name_taken_over_by_another_policy_needs_a_full_replace() {
    // `web:x` and `web_x` both become the counter pol_ns0_web_x, with different comments.
    let opts = EvalOptions::default();
    let old = compile(&one_policy("web:x", 80), opts, "n1").unwrap();
    let new = compile(&one_policy("web_x", 80), opts, "n1").unwrap();
    assert_eq!(
        old.summary.policies[0].counter,
        new.summary.policies[0].counter
    );
    assert_eq!(update_script(&old, &new), None);
}
