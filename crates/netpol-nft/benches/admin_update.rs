//! One admin policy change as an incremental kernel update: the bench cluster (10,000 workloads,
//! 200 namespaces, 2,000 NetworkPolicies, 100 nodes) plus 100 admin policies of both tiers,
//! compiled for the busiest node and loaded into a throwaway network namespace; then (a) one port
//! of one admin rule changed, (b) one admin rule's action changed, (c) one admin policy deleted,
//! (d) one added. For each: the transaction's size, the time to build it, the `nft -f` time to
//! apply it and its reverse (median and max) and the full compile of the new table.
//!
//! Two sets of admin policies, one after the other: the per-packet bench's
//! (`netpol_test_support::admin_set`: single ports, namespace selectors and /32 networks) and
//! `synth::add_admin_policies` (every feature: fail-closed peers, networks up to 0.0.0.0/0,
//! nodes, named ports, rules without ports), whose tier maps are twenty times larger.
//!
//! Run as root: `cargo bench -p netpol-nft --bench admin_update`. Prints numbers; no criterion.
//! `NETPOL_ADMIN_UPDATE_RUNS` sets the runs per measurement (default 7),
//! `NETPOL_ADMIN_UPDATE_SET=packet` or `=synth` measures one set only, `NETPOL_ADMIN_UPDATE_OUT=DIR`
//! writes the table and the update scripts there.

// A benchmark aborts on a setup failure by design: without the setup there is nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use netpol_core::synth::{add_admin_policies, generate, SynthParams};
use netpol_core::{
    AdminAction, AdminApi, AdminPeer, AdminPolicy, AdminPort, AdminRule, AdminSubject, AdminTier,
    Cluster, EvalOptions, LabelSelector, Protocol,
};
use netpol_dataplane::{nft, Netns};
use netpol_nft::{compile, update_script, Ruleset};

#[path = "../tests/common/admin_edits.rs"]
mod admin_edits;

use admin_edits::{deciding_rule, flip_action, has_numeric_port, move_first_port};

fn runs() -> usize {
    std::env::var("NETPOL_ADMIN_UPDATE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
}

/// `NETPOL_ADMIN_UPDATE_OUT=DIR`: the table (`table.nft`) and every change's update and its
/// reverse (`a.nft`, `a-back.nft`, ...) are written there, to replay by hand.
fn out_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("NETPOL_ADMIN_UPDATE_OUT").map(std::path::PathBuf::from)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median and max, in ms.
fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    (ms(v[v.len() / 2]), ms(v[v.len() - 1]))
}

fn busiest_node(c: &Cluster) -> String {
    let mut per_node: std::collections::BTreeMap<&str, usize> = Default::default();
    for w in &c.workloads {
        if let Some(n) = w.node.as_deref() {
            *per_node.entry(n).or_default() += 1;
        }
    }
    per_node
        .iter()
        .max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))
        .map(|(n, _)| n.to_string())
        .expect("nodes")
}

fn timed_compile(c: &Cluster, node: &str) -> (Ruleset, (f64, f64)) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs() {
        let t = Instant::now();
        let r = compile(c, EvalOptions::default(), node).expect("compile");
        times.push(t.elapsed());
        last = Some(r);
    }
    (last.expect("ruleset"), stats(times))
}

/// (a): the first numeric port range of a deciding rule moves up by one.
fn port_changed(c: &Cluster, r: &Ruleset) -> (String, Cluster) {
    let at = deciding_rule(c, r, has_numeric_port);
    let mut out = c.clone();
    move_first_port(at.get_mut(&mut out));
    (at.label(c), out)
}

/// (b): a deciding rule's action: Deny <-> Accept, Pass -> Deny.
fn action_changed(c: &Cluster, r: &Ruleset) -> (String, Cluster) {
    let at = deciding_rule(c, r, |_| true);
    let mut out = c.clone();
    let rule = at.get_mut(&mut out);
    let from = rule.action;
    flip_action(rule);
    (
        format!("{} {from:?} -> {:?}", at.label(c), rule.action),
        out,
    )
}

/// (c): the admin policy of the first reached rule is deleted.
fn policy_deleted(c: &Cluster, r: &Ruleset) -> (String, Cluster) {
    let at = deciding_rule(c, r, |_| true);
    let mut out = c.clone();
    let gone = out.admin_policies.remove(at.policy);
    (gone.key(), out)
}

/// (d): a new ClusterNetworkPolicy of the Admin tier for the `prod` namespaces: deny ingress
/// from team `alpha` on TCP 7777, accept egress to 192.0.2.0/24 on TCP 443.
fn policy_added(c: &Cluster) -> (String, Cluster) {
    let mut out = c.clone();
    let labels = |k: &str, v: &str| LabelSelector {
        match_labels: [(k.to_string(), v.to_string())].into_iter().collect(),
        ..LabelSelector::default()
    };
    let tcp = |n: u16| {
        Some(vec![AdminPort::Protocol {
            protocol: Protocol::Tcp,
            ports: Some((n, n)),
        }])
    };
    let p = AdminPolicy {
        api: AdminApi::ClusterNetworkPolicy,
        name: "added-prod-guard".to_string(),
        tier: AdminTier::Admin,
        priority: 45,
        subject: AdminSubject::Namespaces(labels("env", "prod")),
        ingress: vec![AdminRule {
            name: None,
            action: AdminAction::Deny,
            peers: vec![AdminPeer::Namespaces(labels("team", "alpha"))],
            ports: tcp(7777),
            origin: None,
        }],
        egress: vec![AdminRule {
            name: None,
            action: AdminAction::Accept,
            peers: vec![AdminPeer::Networks(vec!["192.0.2.0/24"
                .parse()
                .expect("a network")])],
            ports: tcp(443),
            origin: None,
        }],
        origin: None,
    };
    let key = p.key();
    out.admin_policies.push(p);
    (key, out)
}

