//! Loading: formats, strict decoding modes, positions, workloads, folding, files.

mod common;

use std::path::PathBuf;

use common::*;
use netpol_core::{NamedPort, Protocol, WorkloadKind, NAMESPACE_NAME_LABEL};
use netpol_k8s::{load_paths, load_str, LoadOptions, Severity, ValidationMode};

const MISTAKE: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-egress-from-vm-a-to-8-8-8-8
  namespace: test-project
spec:
  podSelector:
    matchLabels:
      vm: a
  egress:
    - to:
      - ipBlock:
          cidr: 8.8.8.8/32
        ports:
          - protocol: TCP
            port: 53
  policyTypes:
    - Egress
";

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn ports_under_a_peer_is_rejected_in_strict_mode_with_a_hint_to_move_it() {
    let l = load_str(
        "examples/mistakes/egress-ports-under-peer.yaml",
        MISTAKE,
        &LoadOptions::default(),
    );
    assert!(l.has_errors());
    assert!(l.cluster.policies.is_empty(), "the object is rejected");
    let errs = errors(&l);
    assert_eq!(errs.len(), 1);
    let d = errs[0];
    assert_eq!((d.line, d.column), (14, 9));
    assert_eq!(d.field_path.as_deref(), Some("spec.egress[0].to[0].ports"));
    let text = d.to_string();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("examples/mistakes/egress-ports-under-peer.yaml:14:9: error: NetworkPolicy test-project/allow-egress-from-vm-a-to-8-8-8-8: unknown field \"ports\" at spec.egress[0].to[0].ports")
    );
    let hint = lines.next().unwrap_or_default();
    assert!(hint.starts_with("  hint: "), "{hint}");
    assert!(hint.contains("move it to spec.egress[0].ports"), "{hint}");
    assert!(hint.contains("line up with \"to\""), "{hint}");
}

#[test]
fn ports_under_a_peer_is_dropped_in_warn_mode_and_the_warning_says_what_that_allows() {
    let l = load_mode(MISTAKE, ValidationMode::Warn);
    assert!(!l.has_errors());
    let w: Vec<_> = with(&l, Severity::Warning)
        .into_iter()
        .filter(|d| d.field_path.as_deref() == Some("spec.egress[0].to[0].ports"))
        .collect();
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("dropped"), "{}", w[0].message);
    assert!(
        w[0].message
            .contains("rule spec.egress[0] now allows every port (and protocol) to that peer"),
        "{}",
        w[0].message
    );
    let p = &l.cluster.policies[0];
    assert!(p.affects_egress && !p.affects_ingress);
    assert_eq!(p.egress.len(), 1);
    assert!(
        p.egress[0].ports.is_empty(),
        "the dropped ports do not come back"
    );
    assert_eq!(p.egress[0].peers.len(), 1);
}

#[test]
fn ports_under_a_peer_is_dropped_silently_in_ignore_mode() {
    let l = load_mode(MISTAKE, ValidationMode::Ignore);
    assert!(!l.has_errors());
    assert!(l
        .diagnostics
        .iter()
        .all(|d| d.field_path.as_deref() != Some("spec.egress[0].to[0].ports")));
    assert!(l.cluster.policies[0].egress[0].ports.is_empty());
}

#[test]
fn the_mistake_example_file_reports_its_own_path_and_position() {
    let path = examples().join("mistakes/egress-ports-under-peer.yaml");
    if !path.exists() {
        return; // The lead writes the examples in parallel.
    }
    let l = load_paths(&[&path], &LoadOptions::default());
    let errs = errors(&l);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].file, path.display().to_string());
    assert_eq!(
        errs[0].field_path.as_deref(),
        Some("spec.egress[0].to[0].ports")
    );
    // Same spot as in the file: the `ports:` key under the peer.
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().nth(errs[0].line - 1).unwrap();
    assert_eq!(&line[errs[0].column - 1..], "ports:");
}

