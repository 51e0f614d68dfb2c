//! The cross-object folding steps of the loader, with a note per folded object: VMs with their
//! instances and launcher pods ([`crate::fold`]), then controllers with their Pods
//! ([`crate::fold::controllers`]).

use netpol_core::Workload;

use super::{Entry, Loader};
use crate::fold::{ControllerFolding, FoldReason, Folding, Owner};
use crate::schema;
use crate::{Diagnostic, DiagnosticKind, Severity};

impl Loader {
    /// Folds VMs, their instances and launcher pods, with a note per folded object.
    pub(super) fn fold(&mut self, entries: Vec<Entry>) -> Vec<Workload> {
        let folding = {
            let refs: Vec<&Workload> = entries.iter().map(|e| &e.workload).collect();
            Folding::plan(&refs)
        };
        for f in folding.folds() {
            let (e, into) = (&entries[f.folded], &entries[f.into].workload);
            let into_kind = schema::of_workload(into.kind).kind;
            let message = match f.reason {
                FoldReason::Instance => format!(
                    "the instance of VirtualMachine {}: counted once, as the VirtualMachine",
                    e.workload.key()
                ),
                FoldReason::Launcher => format!(
                    "the virt-launcher pod of {into_kind} {}: not a separate workload",
                    into.key()
                ),
                FoldReason::SharesAddress => format!(
                    "holds the address of {into_kind} {}: taken as its virt-launcher pod, not a separate workload",
                    into.key()
                ),
            };
            let label = format!(
                "{} {}",
                schema::of_workload(e.workload.kind).kind,
                e.workload.key()
            );
            let d = Diagnostic::at(Severity::Note, &e.file, e.pos, message)
                .object(label)
                .kind(DiagnosticKind::Folded);
            self.diagnostics.push(d);
        }
        let (mut kept, mut workloads) = (Vec::new(), Vec::new());
        for (i, e) in entries.into_iter().enumerate() {
            if folding.is_kept(i) {
                workloads.push(e.workload.clone());
                kept.push(e);
            } else {
                workloads.push(e.workload);
            }
        }
        let workloads = folding.apply(workloads);
        self.fold_controllers(kept, workloads)
    }

    /// Folds Pods (and ReplicaSets, Jobs) into their controllers, with a note per folded object
    /// and per controller whose Pods run on several nodes. `entries` and `workloads` are the same
    /// objects (the workloads already VM-folded).
    fn fold_controllers(&mut self, entries: Vec<Entry>, workloads: Vec<Workload>) -> Vec<Workload> {
        let owners: Vec<Option<Owner>> = entries.iter().map(|e| e.owner.clone()).collect();
        let folding = ControllerFolding::plan(&workloads, &owners);
        for f in folding.folds() {
            let (e, into) = (&entries[f.folded], &workloads[f.into]);
            let into_kind = schema::of_workload(into.kind).kind;
            let own_kind = schema::of_workload(e.workload.kind).kind;
            let message = format!(
                "one of {into_kind} {}'s {}: not a separate workload",
                into.key(),
                if e.workload.kind == netpol_core::WorkloadKind::Pod {
                    "Pods (its address is the controller's)"
                } else {
                    "ReplicaSets or Jobs"
                }
            );
            let d = Diagnostic::at(Severity::Note, &e.file, e.pos, message)
                .object(format!("{own_kind} {}", e.workload.key()))
                .kind(DiagnosticKind::Folded);
            self.diagnostics.push(d);
        }
        for (i, e) in entries.iter().enumerate() {
            let pods = folding
                .folds()
                .iter()
                .filter(|f| f.into == i)
                .map(|f| &workloads[f.folded]);
            let nodes = crate::fold::controllers::nodes_of(pods);
            if nodes.len() > 1 {
                let message = format!("its Pods run on nodes {}: the workload has no single node, so node-bound views (compile --node, a node's own traffic) do not see it; load the Pods without it for those", nodes.join(", "));
                let kind = schema::of_workload(e.workload.kind).kind;
                let d = Diagnostic::at(Severity::Note, &e.file, e.pos, message)
                    .object(format!("{kind} {}", e.workload.key()));
                self.diagnostics.push(d);
            }
        }
        folding.apply(workloads)
    }
}
