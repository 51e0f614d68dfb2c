//! Conformance on real packets: the three-namespace model of the upstream Kubernetes network
//! policy e2e tests (namespaces x, y, z; pods a, b, c in each; two nodes), one scenario per
//! semantic point, each probed with `netpol probe` (a lab of network namespaces, every node
//! enforcing its own nftables ruleset).
//!
//! Three parties must agree on every one of the 81 ordered pairs of every probe: the kernel
//! (observed), the analyzer (`mismatches` is empty), and the expectation written by hand below
//! from the NetworkPolicy spec — so that the analyzer and the compiler cannot both be wrong in the
//! same way unnoticed.
//!
//! PRIVILEGED: needs root, `ip` and `nft`. Without root every test fails (it never skips).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use assert_cmd::Command;
use netpol_test_support::require_root;
use serde_json::Value;

/// Probes run one at a time: a denied probe waits for its timeout, and parallel labs on a busy
/// machine could push an allowed probe past it.
static LAB: Mutex<()> = Mutex::new(());

fn lab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lab")
}

fn model() -> PathBuf {
    lab_dir().join("model.yaml")
}

fn scenario_dir(name: &str) -> PathBuf {
    lab_dir().join("scenarios").join(name)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
        }
    }
}

use Proto::{Sctp, Tcp, Udp};

/// A pod of the model: namespace and name, one letter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pod {
    ns: char,
    name: char,
}

impl Pod {
    fn parse(key: &str) -> Pod {
        let mut chars = key.chars();
        match (chars.next(), chars.next(), chars.next(), chars.next()) {
            (Some(ns), Some('/'), Some(name), None) => Pod { ns, name },
            _ => panic!("{key:?} is not a pod of the model"),
        }
    }

    fn is(self, key: &str) -> bool {
        self == Pod::parse(key)
    }
}

/// The model's pods in output order (namespace, then name).
fn model_pods() -> Vec<String> {
    ["x", "y", "z"]
        .iter()
        .flat_map(|ns| ["a", "b", "c"].iter().map(move |p| format!("{ns}/{p}")))
        .collect()
}

/// The hand-written answer of a scenario for one flow between two distinct pods.
type Expect = fn(Pod, Pod, Proto, u16) -> bool;