#[test]
fn the_test_project_example_loads_without_errors() {
    let dir = examples().join("test-project");
    if !dir.exists() {
        return;
    }
    let l = load_paths(&[&dir], &LoadOptions::default());
    assert!(!l.has_errors(), "{:#?}", errors(&l));
    assert!(!l.cluster.policies.is_empty());
    let vm_a = l
        .cluster
        .workloads
        .iter()
        .find(|w| w.name == "vm-a")
        .expect("vm-a loads");
    assert_eq!(vm_a.kind, WorkloadKind::VirtualMachine);
    assert!(!vm_a.addresses.is_empty());
}

#[test]
fn an_unknown_field_gets_the_closest_known_name_as_a_hint() {
    let l = load(&policy("  podSelecter: {}\n"));
    let d = errors(&l)[0];
    assert_eq!(d.field_path.as_deref(), Some("spec.podSelecter"));
    assert_eq!((d.line, d.column), (7, 3));
    assert!(
        d.hint
            .as_deref()
            .unwrap_or_default()
            .contains("did you mean \"podSelector\"?"),
        "{d}"
    );
    // Deep in a Pod's big schema too.
    let l = load("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: c\n      imagePullPolicyy: Always\n");
    let d = errors(&l)[0];
    assert_eq!(
        d.field_path.as_deref(),
        Some("spec.containers[0].imagePullPolicyy")
    );
    assert_eq!((d.line, d.column), (7, 7));
    assert!(
        d.hint
            .as_deref()
            .unwrap_or_default()
            .contains("imagePullPolicy"),
        "{d}"
    );
}

#[test]
fn labels_written_directly_under_a_selector_are_pointed_to_match_labels() {
    let l = load(&policy("  podSelector:\n    vm: a\n"));
    let d = errors(&l)[0];
    assert_eq!(d.field_path.as_deref(), Some("spec.podSelector.vm"));
    assert!(
        d.hint
            .as_deref()
            .unwrap_or_default()
            .contains("spec.podSelector.matchLabels.vm"),
        "{d}"
    );
}

#[test]
fn an_unquoted_yes_label_is_a_bool_and_rejected_like_kubectl_does() {
    let l = load(&policy("  podSelector:\n    matchLabels:\n      vm: yes\n"));
    let d = errors(&l)[0];
    assert_eq!(d.message, "expected string, got bool (yes)");
    assert_eq!(
        d.field_path.as_deref(),
        Some("spec.podSelector.matchLabels[vm]")
    );
    assert_eq!((d.line, d.column), (9, 11));
    assert!(d.hint.as_deref().unwrap_or_default().contains("\"yes\""));
    let l = load(&policy(
        "  podSelector:\n    matchLabels:\n      vm: \"yes\"\n",
    ));
    assert!(!l.has_errors());
}

#[test]
fn a_duplicate_field_is_an_error_at_the_second_key_and_a_warning_in_warn_mode() {
    let text = policy("  podSelector: {}\n  policyTypes: [Ingress]\n  policyTypes: [Egress]\n");
    let l = load(&text);
    let d = errors(&l)[0];
    assert_eq!(d.message, "duplicate field \"policyTypes\"");
    assert_eq!(d.field_path.as_deref(), Some("spec.policyTypes"));
    assert_eq!((d.line, d.column), (9, 3));
    assert!(l.cluster.policies.is_empty());
    let l = load_mode(&text, ValidationMode::Warn);
    assert!(!l.has_errors());
    assert!(with(&l, Severity::Warning)
        .iter()
        .any(|d| d.message.contains("duplicate field")));
    // The later value wins, as in the API server's JSON decoding.
    assert!(l.cluster.policies[0].affects_egress && !l.cluster.policies[0].affects_ingress);
}

