//! The scale numbers, measured against the real kernel: the analyzer's synthetic cluster
//! (10,000 workloads, 200 namespaces, 2,000 policies, 100 nodes: about 100 workloads per node),
//! compiled for the node hosting the most workloads; compile time, text size, element count and
//! the `nft -f` load time of the whole table into a throwaway network namespace.
//!
//! Run as root: `cargo bench -p netpol-nft --bench scale`. Prints numbers; no criterion.

// A benchmark aborts on a setup failure by design: without the setup there is nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use netpol_core::synth::{generate, SynthParams};
use netpol_core::{EvalOptions, PortSpec};
use netpol_dataplane::{nft, Netns};
use netpol_nft::{compile, update_script};

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let params = SynthParams {
        workloads: 10_000,
        namespaces: 200,
        policies: 2_000,
        nodes: 100,
        seed: 1,
    };
    let cluster = generate(&params);
    // The busiest node, so the measured table is the largest one.
    let mut per_node: std::collections::BTreeMap<&str, usize> = Default::default();
    for w in &cluster.workloads {
        if let Some(n) = w.node.as_deref() {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let (node, hosted) = per_node
        .iter()
        .max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))
        .map(|(n, c)| (n.to_string(), *c))
        .expect("nodes");
    println!(
        "cluster: {} workloads, {} policies, {} nodes; node {node} hosts {hosted}",
        cluster.workloads.len(),
        cluster.policies.len(),
        per_node.len()
    );
    let opts = EvalOptions::default();
    let mut compiles = Vec::new();
    let mut ruleset = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = compile(&cluster, opts, &node).expect("compile");
        compiles.push(t.elapsed());
        ruleset = Some(r);
    }
    let r = ruleset.expect("ruleset");
    let s = &r.summary;
    println!("compile: median {:?} (n={RUNS})", median(compiles));
    println!(
        "table: {} bytes, {} lines, {} elements in {} sets/maps, {} chains, {} policies, identities in/eg {}/{}, classes in/eg {}/{}",
        r.text.len(),
        r.text.lines().count(),
        s.total_elements,
        s.elements.len(),
        r.text.matches("\tchain ").count(),
        s.policies.len(),
        s.ingress_identities,
        s.egress_identities,
        s.ingress_classes,
        s.egress_classes
    );
    let mut largest: Vec<(&String, &usize)> = s.elements.iter().collect();
    largest.sort_by(|a, b| b.1.cmp(a.1));
    println!("largest maps: {:?}", &largest[..largest.len().min(6)]);
    if let Ok(path) = std::env::var("NETPOL_SCALE_OUT") {
        let _ = std::fs::write(&path, &r.text);
    }
    let ns = Netns::create("nftscale").expect("netns (root needed)");
    let mut loads_fresh = Vec::new();
    let mut loads_replace = Vec::new();
    for _ in 0..RUNS {
        let _ = nft::delete_table(Some(ns.name()), "inet", "netpol");
        let t = Instant::now();
        nft::apply(Some(ns.name()), &r.text).expect("load");
        loads_fresh.push(t.elapsed());
        let t = Instant::now();
        nft::apply(Some(ns.name()), &r.text).expect("reload");
        loads_replace.push(t.elapsed());
    }
    println!(
        "nft -f load, empty namespace: median {:?} (n={RUNS})",
        median(loads_fresh)
    );
    println!(
        "nft -f load, replacing the loaded table: median {:?} (n={RUNS})",
        median(loads_replace)
    );

    // One-policy changes, applied as an incremental update on top of the loaded table.
    // A policy of this node with a numeric port in a rule with peers, so the edit changes grants.
    let key = s
        .policies
        .iter()
        .find(|pc| {
            cluster.policies.iter().any(|p| {
                p.key() == pc.key
                    && p.ingress.iter().chain(p.egress.iter()).any(|r| {
                        !r.peers.is_empty()
                            && r.ports
                                .iter()
                                .any(|x| matches!(x.port, Some(PortSpec::Number(_))))
                    })
            })
        })
        .map(|p| p.key.clone())
        .expect("a policy with a numeric port");
    let mut port_edit = cluster.clone();
    let mut edited = false;
    if let Some(p) = port_edit.policies.iter_mut().find(|p| p.key() == key) {
        for rule in p.ingress.iter_mut().chain(p.egress.iter_mut()) {
            let has_peers = !rule.peers.is_empty();
            for port in &mut rule.ports {
                if let Some(PortSpec::Number(n)) = &mut port.port {
                    if !edited && has_peers {
                        *n = n.wrapping_add(1).max(1);
                        edited = true;
                    }
                }
            }
        }
    }
    let mut dropped = cluster.clone();
    dropped.policies.retain(|p| p.key() != key);
    for (what, edited_cluster) in [
        ("port of one policy edited", &port_edit),
        ("one policy deleted", &dropped),
    ] {
        let new = compile(edited_cluster, opts, &node).expect("compile");
        let mut scripts = Vec::new();
        let mut applies = Vec::new();
        let mut reverts = Vec::new();
        let mut size = 0;
        for _ in 0..RUNS {
            nft::apply(Some(ns.name()), &r.text).expect("load");
            let t = Instant::now();
            let up = update_script(&r, &new).expect("incremental");
            scripts.push(t.elapsed());
            size = up.len();
            let t = Instant::now();
            nft::apply(Some(ns.name()), &up).expect("update");
            applies.push(t.elapsed());
            let back = update_script(&new, &r).expect("incremental");
            let t = Instant::now();
            nft::apply(Some(ns.name()), &back).expect("revert");
            reverts.push(t.elapsed());
        }
        if let Some(up) = update_script(&r, &new) {
            println!("  {}", up.lines().next().unwrap_or(""));
        }
        println!(
            "{what} ({key}): update script {size} bytes, built in median {:?}; nft -f update median {:?}, reverse update median {:?} (n={RUNS})",
            median(scripts),
            median(applies),
            median(reverts)
        );
    }
}
