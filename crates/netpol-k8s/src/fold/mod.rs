//! The one rule that makes a virtual machine one workload: a Deckhouse VirtualMachine, the
//! KubeVirt VirtualMachineInstance that runs it and its virt-launcher Pod(s) are three objects
//! (four during a live migration) behind one address. The loader applies it to everything it
//! loaded; the agent's store applies it to everything its sources hold, however the objects are
//! split across files and watches.
//!
//! * A VirtualMachineInstance with the namespace and name of a VirtualMachine is that VM's
//!   instance: it folds into the VM.
//! * A Pod folds into the VM (or an instance without a VM) of its namespace that its launcher
//!   label names (`vm.kubevirt.internal.virtualization.deckhouse.io/name`, then
//!   `vm.kubevirt.io/name`), or else whose address it carries: during a live migration the source
//!   and the target launcher pods both carry the VM's address, and a pod and a VM cannot share
//!   one otherwise.
//! * The VM wins, but takes what it does not report itself (addresses, node) from its instance
//!   first, then from its launcher pods, in input order. A migrating VM thus stays one workload,
//!   on the node in its own `status.nodeName`.
//!
//! Workload controllers and their Pods fold by a rule of their own, [`controllers`], which the
//! loader applies after this one (the agent does not: it does not watch controllers).

pub mod controllers;

pub use controllers::{ControllerFold, ControllerFolding, Owner};

use std::borrow::Borrow;
use std::collections::HashMap;
use std::net::IpAddr;

use netpol_core::{Workload, WorkloadKind};

/// Label Deckhouse puts on the virt-launcher pod of a VirtualMachine.
pub const DECKHOUSE_VM_LABEL: &str = "vm.kubevirt.internal.virtualization.deckhouse.io/name";
/// Label KubeVirt puts on the virt-launcher pod of a VM.
pub const KUBEVIRT_VM_LABEL: &str = "vm.kubevirt.io/name";
/// `kubevirt.io=virt-launcher`: the label of every virt-launcher pod.
pub const LAUNCHER_LABEL: (&str, &str) = ("kubevirt.io", "virt-launcher");

/// Why a workload is not a workload of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FoldReason {
    /// A VirtualMachineInstance named like a VirtualMachine: the VM's running instance.
    Instance,
    /// A Pod whose launcher label names the VM, or that carries its address and the
    /// `kubevirt.io=virt-launcher` label.
    Launcher,
    /// A Pod without launcher labels that carries the VM's address (a launcher pod whose labels
    /// are not known, such as a migration target being created).
    SharesAddress,
}

/// Workload `folded` (an index into the input) is part of workload `into`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fold {
    /// The workload that is not one of its own.
    pub folded: usize,
    /// The VM (or instance) it is part of.
    pub into: usize,
    /// Why.
    pub reason: FoldReason,
}

/// What folding does to a list of workloads: which ones fold into which, in the order their
/// missing fields are filled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Folding {
    folds: Vec<Fold>,
    kept: Vec<bool>,
}

/// Folds `workloads` (see the module documentation); the others keep their order.
pub fn fold_workloads(workloads: Vec<Workload>) -> Vec<Workload> {
    Folding::plan(&workloads).apply(workloads)
}

impl Folding {
    /// Decides the folding of `workloads` without changing them. Each (kind, namespace, name)
    /// is expected once (the first definition of a duplicate is the one to keep).
    pub fn plan<W: Borrow<Workload>>(workloads: &[W]) -> Folding {
        let ws: Vec<&Workload> = workloads.iter().map(Borrow::borrow).collect();
        let mut folding = Folding {
            folds: Vec::new(),
            kept: vec![true; ws.len()],
        };
        folding.instances(&ws);
        folding.launchers(&ws);
        folding
    }

    /// Every fold, instances first, then launcher pods, each in input order.
    pub fn folds(&self) -> &[Fold] {
        &self.folds
    }

    /// Whether workload `i` of the input stays a workload of its own.
    pub fn is_kept(&self, i: usize) -> bool {
        self.kept.get(i).copied().unwrap_or(true)
    }