#[test]
fn type_errors_point_at_the_value_even_in_json() {
    let json = "{\n  \"apiVersion\": \"networking.k8s.io/v1\",\n  \"kind\": \"NetworkPolicy\",\n  \"metadata\": {\"name\": \"p\", \"namespace\": \"ns\"},\n  \"spec\": {\n    \"podSelector\": {},\n    \"ingress\": [{\"ports\": [{\"port\": [80]}]}]\n  }\n}\n";
    let l = load_str("p.json", json, &LoadOptions::default());
    let d = errors(&l)[0];
    assert_eq!(
        d.field_path.as_deref(),
        Some("spec.ingress[0].ports[0].port")
    );
    assert_eq!((d.line, d.column), (7, 37)); // the `[` of `[80]`
                                             // Type errors reject the object whatever the mode.
    let l = load_str(
        "p.json",
        json,
        &LoadOptions {
            validation: ValidationMode::Ignore,
        },
    );
    assert!(l.has_errors() && l.cluster.policies.is_empty());
}

#[test]
fn json_lists_typed_lists_and_multi_document_yaml_all_load() {
    let json = r#"{"apiVersion": "v1", "kind": "List", "items": [
      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"team": "x"}}},
      {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "a"}, "spec": {"podSelector": {}}}
    ]}"#;
    let l = load_str("-", json, &LoadOptions::default());
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(l.cluster.policies.len(), 1);
    assert_eq!(
        l.cluster
            .namespace("a")
            .unwrap()
            .labels
            .get("team")
            .map(String::as_str),
        Some("x")
    );
    assert!(!l.cluster.namespace("a").unwrap().implicit);

    // The raw API's typed list: items without apiVersion/kind.
    let typed = "apiVersion: v1\nkind: PodList\nmetadata: {resourceVersion: \"1\"}\nitems:\n  - metadata: {name: p1, namespace: a}\n    status: {podIP: 10.0.0.1}\n  - metadata: {name: p2, namespace: a}\n";
    let l = load(typed);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(l.cluster.workloads.len(), 2);
    assert_eq!(l.cluster.workloads[1].origin.as_ref().unwrap().line, 7);

    // Empty documents and a leading `---` are fine.
    let multi = "---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n...\n";
    let l = load(multi);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(l.cluster.namespaces.len(), 2);
}

#[test]
fn a_whole_kubectl_dump_loads_with_notes_for_kinds_netpol_does_not_use() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: x, namespace: default}\n  spec: {ports: [{port: 80}]}\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: d, namespace: default}\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: default}\n";
    let l = load(text);
    assert!(!l.has_errors());
    let notes = with(&l, Severity::Note);
    assert!(notes.iter().any(|d| d.message
        == "skipped Service default/x: netpol does not use this kind"
        && d.line == 4));
    // A Deployment is a workload (its pod template), no longer a kind netpol skips.
    assert!(!notes.iter().any(|d| d.message.contains("Deployment")));
    assert_eq!(l.cluster.workloads.len(), 1);
    assert_eq!(l.cluster.workloads[0].kind, WorkloadKind::Deployment);
}

#[test]
fn missing_api_version_or_kind_or_a_wrong_version_is_an_error_for_that_document_only() {
    let text = "kind: NetworkPolicy\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n---\napiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n";
    let l = load(text);
    let errs = errors(&l);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].message.contains("apiVersion not set"));
    assert!(errs[1].message.contains("kind not set"));
    assert!(errs[2]
        .message
        .contains("no matches for kind \"NetworkPolicy\" in version \"extensions/v1beta1\""));
    assert_eq!(errs[2].line, 7);
    assert!(l.cluster.namespace("ok").is_some());
}

#[test]
fn namespaces_used_but_not_defined_are_created_with_a_warning() {
    let l = load("apiVersion: v1\nkind: Namespace\nmetadata: {name: real}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ghost}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: q}\n");
    let ghost = l.cluster.namespace("ghost").unwrap();
    assert!(ghost.implicit);
    assert_eq!(
        ghost.labels.get(NAMESPACE_NAME_LABEL).map(String::as_str),
        Some("ghost")
    );
    let real = l.cluster.namespace("real").unwrap();
    assert!(!real.implicit);
    assert_eq!(
        real.labels.get(NAMESPACE_NAME_LABEL).map(String::as_str),
        Some("real")
    );
    // A pod without a namespace is in `default`.
    assert_eq!(l.cluster.workloads[1].namespace, "default");
    let warns = with(&l, Severity::Warning);
    assert_eq!(warns.len(), 2, "{warns:?}");
    let ghost_warn = warns
        .iter()
        .find(|d| d.message.contains("\"ghost\""))
        .unwrap();
    assert_eq!(ghost_warn.line, 5, "points at the first object using it");
    assert!(warns.iter().all(|d| !d.message.contains("\"real\"")));
}

