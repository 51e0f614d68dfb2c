//! The demo walk as data: every step probed on a real lab, reported to the callback in order,
//! and the lab gone afterwards.
//!
//! PRIVILEGED: needs root, `ip` and `nft`. Without root the test fails (it never skips).

use netpol_lab::demo::{self, DemoEvent, DNS_STAND_IN, MATRIX_PORT};
use netpol_lab::NodeFlow;

fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the demo needs root (network namespaces and nftables): run `sudo -E cargo test -p netpol-lab`; this test fails rather than skip"
    );
}

/// Every lab namespace of this test process.
fn own_namespaces() -> Vec<String> {
    let prefix = format!("nplab-{}-", std::process::id());
    std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// A short name per event, to check their order.
fn tag(event: &DemoEvent<'_>) -> String {
    match event {
        DemoEvent::Started => "started".into(),
        DemoEvent::LabBuilt(_) => "lab".into(),
        DemoEvent::StepStarted(intro) => format!("step {}", intro.number),
        DemoEvent::MatrixProbed(_) => "matrix".into(),
        DemoEvent::ExternalProbed(_) => "flow".into(),
        DemoEvent::StepFinished(step) => format!("end {}", step.intro.number),
        DemoEvent::MistakeChecked(check) => format!("mistake {}", check.number),
        DemoEvent::MistakeFinished(_) => "end mistake".into(),
    }
}

#[test]
fn the_demo_reports_every_step_as_data_in_order_and_removes_its_lab() {
    require_root();
    let mut events = Vec::new();
    let report = demo::run(|event| events.push(tag(&event))).unwrap();
    assert_eq!(own_namespaces(), Vec::<String>::new());

    let mut expected = vec!["started".to_string(), "lab".into()];
    for n in 1..=9 {
        expected.push(format!("step {n}"));
        expected.push("matrix".into());
        expected.extend(std::iter::repeat_n("flow".to_string(), 4));
        expected.push(format!("end {n}"));
    }
    expected.extend(["mistake 10".into(), "flow".into(), "flow".into()]);
    expected.push("end mistake".into());
    assert_eq!(events, expected);

    assert!(report.passed(), "{report:#?}");
    assert_eq!(report.step_count(), 10);
    // Per policy step: 9 VM pairs, 9 node probes (each node to its VMs and back, to the remote
    // VMs), 3 hairpin probes, 4 flows to the DNS host; then the mistake's 2 flows.
    assert_eq!(report.probe_count(), 9 * (9 + 9 + 3 + 4) + 2);
    assert_eq!(report.lab.nodes.len(), 2);
    assert_eq!(report.lab.externals[0].addresses, [DNS_STAND_IN]);

    // Step 2 isolates vm-a's ingress: nothing else reaches it, it still sends.
    let step2 = &report.steps[1].matrix;
    assert_eq!(step2.port, MATRIX_PORT);
    assert!(!step2.observed("test-project/vm-b", "test-project/vm-a"));
    assert!(!step2.observed("another-project/vm-c", "test-project/vm-a"));
    assert!(step2.observed("test-project/vm-a", "test-project/vm-b"));
    assert!(report.steps[1].intro.applied.is_some());
    assert!(report.steps[0].intro.applied.is_none());

    // Step 3 isolates vm-a both ways: it no longer reaches its own node, which still reaches it.
    let step3 = &report.steps[2].matrix;
    let node_probe = |flow: NodeFlow| {
        step3
            .node
            .iter()
            .find(|p| {
                p.flow == flow && (p.from == "test-project/vm-a" || p.to == "test-project/vm-a")
            })
            .unwrap_or_else(|| panic!("no {flow:?} probe of vm-a in {:?}", step3.node))
    };
    assert!(!node_probe(NodeFlow::WorkloadToOwnNode).observed);
    assert!(node_probe(NodeFlow::NodeToOwnWorkload).observed);
    assert!(step3.hairpin.iter().all(|p| p.observed));

    // Step 5 opens TCP 53 to the DNS host for vm-a, but not UDP 53.
    let flows = &report.steps[4].external;
    assert!(flows[0].observed && flows[0].predicted, "{flows:?}");
    assert!(!flows[1].observed && !flows[1].predicted, "{flows:?}");

    // Step 8: the Admin tier opens UDP 53 to the DNS host, which vm-a's own policies do not.
    let flows = &report.steps[7].external;
    assert!(flows[1].observed && flows[1].predicted, "{flows:?}");
    // Step 9: the Baseline tier denies vm-c -> vm-b (no NetworkPolicy isolates vm-b), while
    // vm-a's own policy still lets vm-c in.
    let step9 = &report.steps[8].matrix;
    assert!(!step9.observed("another-project/vm-c", "test-project/vm-b"));
    assert!(!step9.observed("test-project/vm-b", "another-project/vm-c"));
    assert!(step9.observed("another-project/vm-c", "test-project/vm-a"));
    assert!(report.steps[7]
        .matrix
        .observed("another-project/vm-c", "test-project/vm-b"));

    // The mistake is rejected strictly, and loaded anyway it lets TCP 80 through.
    let mistake = &report.mistake;
    assert!(mistake.check.caught);
    assert!(mistake
        .check
        .strict_diagnostics
        .iter()
        .any(|d| d.contains("spec.egress[0].to[0].ports")));
    assert!(mistake.external.iter().all(|p| p.observed && p.predicted));
    assert_eq!(mistake.external[1].port, 80);
}
