//! The one folding rule (`netpol_k8s::fold`) as the loader applies it, and as a caller that
//! assembles separately loaded texts applies it (the agent's store).

mod common;

use common::{load, with};
use netpol_core::WorkloadKind;
use netpol_k8s::{
    fold_workloads, load_fragment, DiagnosticKind, FoldReason, Folding, LoadOptions, Severity,
};

const VM: &str = "apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachine
metadata: {name: vm-a, namespace: test-project, labels: {vm: a}}
status: {phase: Running, ipAddress: 10.66.20.70, nodeName: virtlab-2}
";

const VMI: &str = "apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vm-a, namespace: test-project}
status: {phase: Running, nodeName: virtlab-2, interfaces: [{ipAddress: 10.66.20.70}]}
";

const LAUNCHER: &str = "apiVersion: v1
kind: Pod
metadata:
  name: virt-launcher-vm-a-7xk2p
  namespace: test-project
  labels: {kubevirt.io: virt-launcher, vm.kubevirt.internal.virtualization.deckhouse.io/name: vm-a}
spec: {nodeName: virtlab-2, containers: [{name: compute}]}
status: {phase: Running, podIP: 10.66.20.70}
";

/// A migration target pod before its labels are known: only its address ties it to the VM.
const TARGET: &str = "apiVersion: v1
kind: Pod
metadata: {name: virt-launcher-vm-a-target, namespace: test-project}
spec: {nodeName: virtlab-3, containers: [{name: compute}]}
status: {phase: Running, podIP: 10.66.20.70}
";

#[test]
fn texts_loaded_apart_and_folded_once_are_the_workloads_of_one_load() {
    let texts = [VM, VMI, LAUNCHER, TARGET];
    let together = load(&texts.join("---\n"));
    assert!(!together.has_errors(), "{:?}", together.diagnostics);
    let mut fragments = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let l = load_fragment(&format!("f{i}.yaml"), t, &LoadOptions::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        // A fragment is not folded on its own, and names no implicit namespace.
        assert_eq!(l.cluster.workloads.len(), 1);
        assert!(l.cluster.namespaces.is_empty());
        fragments.extend(l.cluster.workloads);
    }
    let folded = fold_workloads(fragments);
    let strip = |ws: Vec<netpol_core::Workload>| -> Vec<netpol_core::Workload> {
        ws.into_iter()
            .map(|mut w| {
                w.origin = None;
                w
            })
            .collect()
    };
    assert_eq!(strip(folded.clone()), strip(together.cluster.workloads));
    assert_eq!(folded.len(), 1);
    assert_eq!(folded[0].kind, WorkloadKind::VirtualMachine);
    assert_eq!(folded[0].node.as_deref(), Some("virtlab-2"));
}

#[test]
fn a_pod_holding_a_vms_address_without_launcher_labels_folds_with_a_note_saying_why() {
    let l = load(&[VM, TARGET].join("---\n"));
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(l.cluster.workloads.len(), 1);
    let notes = with(&l, Severity::Note);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].kind, DiagnosticKind::Folded);
    assert_eq!(
        notes[0].object.as_deref(),
        Some("Pod test-project/virt-launcher-vm-a-target")
    );
    assert!(
        notes[0]
            .message
            .contains("holds the address of VirtualMachine test-project/vm-a"),
        "{}",
        notes[0].message
    );
    // A pod of another namespace with that address is another workload (and a conflict the
    // compiler reports), not the VM's launcher.
    let elsewhere = TARGET.replace("namespace: test-project", "namespace: other");
    let l = load(&[VM, elsewhere.as_str()].join("---\n"));
    assert_eq!(l.cluster.workloads.len(), 2);
}

#[test]
fn the_plan_names_every_fold_and_its_reason() {
    let l = load_fragment(
        "all.yaml",
        &[LAUNCHER, VMI, TARGET, VM].join("---\n"),
        &LoadOptions::default(),
    );
    let plan = Folding::plan(&l.cluster.workloads);
    let reasons: Vec<(usize, usize, FoldReason)> = plan
        .folds()
        .iter()
        .map(|f| (f.folded, f.into, f.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            (1, 3, FoldReason::Instance),
            (0, 3, FoldReason::Launcher),
            (2, 3, FoldReason::SharesAddress),
        ]
    );
    assert!(plan.is_kept(3) && !plan.is_kept(0));
}

#[test]
fn an_undefined_namespace_warning_says_so_in_its_kind() {
    let l = load(VM);
    let warnings = with(&l, Severity::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].kind, DiagnosticKind::UndefinedNamespace);
    assert_eq!(
        warnings[0].object.as_deref(),
        Some("Namespace test-project")
    );
    let fragment = load_fragment("vm.yaml", VM, &LoadOptions::default());
    assert!(
        fragment.diagnostics.is_empty(),
        "{:?}",
        fragment.diagnostics
    );
}