#[test]
fn duplicate_objects_keep_the_first_and_report_the_second() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a, labels: {v: \"1\"}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a, labels: {v: \"2\"}}\n";
    let l = load(text);
    let errs = errors(&l);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 5);
    assert!(errs[0].message.contains("already defined at t.yaml:1"));
    assert_eq!(l.cluster.workloads.len(), 1);
    assert_eq!(
        l.cluster.workloads[0].labels.get("v").map(String::as_str),
        Some("1")
    );
}

#[test]
fn pods_read_dual_stack_addresses_node_phase_and_named_ports() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: a\n  labels: {app: web}\nspec:\n  nodeName: node-1\n  containers:\n    - name: c\n      ports:\n        - {name: http, containerPort: 8080}\n        - {name: dns, containerPort: 53, protocol: UDP}\n        - {containerPort: 9000}\nstatus:\n  phase: Running\n  podIP: 10.0.0.5\n  podIPs:\n    - ip: 10.0.0.5\n    - ip: fd00::5\n";
    let l = load(text);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    let w = &l.cluster.workloads[0];
    assert_eq!(w.kind, WorkloadKind::Pod);
    assert_eq!(
        w.addresses,
        vec![
            "10.0.0.5".parse::<std::net::IpAddr>().unwrap(),
            "fd00::5".parse().unwrap()
        ]
    );
    assert_eq!(w.node.as_deref(), Some("node-1"));
    assert_eq!(w.phase.as_deref(), Some("Running"));
    assert_eq!(
        w.named_ports,
        vec![
            NamedPort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 8080
            },
            NamedPort {
                name: "dns".into(),
                protocol: Protocol::Udp,
                port: 53
            },
        ]
    );
    assert_eq!(
        w.origin.as_ref().map(|o| (o.file.as_str(), o.line)),
        Some(("t.yaml", 1))
    );
    // Without podIPs, podIP is the address.
    let l = load("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {podIP: 10.0.0.9}\n");
    assert_eq!(
        l.cluster.workloads[0].addresses,
        vec!["10.0.0.9".parse::<std::net::IpAddr>().unwrap()]
    );
    // A bad address rejects the pod.
    let l = load("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {podIP: 10.0.0.300}\n");
    assert!(errors(&l)[0]
        .message
        .starts_with("status.podIP: Invalid value: \"10.0.0.300\""));
}

#[test]
fn host_network_and_finished_pods_are_skipped_with_a_note() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: h, namespace: a}\nspec: {hostNetwork: true, containers: []}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: done, namespace: a}\nstatus: {phase: Succeeded}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: failed, namespace: a}\nstatus: {phase: Failed}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: live, namespace: a}\nstatus: {phase: Pending}\n";
    let l = load(text);
    assert!(!l.has_errors());
    let names: Vec<&str> = l
        .cluster
        .workloads
        .iter()
        .map(|w| w.name.as_str())
        .collect();
    assert_eq!(names, vec!["live"]);
    let notes = with(&l, Severity::Note);
    assert!(notes
        .iter()
        .any(|d| d.object.as_deref() == Some("Pod a/h") && d.message.contains("hostNetwork")));
    assert!(notes
        .iter()
        .any(|d| d.object.as_deref() == Some("Pod a/done") && d.message.contains("Succeeded")));
    assert!(notes
        .iter()
        .any(|d| d.object.as_deref() == Some("Pod a/failed")));
}