/// With `old` loaded, applies `update_script(old, new)` and its reverse `runs()` times (so `old`
/// is loaded again after each run). Returns false when an apply failed (the table is then
/// unknown: the caller loads `old` again).
fn measure(ns: &str, what: &str, old: &Ruleset, changed: &Cluster, node: &str) -> bool {
    let (new, (c, cmax)) = timed_compile(changed, node);
    let mut builds = Vec::new();
    let mut applies = Vec::new();
    let mut reverts = Vec::new();
    let t = Instant::now();
    let script = update_script(old, &new).expect("incremental");
    builds.push(t.elapsed());
    let back = update_script(&new, old).expect("incremental");
    if let Some(dir) = out_dir() {
        let stem: String = what
            .chars()
            .take(3)
            .filter(char::is_ascii_alphabetic)
            .collect();
        std::fs::write(dir.join(format!("{stem}.nft")), &script).expect("write the update");
        std::fs::write(dir.join(format!("{stem}-back.nft")), &back).expect("write the reverse");
    }
    println!("{what}");
    println!("  {}", script.lines().next().unwrap_or(""));
    println!(
        "  transaction: {} lines, {} bytes (reverse: {} lines, {} bytes); full compile of the new \
         table median {c:.0} ms (max {cmax:.0})",
        script.lines().count(),
        script.len(),
        back.lines().count(),
        back.len(),
    );
    for _ in 0..runs() {
        let t = Instant::now();
        let again = update_script(old, &new).expect("incremental");
        builds.push(t.elapsed());
        assert_eq!(again, script, "deterministic");
        for (list, text) in [(&mut applies, &script), (&mut reverts, &back)] {
            let t = Instant::now();
            if let Err(e) = nft::apply(Some(ns), text) {
                println!("  apply failed: {e}");
                return false;
            }
            list.push(t.elapsed());
        }
    }
    let (b, bmax) = stats(builds);
    let (a, amax) = stats(applies);
    let (rv, rvmax) = stats(reverts);
    println!(
        "  script built in median {b:.2} ms (max {bmax:.2}); nft -f apply median {a:.1} ms (max \
         {amax:.1}); reverse apply median {rv:.1} ms (max {rvmax:.1}) (n={})",
        runs()
    );
    true
}

fn main() {
    let base = generate(&SynthParams {
        workloads: 10_000,
        namespaces: 200,
        policies: 2_000,
        nodes: 100,
        seed: 1,
    });
    let node = busiest_node(&base);
    let (_, plain) = timed_compile(&base, &node);
    println!(
        "node {node}: compile without admin policies median {:.0} ms (max {:.0}) (n={})",
        plain.0,
        plain.1,
        runs()
    );
    // `NETPOL_ADMIN_UPDATE_SET=synth` or `=packet` measures one of the two sets only.
    let only = std::env::var("NETPOL_ADMIN_UPDATE_SET").ok();
    let mut packet_set = base.clone();
    packet_set.admin_policies = netpol_test_support::admin_set::synthetic_admin_policies(100);
    let mut synth_set = base;
    add_admin_policies(&mut synth_set, 100, 1);
    for (name, cluster) in [
        (
            "packet",
            "the per-packet bench's 100 admin policies (netpol_test_support::admin_set)",
            packet_set,
        ),
        (
            "synth",
            "synth::add_admin_policies(100): every feature",
            synth_set,
        ),
    ]
    .map(|(n, d, c)| (n, (d, c)))
    {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let (what, cluster) = cluster;
        println!("== {what}");
        measure_set(&cluster, &node);
    }
}

/// The table of `cluster` for `node`, loaded, then the four changes.
fn measure_set(cluster: &Cluster, node: &str) {
    let (r, tiered) = timed_compile(cluster, node);
    println!(
        "compile median {:.0} ms (max {:.0}); table {} bytes, {} elements, {} chains, {} admin \
         rules (n={})",
        tiered.0,
        tiered.1,
        r.text.len(),
        r.summary.total_elements,
        r.text.matches("\tchain ").count(),
        r.admin_rule_counters().len(),
        runs()
    );
    for (kind, infix) in [("exact-port", "_tx_"), ("range", "_t_")] {
        let tier_maps: Vec<usize> = r
            .summary
            .elements
            .iter()
            .filter(|(n, _)| n.get(2..).is_some_and(|rest| rest.starts_with(infix)))
            .map(|(_, c)| *c)
            .collect();
        println!(
            "tier {kind} maps: {}, {} elements, the largest {}",
            tier_maps.len(),
            tier_maps.iter().sum::<usize>(),
            tier_maps.iter().max().copied().unwrap_or(0)
        );
    }
    if let Some(dir) = out_dir() {
        std::fs::write(dir.join("table.nft"), &r.text).expect("write the table");
    }
    let ns = Netns::create("nftadmupd").expect("netns (root needed)");
    let t = Instant::now();
    nft::apply(Some(ns.name()), &r.text).expect("load");
    println!("full load of the table: {:.0} ms", ms(t.elapsed()));
    let cases = [
        ("(a) one port of one admin rule", port_changed(cluster, &r)),
        ("(b) one admin rule's action", action_changed(cluster, &r)),
        ("(c) one admin policy deleted", policy_deleted(cluster, &r)),
        ("(d) one admin policy added", policy_added(cluster)),
    ];
    for (what, (detail, changed)) in &cases {
        if !measure(ns.name(), &format!("{what}: {detail}"), &r, changed, node) {
            nft::apply(Some(ns.name()), &r.text).expect("load again");
        }
    }
}