/// Runs `netpol probe` for every (protocol, port), checks the schema, the exit code, that the
/// kernel matched the analyzer, and that both match `expect` on every pair. Returns the observed
/// matrices for extra assertions.
fn probe_scenario(
    dirs: &[PathBuf],
    extra: &[&str],
    probes: &[(Proto, u16)],
    expect: Expect,
) -> Vec<(Proto, u16, Value)> {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let pods = model_pods();
    let mut results = Vec::new();
    for &(proto, port) in probes {
        let mut cmd = Command::cargo_bin("netpol").expect("the netpol binary is built for tests");
        cmd.arg("probe").arg(model());
        cmd.args(dirs);
        cmd.args(extra);
        cmd.args([
            "--port",
            &port.to_string(),
            "--protocol",
            proto.as_str(),
            "-o",
            "json",
        ]);
        let out = cmd.output().expect("netpol probe runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("{dirs:?} {extra:?} {}/{port}", proto.as_str());
        assert_eq!(
            out.status.code(),
            Some(0),
            "probe {what} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        let v: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("probe {what}: stdout is not JSON ({e}):\n{stdout}"));

        // The schema: the matrix's plus mismatches, the node host's and the hairpin probes.
        let keys: BTreeSet<&str> = v
            .as_object()
            .expect("the report is an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "port",
                "protocol",
                "workloads",
                "allowed",
                "mismatches",
                "node",
                "hairpin"
            ]),
            "{what}"
        );
        assert_eq!(v["port"], port, "{what}");
        assert_eq!(v["protocol"], proto.as_str(), "{what}");
        let workloads: Vec<&str> = v["workloads"]
            .as_array()
            .expect("workloads is an array")
            .iter()
            .map(|w| w.as_str().expect("a workload is a string"))
            .collect();
        assert_eq!(
            workloads, pods,
            "{what}: every pod of the model is in the lab"
        );
        assert_eq!(
            v["mismatches"].as_array().map(Vec::len),
            Some(0),
            "{what}: the kernel disagreed with the analyzer: {}",
            v["mismatches"]
        );

        // Every pair against the hand-written expectation.
        let mut wrong = Vec::new();
        for from in &pods {
            let row = v["allowed"][from.as_str()]
                .as_object()
                .unwrap_or_else(|| panic!("{what}: no row for {from}"));
            assert_eq!(row.len(), pods.len(), "{what}: row {from}");
            for to in &pods {
                let observed = row
                    .get(to.as_str())
                    .and_then(Value::as_bool)
                    .unwrap_or_else(|| panic!("{what}: no boolean for {from} -> {to}"));
                // A pod always reaches itself: its traffic to itself never leaves it.
                let expected = from == to || expect(Pod::parse(from), Pod::parse(to), proto, port);
                if observed != expected {
                    wrong.push(format!(
                        "{from} -> {to}: kernel and analyzer say {}, the spec says {}",
                        word(observed),
                        word(expected)
                    ));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{what}: {} pairs differ from the hand-written expectation:\n  {}",
            wrong.len(),
            wrong.join("\n  ")
        );
        results.push((proto, port, v));
    }
    results
}

fn word(allowed: bool) -> &'static str {
    if allowed {
        "allowed"
    } else {
        "denied"
    }
}

fn observed(
    results: &[(Proto, u16, Value)],
    proto: Proto,
    port: u16,
    from: &str,
    to: &str,
) -> bool {
    results
        .iter()
        .find(|(p, n, _)| *p == proto && *n == port)
        .and_then(|(_, _, v)| v["allowed"][from][to].as_bool())
        .unwrap_or_else(|| {
            panic!(
                "no probe result for {from} -> {to} {}/{port}",
                proto.as_str()
            )
        })
}

fn scenario(name: &str) -> Vec<PathBuf> {
    vec![scenario_dir(name)]
}

// ---------------------------------------------------------------------------------------------

#[test]
fn without_policies_every_pod_reaches_every_pod() {
    // Nothing selects any pod: no isolation in either direction.
    probe_scenario(&[], &[], &[(Tcp, 80)], |_, _, _, _| true);
}

#[test]
fn default_deny_ingress_isolates_every_pod_of_namespace_x() {
    // podSelector {} in x with policyTypes [Ingress] and no rules: nothing may enter x (except a
    // pod's own traffic); x's pods still send, other namespaces are untouched. Any protocol.
    probe_scenario(
        &scenario("default-deny-ingress"),
        &[],
        &[(Tcp, 80), (Udp, 81), (Sctp, 80)],
        |_, to, _, _| to.ns != 'x',
    );
}

#[test]
fn default_deny_egress_stops_everything_namespace_y_sends() {
    // podSelector {} in y with policyTypes [Egress] and no rules: y's pods send nothing, even to
    // each other; they still receive.
    probe_scenario(
        &scenario("default-deny-egress"),
        &[],
        &[(Tcp, 80), (Udp, 80)],
        |from, _, _, _| from.ns != 'y',
    );
}

#[test]
fn a_pod_selector_peer_selects_pods_of_the_policys_own_namespace() {
    // x/a admits pod=b of x only: y/b and z/b carry the same label but live elsewhere.
    probe_scenario(
        &scenario("pod-selector"),
        &[],
        &[(Tcp, 80), (Tcp, 81)],
        |from, to, _, _| !to.is("x/a") || from.is("x/b"),
    );
}

#[test]
fn a_namespace_selector_peer_selects_every_pod_of_matching_namespaces_only() {
    // x/a admits every pod of namespaces labelled ns=y, and not its own namespace x.
    probe_scenario(
        &scenario("namespace-selector"),
        &[],
        &[(Tcp, 80), (Udp, 81)],
        |from, to, _, _| !to.is("x/a") || from.ns == 'y',
    );
}

#[test]
fn selectors_in_one_peer_are_anded_and_separate_peers_are_ored() {
    probe_scenario(
        &scenario("and-versus-or"),
        &[],
        &[(Tcp, 80), (Sctp, 81)],
        |from, to, _, _| {
            if to.is("x/a") {
                // {namespaceSelector ns=y, podSelector pod=b} in one peer: y/b only.
                from.is("y/b")
            } else if to.is("x/b") {
                // [{namespaceSelector ns=y}, {podSelector pod=c}]: all of y, or c of x.
                from.ns == 'y' || from.is("x/c")
            } else {
                true
            }
        },
    );
}

#[test]
fn match_expressions_in_notin_exists_and_doesnotexist_select_as_specified() {
    // Namespace labels: x {ns: x, env: dev}, y {ns: y, env: prod}, z {ns: z}.
    probe_scenario(
        &scenario("match-expressions"),
        &[],
        &[(Tcp, 80), (Tcp, 81)],
        |from, to, _, _| {
            if to.is("y/a") {
                // podSelector pod In [b], namespaceSelector {} (every namespace).
                from.name == 'b'
            } else if to.is("y/b") {
                // namespaceSelector ns NotIn [x, y].
                from.ns == 'z'
            } else if to.is("y/c") {
                // namespaceSelector env Exists: x and y.
                from.ns == 'x' || from.ns == 'y'
            } else if to.is("z/a") {
                // namespaceSelector env DoesNotExist: z.
                from.ns == 'z'
            } else {
                true
            }
        },
    );
}

#[test]
fn ipblock_except_holes_exclude_workload_addresses_inside_the_block() {
    // x/a admits 10.10.0.0/16 except 10.10.3.0/24 (namespace z) and 10.10.2.2/32 (y/b). Upstream
    // behaviour (the default): ipBlock matches pod addresses too.
    probe_scenario(
        &scenario("ipblock-except"),
        &[],
        &[(Tcp, 80), (Udp, 80)],
        |from, to, _, _| !to.is("x/a") || (from.ns != 'z' && !from.is("y/b")),
    );
}

#[test]
fn ipblock_matches_no_workload_when_ipblock_matches_workloads_is_false() {
    // Cilium's behaviour: an ipBlock is only for addresses outside the cluster, so x/a, isolated
    // by a policy whose only peer is an ipBlock, admits no pod at all.
    probe_scenario(
        &scenario("ipblock-except"),
        &["--ipblock-matches-workloads=false"],
        &[(Tcp, 80)],
        |_, to, _, _| !to.is("x/a"),
    );
}

#[test]
fn named_ports_ranges_protocol_only_udp_only_and_sctp_rules_allow_exactly_their_ports() {
    let results = probe_scenario(
        &scenario("ports"),
        &[],
        &[
            (Tcp, 80),
            (Tcp, 81),
            (Udp, 80),
            (Udp, 81),
            (Sctp, 80),
            (Sctp, 81),
        ],
        |_, to, proto, port| {
            if to.is("x/a") {
                // port: serve-81-tcp (protocol defaults to TCP) = TCP 81 on x/a.
                proto == Tcp && port == 81
            } else if to.is("x/b") {
                // TCP 79 to endPort 80, inclusive.
                proto == Tcp && (79..=80).contains(&port)
            } else if to.is("x/c") {
                // protocol: UDP without a port: every UDP port, no TCP.
                proto == Udp
            } else if to.is("y/a") {
                // UDP 80 only: TCP 80 is not allowed by a UDP rule.
                proto == Udp && port == 80
            } else if to.is("y/b") {
                proto == Sctp && port == 80
            } else {
                true
            }
        },
    );
    // Spot checks, spelled out.
    assert!(observed(&results, Tcp, 81, "z/c", "x/a"));
    assert!(!observed(&results, Tcp, 80, "z/c", "x/a"));
    assert!(!observed(&results, Udp, 81, "z/c", "x/a"));
    assert!(observed(&results, Udp, 80, "x/a", "y/a"));
    assert!(!observed(&results, Tcp, 80, "x/a", "y/a"));
    assert!(observed(&results, Sctp, 80, "z/a", "y/b"));
    assert!(!observed(&results, Sctp, 81, "z/a", "y/b"));
}

#[test]
fn an_empty_rule_admits_everyone_and_policies_add_up() {
    probe_scenario(
        &scenario("empty-from-and-additive"),
        &[],
        &[(Tcp, 80), (Udp, 81)],
        |from, to, _, _| {
            if to.is("x/a") {
                // default deny + {pod=b of x} + {namespace z}: the union of the three.
                from.is("x/b") || from.ns == 'z'
            } else if to.is("x/b") {
                // ingress: [{}]: every source, every port, despite the default deny.
                true
            } else if to.ns == 'x' {
                // x/c: only the default deny selects it.
                false
            } else {
                true
            }
        },
    );
}

#[test]
fn an_egress_named_port_resolves_against_each_destination() {
    // z/a may send only to the port named web: TCP 80 on pods of x, TCP 81 on pods of y, and
    // nothing on pods of z (they have no port named web), whatever the number probed.
    let results = probe_scenario(
        &scenario("egress-named-port"),
        &[],
        &[(Tcp, 80), (Tcp, 81), (Udp, 80)],
        |from, to, proto, port| {
            if from.is("z/a") {
                proto == Tcp && ((to.ns == 'x' && port == 80) || (to.ns == 'y' && port == 81))
            } else {
                true
            }
        },
    );
    assert!(observed(&results, Tcp, 80, "z/a", "x/b"));
    assert!(!observed(&results, Tcp, 81, "z/a", "x/b"));
    assert!(observed(&results, Tcp, 81, "z/a", "y/b"));
    assert!(!observed(&results, Tcp, 80, "z/a", "y/b"));
    assert!(!observed(&results, Tcp, 80, "z/a", "z/b"));
}

#[test]
fn egress_and_ingress_of_one_flow_are_enforced_on_different_nodes() {
    // The model puts x/a on node-1 and y/b on node-2: the egress policy of x/a must be compiled
    // into node-1's ruleset, the ingress policy of y/b into node-2's.
    for (node, local, remote) in [("node-1", "x/a", "y/b"), ("node-2", "y/b", "x/a")] {
        let out = Command::cargo_bin("netpol")
            .expect("the netpol binary is built for tests")
            .arg("compile")
            .arg(model())
            .arg(scenario_dir("cross-node"))
            .args(["--node", node, "-o", "json"])
            .output()
            .expect("netpol compile runs");
        assert_eq!(out.status.code(), Some(0));
        let v: Value = serde_json::from_slice(&out.stdout).expect("compile -o json is JSON");
        let on_node: BTreeSet<String> = v["summary"]["local_workloads"]
            .as_array()
            .expect("local_workloads")
            .iter()
            .filter_map(|w| w["key"].as_str().map(str::to_string))
            .collect();
        assert!(
            on_node.contains(local),
            "{local} runs on {node}: {on_node:?}"
        );
        assert!(!on_node.contains(remote), "{remote} does not run on {node}");
    }

    let results = probe_scenario(
        &scenario("cross-node"),
        &[],
        &[(Tcp, 80), (Tcp, 81), (Udp, 80)],
        |from, to, proto, port| {
            // Source side (node-1): x/a may send to namespace y only.
            let egress = !from.is("x/a") || to.ns == 'y';
            // Destination side (node-2): y/b admits x/a on TCP 80 only.
            let ingress = !to.is("y/b") || (from.is("x/a") && proto == Tcp && port == 80);
            egress && ingress
        },
    );
    // Allowed: both nodes let it through.
    assert!(observed(&results, Tcp, 80, "x/a", "y/b"));
    // Denied at the destination's node although the source's egress allows it.
    assert!(!observed(&results, Tcp, 81, "x/a", "y/b"));
    assert!(!observed(&results, Udp, 80, "x/a", "y/b"));
    // Denied at the source's node although the destination (z/b on node-2) is open.
    assert!(!observed(&results, Tcp, 80, "x/a", "z/b"));
    // Denied at the destination's node for a source with no egress policy.
    assert!(!observed(&results, Tcp, 80, "x/c", "y/b"));
    // Allowed: x/a's egress allows y, and y/a is not isolated.
    assert!(observed(&results, Tcp, 81, "x/a", "y/a"));
}