const VM_DUMP: &str = "apiVersion: v1
kind: List
items:
- apiVersion: virtualization.deckhouse.io/v1alpha2
  kind: VirtualMachine
  metadata:
    name: vm-a
    namespace: test-project
    labels: {vm: a}
    annotations: {note: x}
    finalizers: [virtualization.deckhouse.io/vm-controller]
    uid: 7c4e2a10
  spec:
    cpu: {cores: 1, coreFraction: 100%}
    memory: {size: 1Gi}
    blockDeviceRefs: [{kind: VirtualDisk, name: root}]
    someFutureField: {nested: [1, 2, 3]}
  status:
    ipAddress: 10.66.10.2
    nodeName: node-2
    phase: Running
    conditions:
    - {type: Running, status: \"True\", lastProbeTime: null}
    guestOSInfo: {id: ubuntu}
    stats: {phasesTransitions: [{phase: Running, timestamp: 2026-01-01T00:00:00Z}]}
";

#[test]
fn a_virtual_machine_dump_with_many_fields_netpol_does_not_read_loads() {
    let l = load(VM_DUMP);
    assert!(
        l.diagnostics.iter().all(|d| d.severity != Severity::Error),
        "{:?}",
        l.diagnostics
    );
    let w = &l.cluster.workloads[0];
    assert_eq!(w.kind, WorkloadKind::VirtualMachine);
    assert_eq!(w.key(), "test-project/vm-a");
    assert_eq!(
        w.addresses,
        vec!["10.66.10.2".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(w.node.as_deref(), Some("node-2"));
    assert_eq!(w.phase.as_deref(), Some("Running"));
    assert!(w.named_ports.is_empty());
    assert_eq!(w.origin.as_ref().unwrap().line, 4);
}

#[test]
fn the_fields_netpol_reads_from_a_vm_are_type_checked() {
    let l = load("apiVersion: virtualization.deckhouse.io/v1alpha2\nkind: VirtualMachine\nmetadata: {name: v, labels: {on: yes}}\nstatus: {ipAddress: 10.0.0.1}\n");
    let d = errors(&l)[0];
    assert_eq!(d.field_path.as_deref(), Some("metadata.labels[on]"));
    assert!(l.cluster.workloads.is_empty());
    let l = load("apiVersion: virtualization.deckhouse.io/v1alpha2\nkind: VirtualMachine\nmetadata: {name: v}\nstatus: {ipAddress: [1]}\n");
    assert_eq!(
        errors(&l)[0].field_path.as_deref(),
        Some("status.ipAddress")
    );
}

#[test]
fn a_kubevirt_vmi_reads_interface_addresses() {
    let text = "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: vmi, namespace: a, labels: {kubevirt.io/domain: vmi}}\nspec: {domain: {devices: {}}}\nstatus:\n  nodeName: n1\n  phase: Running\n  interfaces:\n    - ipAddress: 10.0.0.7\n      ipAddresses: [10.0.0.7, \"fd00::7\", \"fe80::1\"]\n";
    let l = load(text);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    let w = &l.cluster.workloads[0];
    assert_eq!(w.kind, WorkloadKind::VirtualMachineInstance);
    // Link-local addresses are not pod-network addresses.
    assert_eq!(
        w.addresses,
        vec![
            "10.0.0.7".parse::<std::net::IpAddr>().unwrap(),
            "fd00::7".parse().unwrap()
        ]
    );
    assert_eq!(w.node.as_deref(), Some("n1"));
}

#[test]
fn virt_launcher_pods_and_instances_fold_into_their_vm() {
    let text = "apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachine
metadata: {name: vm-a, namespace: p, labels: {vm: a}}
status: {ipAddress: 10.0.0.2}
---
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vm-a, namespace: p}
status: {nodeName: node-9, interfaces: [{ipAddress: 10.0.0.2}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: virt-launcher-vm-a-x1
  namespace: p
  labels: {vm.kubevirt.internal.virtualization.deckhouse.io/name: vm-a, kubevirt.io: virt-launcher}
status: {podIP: 10.0.0.2}
---
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: plain, namespace: p}
status: {interfaces: [{ipAddress: 10.0.0.3}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: virt-launcher-plain-y
  namespace: p
  labels: {vm.kubevirt.io/name: plain}
---
apiVersion: v1
kind: Pod
metadata:
  name: virt-launcher-by-address
  namespace: p
  labels: {kubevirt.io: virt-launcher}
status: {podIP: 10.0.0.3}
---
apiVersion: v1
kind: Pod
metadata:
  name: launcher-of-unknown-vm
  namespace: p
  labels: {vm.kubevirt.io/name: elsewhere}
---
apiVersion: v1
kind: Pod
metadata:
  name: same-label-other-namespace
  namespace: q
  labels: {vm.kubevirt.io/name: plain}
";
    let l = load(text);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    let keys: Vec<(WorkloadKind, String)> = l
        .cluster
        .workloads
        .iter()
        .map(|w| (w.kind, w.key()))
        .collect();
    assert_eq!(
        keys,
        vec![
            (WorkloadKind::VirtualMachine, "p/vm-a".to_string()),
            (WorkloadKind::VirtualMachineInstance, "p/plain".to_string()),
            (WorkloadKind::Pod, "p/launcher-of-unknown-vm".to_string()),
            (
                WorkloadKind::Pod,
                "q/same-label-other-namespace".to_string()
            ),
        ]
    );
    // The VM keeps its own address and takes the node its instance reports.
    assert_eq!(l.cluster.workloads[0].node.as_deref(), Some("node-9"));
    let notes = with(&l, Severity::Note);
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert!(notes.iter().any(
        |d| d.object.as_deref() == Some("Pod p/virt-launcher-vm-a-x1")
            && d.message.contains("VirtualMachine p/vm-a")
    ));
    assert!(notes
        .iter()
        .any(|d| d.object.as_deref() == Some("Pod p/virt-launcher-by-address")));
    assert!(notes
        .iter()
        .any(|d| d.object.as_deref() == Some("VirtualMachineInstance p/vm-a")));
}

#[test]
fn anchors_and_aliases_are_expanded() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: &l {app: web}\n  annotations: *l\n";
    let l = load(text);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(
        l.cluster.workloads[0].labels.get("app").map(String::as_str),
        Some("web")
    );
}

#[test]
fn a_file_that_does_not_parse_is_an_error_and_other_files_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &good,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: good}\n",
    )
    .unwrap();
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: [unclosed\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.yaml");
    let l = load_paths(&[&bad, &missing, &good], &LoadOptions::default());
    let errs = errors(&l);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].file.ends_with("bad.yaml") && errs[0].message.starts_with("cannot parse YAML"));
    assert!(errs[0].line >= 3);
    assert!(errs[1].file.ends_with("missing.yaml") && errs[1].message.starts_with("cannot read"));
    assert!(l.cluster.namespace("good").is_some());
}

