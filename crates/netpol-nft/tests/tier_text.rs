//! Property: the tier objects as written in the table text decide what the IR's tier segments
//! decide. On random clusters with admin tiers, every group's lookup chain is read back from
//! the text (its rules, then the elements of the exact-port hash map and the range map it looks
//! up), and for every class, protocol and interesting port the element the kernel would find
//! (the exact map first, then the range map, as the chain's rules are ordered) names the chain
//! of the rule the IR's first matching segment names, or none where no segment matches. This
//! holds the text-only parts (the split into two maps, one element per run of protocols decided
//! for every port by one rule) against the IR that `agree.rs` holds against the evaluator.

// Helpers outside #[test] functions panic too: in a test a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use netpol_core::{EvalOptions, Protocol};
use netpol_nft::{compile, Ruleset, TierSegment};
use netpol_test_support::arb::{self, ClusterShape, TierShape, NODES};
use proptest::prelude::*;

/// One map element read back: `mark . proto . ports : verb chain`, ranges inclusive.
#[derive(Debug)]
struct Element {
    mark: u32,
    protocols: (u8, u8),
    ports: (u16, u16),
    chain: String,
}

/// `lo-hi` or a single value, through `single` for names.
fn range<T: Copy>(text: &str, single: impl Fn(&str) -> T) -> (T, T) {
    match text.split_once('-') {
        Some((a, b)) => (single(a), single(b)),
        None => (single(text), single(text)),
    }
}

fn protocol_number(text: &str) -> u8 {
    match text {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        n => n.parse().unwrap(),
    }
}

fn element(line: &str) -> Element {
    let line = line.trim().trim_end_matches(',');
    let (key, verdict) = line.rsplit_once(" : ").unwrap();
    let key = key.split(" comment ").next().unwrap();
    let parts: Vec<&str> = key.split(" . ").collect();
    let [mark, protocols, ports] = parts.as_slice() else {
        panic!("a tier element of three fields: {line}");
    };
    Element {
        mark: u32::from_str_radix(mark.trim_start_matches("0x"), 16).unwrap(),
        protocols: range(protocols, protocol_number),
        ports: range(ports, |p| p.parse().unwrap()),
        chain: verdict.split_whitespace().nth(1).unwrap().to_string(),
    }
}

/// Every tier map of the table text by name, as its elements.
fn maps(text: &str) -> BTreeMap<String, Vec<Element>> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Vec<Element>)> = None;
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("\tmap ")
            .and_then(|l| l.strip_suffix(" {"))
        {
            let tier = ["_tx_", "_t_"]
                .iter()
                .any(|infix| name.get(2..).is_some_and(|rest| rest.starts_with(infix)));
            current = tier.then(|| (name.to_string(), Vec::new()));
        } else if line == "\t}" {
            if let Some((name, elements)) = current.take() {
                out.insert(name, elements);
            }
        } else if let Some((_, elements)) = current.as_mut() {
            if line.starts_with("\t\t\t0x") {
                elements.push(element(line));
            }
        }
    }
    out
}

/// Every chain's rules by name.
fn chains(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("\tchain ")
            .and_then(|l| l.strip_suffix(" {"))
        {
            current = Some((name.to_string(), Vec::new()));
        } else if line == "\t}" {
            if let Some((name, rules)) = current.take() {
                out.insert(name, rules);
            }
        } else if let Some((_, rules)) = current.as_mut() {
            rules.push(line.trim().to_string());
        }
    }
    out
}

/// The chain the first element of `lookups` (maps in the chain's order) matching the packet
/// names; `None` when none does.
fn lookup(
    lookups: &[&[Element]],
    mark: u32,
    protocol: u8,
    port: u16,
) -> Result<Option<String>, String> {
    for elements in lookups {
        let hits: Vec<&Element> = elements
            .iter()
            .filter(|e| {
                e.mark == mark
                    && (e.protocols.0..=e.protocols.1).contains(&protocol)
                    && (e.ports.0..=e.ports.1).contains(&port)
            })
            .collect();
        match hits.as_slice() {
            [] => continue,
            [one] => return Ok(Some(one.chain.clone())),
            many => return Err(format!("{} elements overlap: {many:?}", many.len())),
        }
    }
    Ok(None)
}

/// The chain of the rule deciding the packet by the IR's segments.
fn expected(
    r: &Ruleset,
    segments: &[TierSegment],
    class: u32,
    protocol: u8,
    port: u16,
) -> Option<String> {
    let of = |p: Protocol| match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    };
    segments
        .iter()
        .find(|s| {
            s.class == class
                && match s.protocol {
                    Some(p) => of(p) == protocol,
                    None => ![6, 17, 132].contains(&protocol),
                }
                && s.first <= port
                && port <= s.last
        })
        .and_then(|s| r.ir().admin_rules.get(s.rule))
        .map(|a| a.chain.clone())
}

fn holds(r: &Ruleset) -> Result<(), String> {
    let (maps, chains) = (maps(&r.text), chains(&r.text));
    let ir = r.ir();
    for t in ir.ingress.tiers.iter().chain(&ir.egress.tiers) {
        let rules = chains.get(&t.name).ok_or(format!("no chain {}", t.name))?;
        let mut lookups: Vec<&[Element]> = Vec::new();
        for rule in rules {
            let map = rule
                .rsplit_once(" vmap @")
                .ok_or(format!("not a lookup: {rule}"))?
                .1;
            lookups.push(maps.get(map).ok_or(format!("no map {map}"))?);
        }
        let mut classes: Vec<u32> = t.segments.iter().map(|s| s.class).collect();
        classes.push(0x7fff_0000);
        let mut ports: Vec<u16> = vec![0, 1, 53, 80, 8080, u16::MAX];
        for s in &t.segments {
            ports.extend([
                s.first,
                s.last,
                s.first.saturating_sub(1),
                s.last.saturating_add(1),
            ]);
        }
        for &class in &classes {
            for protocol in [1u8, 6, 17, 47, 132, 255] {
                for &port in &ports {
                    let got = lookup(&lookups, class, protocol, port)?;
                    let want = expected(r, &t.segments, class, protocol, port);
                    if got != want {
                        return Err(format!(
                            "{}: class {class:#010x} protocol {protocol} port {port}: text {got:?}, IR {want:?}",
                            t.name
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_tier_maps_in_the_text_decide_what_the_tier_segments_decide(
        c in arb::with_tiers(arb::cluster(&ClusterShape::on_two_nodes()), &TierShape::for_the_compiler()),
    ) {
        for node in NODES {
            let r = compile(&c, EvalOptions::default(), node).unwrap();
            if let Err(e) = holds(&r) {
                prop_assert!(false, "{}\n{}", e, r.text);
            }
        }
    }
}
