//! `netpol get vms|pods|workloads|nodes|policies`: a `d8 k get vm`-style listing with isolation
//! columns, the nodes with their addresses and the workloads they host, or the policies of every
//! tier in the order they decide.

use anyhow::Result;
use netpol_core::{Workload, WorkloadKind};

use crate::cli::{GetArgs, GetWhat};
use crate::input;

pub fn run(args: &GetArgs) -> Result<u8> {
    let input = input::load_with(&args.input, input::NamespaceFlags::Filter)?;
    let cluster = &input.cluster;
    // -n filters manifests; a live cluster read in one namespace lists that one, like kubectl.
    let namespace = match &args.input.live.namespace {
        Some(ns) => Some(ns.clone()),
        None => input.namespace_read.clone(),
    };
    let namespace = namespace.as_deref();
    if matches!(args.what, GetWhat::Nodes | GetWhat::Policies) {
        let listing = match args.what {
            GetWhat::Nodes => crate::render::get::nodes(cluster, namespace),
            _ => crate::render::get::policies(cluster, namespace),
        };
        if listing.is_empty() {
            eprintln!("No resources found.");
        } else {
            print!("{listing}");
        }
        input.answered_partially("list")?;
        return Ok(0);
    }
    let mut rows: Vec<&Workload> = cluster
        .workloads
        .iter()
        .filter(|w| match args.what {
            GetWhat::Vms => w.kind.is_vm(),
            GetWhat::Pods => w.kind == WorkloadKind::Pod,
            GetWhat::Workloads | GetWhat::Nodes | GetWhat::Policies => true,
        })
        .filter(|w| namespace.is_none_or(|ns| w.namespace == ns))
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name, a.kind).cmp(&(&b.namespace, &b.name, b.kind)));
    let columns = crate::render::get::Columns {
        namespace: namespace.is_none(),
        kind: args.what == GetWhat::Workloads,
        admin: !cluster.admin_policies.is_empty(),
        replicas: rows.iter().any(|w| w.kind.is_controller()),
    };
    if rows.is_empty() {
        eprintln!("No resources found.");
    } else {
        print!("{}", crate::render::get::workloads(cluster, &rows, columns));
    }
    input.answered_partially("list")?;
    Ok(0)
}