#[test]
fn directories_load_recursively_in_sorted_order_and_only_manifest_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("b/nested")).unwrap();
    std::fs::create_dir_all(root.join("a")).unwrap();
    let ns = |name: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n");
    std::fs::write(root.join("b/nested/3.yml"), ns("three")).unwrap();
    std::fs::write(
        root.join("b/2.json"),
        r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "two"}}"#,
    )
    .unwrap();
    std::fs::write(root.join("a/1.yaml"), ns("one")).unwrap();
    std::fs::write(root.join("a/README.md"), "not: [yaml").unwrap();
    std::fs::write(root.join("z.txt"), ns("never")).unwrap();
    let l = load_paths(&[root], &LoadOptions::default());
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    let names: Vec<&str> = l
        .cluster
        .namespaces
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(names, vec!["one", "two", "three"]);
    // An explicitly named file loads whatever its extension.
    let l = load_paths(&[root.join("z.txt")], &LoadOptions::default());
    assert!(l.cluster.namespace("never").is_some());
}

#[test]
fn standard_input_text_is_named_dash_in_diagnostics() {
    let l = load_str(
        "-",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {a: no}}\n",
        &LoadOptions::default(),
    );
    let d = errors(&l)[0];
    assert!(d.to_string().starts_with("-:3:"), "{d}");
}

