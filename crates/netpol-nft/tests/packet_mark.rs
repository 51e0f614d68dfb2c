//! The table must not disturb the marks other components set and read around it: kube-proxy
//! sets its masquerade bit (0x4000) of the packet mark in `prerouting` and reads it in
//! `postrouting`, with the `forward` hook (this table) in between; other tables keep bits of the
//! conntrack mark, which the table may only change inside its range ([`CtMarkBits`]). A second
//! table in the lab node sets such marks for a flow this table checks through the peer
//! classification, and counts in `postrouting` the packets whose marks survived. Needs root
//! (fails otherwise).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use netpol_core::*;
use netpol_dataplane::{Lab, LabHost, LabSpec, ProbeProtocol};
use netpol_nft::{compile, compile_with_ct_mark, CtMarkBits, Ruleset};

const WEB: &str = "10.83.0.2";
const DB: &str = "10.83.0.1";

fn nft(netns: &str, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "nft"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("nft runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("nft finishes");
    assert!(out.status.success(), "nft {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// web admits db on TCP 80 by a pod selector: the first packet goes through the peer
/// classification and a class grant, the path that needs a register.
fn state() -> Cluster {
    let mut web_in = policy("shop", "web-in", sel(&[("app", "web")]), true, false);
    web_in.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("app", "db")])],
        ports: vec![tcp(80)],
    });
    cluster(
        namespaces(&["shop"]),
        vec![
            pod("shop", "web", &[("app", "web")], &[WEB], &[]).on("n1"),
            pod("shop", "db", &[("app", "db")], &[DB], &[]).on("n1"),
        ],
        vec![web_in],
    )
}

fn lab() -> Lab {
    let host = |name: &str, addr: &str| LabHost {
        name: name.into(),
        node: Some("n1".into()),
        addresses: vec![ip(addr)],
        tcp_ports: vec![80, 81],
        ..LabHost::default()
    };
    Lab::build(&LabSpec {
        nodes: vec!["n1".into()],
        hosts: vec![host("web", WEB), host("db", DB)],
    })
    .expect("lab")
}

fn probe(lab: &Lab, port: u16) -> bool {
    lab.probe(
        "db",
        ip(WEB),
        ProbeProtocol::Tcp,
        port,
        Duration::from_millis(300),
    )
    .expect("probe")
}

fn decided_by_a_class_grant(r: &Ruleset, bits: CtMarkBits) {
    let lookup = format!(
        "ct mark and 0x{:08x} . meta l4proto . th dport map",
        bits.mask()
    );
    assert!(
        r.text.contains(&lookup),
        "the flow is decided by a class grant"
    );
}

#[test]
fn the_packet_mark_set_before_the_table_survives_it_for_checked_connections() {
    require_root();
    let r = compile(&state(), EvalOptions::default(), "n1").expect("compiles");
    let lab = lab();
    let node = lab.node_netns("n1").expect("node").to_owned();
    lab.apply_ruleset("n1", &r.text).expect("the table loads");
    // kube-proxy's part, in a table of its own (removed with the lab's namespaces).
    nft(
        &node,
        &["-f", "-"],
        Some(&format!(
            "table inet kubeproxy {{\n\
             counter to_web {{}}\n counter kept {{}}\n\
             chain pre {{ type filter hook prerouting priority mangle; policy accept;\n\
               ip daddr {WEB} tcp dport 80 meta mark set meta mark or 0x4000\n }}\n\
             chain post {{ type filter hook postrouting priority srcnat; policy accept;\n\
               ip daddr {WEB} tcp dport 80 counter name to_web\n\
               ip daddr {WEB} tcp dport 80 meta mark and 0x4000 == 0x4000 counter name kept\n }}\n}}\n"
        )),
    );
    decided_by_a_class_grant(&r, CtMarkBits::DEFAULT);
    assert!(probe(&lab, 80), "db -> web:80 is allowed");
    assert!(!probe(&lab, 81), "db -> web:81 is denied");
    assert!(probe(&lab, 80), "and allowed again");
    let (to_web, kept) = (
        counter_packets(&node, "kubeproxy", "to_web"),
        counter_packets(&node, "kubeproxy", "kept"),
    );
    // At least the two SYNs, each checked through the classification.
    assert!(to_web >= 2, "{to_web} packets seen leaving for web:80");
    assert_eq!(
        kept, to_web,
        "packets that lost the 0x4000 bit in the table"
    );
}

/// Bits of the conntrack mark another table sets before `forward` (`mark`) must still be set in
/// `postrouting` on every packet of a connection the table classified into `bits`, and the table's
/// own classes must still decide.
fn conntrack_mark_bits_survive(bits: CtMarkBits, mark: u32) {
    assert_eq!(
        mark & bits.mask(),
        0,
        "the other table's bits are outside the range"
    );
    let r = compile_with_ct_mark(&state(), EvalOptions::default(), "n1", bits).expect("compiles");
    decided_by_a_class_grant(&r, bits);
    let lab = lab();
    let node = lab.node_netns("n1").expect("node").to_owned();
    lab.apply_ruleset("n1", &r.text).expect("the table loads");
    // Another component's connection mark, set on the first packet of each connection before the
    // forward hook; `classed` counts packets carrying some class of this table's range.
    nft(
        &node,
        &["-f", "-"],
        Some(&format!(
            "table inet other {{\n\
             counter to_web {{}}\n counter kept {{}}\n counter classed {{}}\n\
             chain pre {{ type filter hook prerouting priority mangle; policy accept;\n\
               ip daddr {WEB} ct state new ct mark set ct mark or 0x{mark:08x}\n }}\n\
             chain post {{ type filter hook postrouting priority srcnat; policy accept;\n\
               ip daddr {WEB} tcp dport 80 counter name to_web\n\
               ip daddr {WEB} tcp dport 80 ct mark and 0x{mark:08x} == 0x{mark:08x} counter name kept\n\
               ip daddr {WEB} tcp dport 80 ct mark and 0x{m:08x} != 0 counter name classed\n }}\n}}\n",
            m = bits.mask()
        )),
    );
    assert!(probe(&lab, 80), "db -> web:80 is allowed by its class");
    assert!(!probe(&lab, 81), "db -> web:81 is denied");
    assert!(probe(&lab, 80), "and allowed again");
    let to_web = counter_packets(&node, "other", "to_web");
    // Both connections' SYN, ACK, data and FIN packets cross postrouting.
    assert!(to_web >= 4, "{to_web} packets seen leaving for web:80");
    assert_eq!(
        counter_packets(&node, "other", "kept"),
        to_web,
        "packets whose connection lost the other table's bits {mark:#x}"
    );
    assert_eq!(
        counter_packets(&node, "other", "classed"),
        to_web,
        "packets whose connection carries no class in {bits}"
    );
}

#[test]
fn conntrack_mark_bits_set_by_another_table_survive_the_default_range() {
    require_root();
    // 0x1337: what a hand-written rule elsewhere had set, and saw overwritten.
    conntrack_mark_bits_survive(CtMarkBits::DEFAULT, 0x1337);
}

#[test]
fn conntrack_mark_bits_set_by_another_table_survive_a_configured_range() {
    require_root();
    let bits: CtMarkBits = "20-27".parse().unwrap();
    conntrack_mark_bits_survive(bits, 0xf00f_ffff);
}