    /// The workloads of the plan's input (the same list), folded.
    pub fn apply(&self, mut workloads: Vec<Workload>) -> Vec<Workload> {
        for f in &self.folds {
            let (Some(donor), Some(target)) = (workloads.get(f.folded), workloads.get(f.into))
            else {
                continue;
            };
            let addresses = target.addresses.is_empty().then(|| donor.addresses.clone());
            let node = target.node.is_none().then(|| donor.node.clone()).flatten();
            let target = &mut workloads[f.into];
            if let Some(a) = addresses {
                target.addresses = a;
            }
            if node.is_some() {
                target.node = node;
            }
        }
        workloads
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.is_kept(*i))
            .map(|(_, w)| w)
            .collect()
    }

    /// [`apply`](Self::apply) to a copy of borrowed workloads.
    pub fn apply_cloned<W: Borrow<Workload>>(&self, workloads: &[W]) -> Vec<Workload> {
        self.apply(workloads.iter().map(|w| w.borrow().clone()).collect())
    }

    fn fold(&mut self, folded: usize, into: usize, reason: FoldReason) {
        self.kept[folded] = false;
        self.folds.push(Fold {
            folded,
            into,
            reason,
        });
    }

    /// A KubeVirt VMI with the name of a Deckhouse VM is that VM's running instance.
    fn instances(&mut self, ws: &[&Workload]) {
        let mut vms: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, w) in ws.iter().enumerate() {
            if w.kind == WorkloadKind::VirtualMachine {
                vms.entry((&w.namespace, &w.name)).or_insert(i);
            }
        }
        for (i, w) in ws.iter().enumerate() {
            if w.kind != WorkloadKind::VirtualMachineInstance {
                continue;
            }
            if let Some(&vm) = vms.get(&(w.namespace.as_str(), w.name.as_str())) {
                self.fold(i, vm, FoldReason::Instance);
            }
        }
    }

    /// Pods fold into the VM-ish workload their label names or whose address they carry.
    fn launchers(&mut self, ws: &[&Workload]) {
        // The addresses the VMs report themselves, before any filling.
        let mut by_name: HashMap<(&str, &str), usize> = HashMap::new();
        let mut by_addr: HashMap<(&str, IpAddr), usize> = HashMap::new();
        for (i, w) in ws.iter().enumerate() {
            if w.kind == WorkloadKind::Pod || !self.kept[i] {
                continue;
            }
            by_name.entry((&w.namespace, &w.name)).or_insert(i);
            for a in &w.addresses {
                by_addr.entry((&w.namespace, *a)).or_insert(i);
            }
        }
        for (i, w) in ws.iter().enumerate() {
            if w.kind != WorkloadKind::Pod {
                continue;
            }
            let ns = w.namespace.as_str();
            let by_label = [DECKHOUSE_VM_LABEL, KUBEVIRT_VM_LABEL]
                .iter()
                .filter_map(|l| w.labels.get(*l))
                .find_map(|vm| by_name.get(&(ns, vm.as_str())));
            if let Some(&vm) = by_label {
                self.fold(i, vm, FoldReason::Launcher);
                continue;
            }
            let Some(&vm) = w.addresses.iter().find_map(|a| by_addr.get(&(ns, *a))) else {
                continue;
            };
            let labelled =
                w.labels.get(LAUNCHER_LABEL.0).map(String::as_str) == Some(LAUNCHER_LABEL.1);
            let reason = if labelled {
                FoldReason::Launcher
            } else {
                FoldReason::SharesAddress
            };
            self.fold(i, vm, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netpol_core::Labels;

    fn w(kind: WorkloadKind, ns: &str, name: &str, ips: &[&str], node: Option<&str>) -> Workload {
        Workload {
            kind,
            namespace: ns.into(),
            name: name.into(),
            labels: Labels::new(),
            addresses: ips.iter().map(|a| a.parse().unwrap()).collect(),
            node: node.map(str::to_string),
            phase: None,
            named_ports: vec![],
            origin: None,
            instances: Default::default(),
        }
    }

    #[test]
    fn a_vm_takes_the_node_of_its_instance_before_that_of_its_launcher() {
        let mut pod = w(WorkloadKind::Pod, "a", "l", &["10.0.0.1"], Some("from-pod"));
        pod.labels.insert(KUBEVIRT_VM_LABEL.into(), "vm".into());
        let input = vec![
            pod,
            w(WorkloadKind::VirtualMachine, "a", "vm", &[], None),
            w(
                WorkloadKind::VirtualMachineInstance,
                "a",
                "vm",
                &["10.0.0.1"],
                Some("from-vmi"),
            ),
        ];
        let folding = Folding::plan(&input);
        assert_eq!(
            folding.folds(),
            [
                Fold {
                    folded: 2,
                    into: 1,
                    reason: FoldReason::Instance
                },
                Fold {
                    folded: 0,
                    into: 1,
                    reason: FoldReason::Launcher
                },
            ]
        );
        let out = folding.apply_cloned(&input);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].node.as_deref(), Some("from-vmi"));
        assert_eq!(out[0].addresses, input[2].addresses);
        assert_eq!(fold_workloads(input), out);
    }

    #[test]
    fn a_pod_sharing_an_address_folds_only_within_its_namespace() {
        let input = vec![
            w(
                WorkloadKind::VirtualMachine,
                "a",
                "vm",
                &["10.0.0.5"],
                Some("n2"),
            ),
            w(WorkloadKind::Pod, "a", "target", &["10.0.0.5"], Some("n1")),
            w(
                WorkloadKind::Pod,
                "b",
                "elsewhere",
                &["10.0.0.5"],
                Some("n1"),
            ),
        ];
        let folding = Folding::plan(&input);
        assert_eq!(
            folding.folds(),
            [Fold {
                folded: 1,
                into: 0,
                reason: FoldReason::SharesAddress
            }]
        );
        let out = folding.apply(input);
        let names: Vec<&str> = out.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["vm", "elsewhere"]);
        assert_eq!(out[0].node.as_deref(), Some("n2"));
    }
}