#[test]
fn hostile_input_does_not_panic() {
    for text in [
        "",
        "---",
        "- a\n- b\n",
        "just a string",
        "apiVersion: [1]\nkind: {a: b}\n",
        "apiVersion: v1\nkind: Pod\nmetadata: 5\n",
        "apiVersion: v1\nkind: Pod\nspec: {containers: [{ports: [{containerPort: 99999999999999999999}]}]}\n",
        "apiVersion: v1\nkind: List\nitems: [1, null, {kind: Pod}]\n",
        "? [a]\n: b\n",
        "*unknown\n",
        "\u{feff}apiVersion: v1\nkind: Namespace\nmetadata: {name: bom}\n",
    ] {
        let l = load(text);
        let _ = l.has_errors();
    }
    let l = load("\u{feff}apiVersion: v1\nkind: Namespace\nmetadata: {name: bom}\n");
    assert!(l.cluster.namespace("bom").is_some());
}

/// The 1-based line of the only line of `text` that contains `marker`.
fn line_of(text: &str, marker: &str) -> usize {
    let hits: Vec<usize> = text
        .lines()
        .zip(1..)
        .filter(|(l, _)| l.contains(marker))
        .map(|(_, n)| n)
        .collect();
    assert_eq!(hits.len(), 1, "{marker}");
    hits[0]
}

#[test]
fn a_networkpolicy_remembers_the_line_of_each_rule_peer_and_port() {
    let text = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: a}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
  - ports: # in0-rule
    - port: 80 # in0-port0
  - from: # in1-rule
    - podSelector: {} # in1-peer0
    - ipBlock: # in1-peer1
        cidr: 192.0.2.0/24
    ports:
    - {port: 53, protocol: UDP} # in1-port0
    - port: 443 # in1-port1
  egress:
  - to: [{ipBlock: {cidr: 198.51.100.0/24}}] # out0-rule
";
    let l = load_str("p.yaml", text, &LoadOptions::default());
    assert!(errors(&l).is_empty(), "{:?}", l.diagnostics);
    let lines = &l.cluster.policies[0].rule_lines;
    let at = |m: &str| line_of(text, &format!("# {m}"));
    assert_eq!(lines.ingress.len(), 2);
    assert_eq!(lines.ingress[0].line, at("in0-rule"));
    assert_eq!(lines.ingress[0].peers, Vec::<usize>::new());
    assert_eq!(lines.ingress[0].ports, [at("in0-port0")]);
    assert_eq!(lines.ingress[1].line, at("in1-rule"));
    assert_eq!(lines.ingress[1].peers, [at("in1-peer0"), at("in1-peer1")]);
    assert_eq!(lines.ingress[1].ports, [at("in1-port0"), at("in1-port1")]);
    assert_eq!(lines.egress.len(), 1);
    assert_eq!(lines.egress[0].line, at("out0-rule"));
    assert_eq!(lines.egress[0].peers, [at("out0-rule")]);
}

#[test]
fn rules_of_a_direction_policytypes_leaves_out_have_no_lines_either() {
    let text = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: a}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  egress:
  - to: [{podSelector: {}}]
";
    let l = load_str("p.yaml", text, &LoadOptions::default());
    let p = &l.cluster.policies[0];
    assert!(p.egress.is_empty());
    assert!(p.rule_lines.egress.is_empty());
}

#[test]
fn rule_lines_of_a_json_policy_point_at_its_items() {
    let text = r#"{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
 "metadata": {"name": "p", "namespace": "a"},
 "spec": {"podSelector": {},
  "ingress": [
   {"from": [
     {"podSelector": {}}],
    "ports": [
     {"port": 80}]}]}}
"#;
    let l = load_str("p.json", text, &LoadOptions::default());
    let lines = &l.cluster.policies[0].rule_lines.ingress;
    assert_eq!(lines[0].line, line_of(text, r#"{"from""#));
    assert_eq!(lines[0].peers, [line_of(text, r#"{"podSelector": {}}]"#)]);
    assert_eq!(lines[0].ports, [line_of(text, r#"{"port""#)]);
}
