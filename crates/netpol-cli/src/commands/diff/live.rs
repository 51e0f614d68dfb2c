//! `netpol diff --live PATH...`: OLD is the live cluster, NEW the cluster once PATHs are applied
//! to it, as `kubectl diff` sees it: every object of PATHs replaces the live object of the same
//! kind, namespace and name, or is added; every other live object stays. So manifests of one app
//! compare against the whole cluster without the rest of it showing up as removed.
//!
//! A namespaced object of PATHs without `metadata.namespace` is where `kubectl apply` would put
//! it: in the namespace of `-n`, else the context's (else `default`), also with `-A`. When only
//! one namespace was read (`-n NS`, or the context's), objects of PATHs in another namespace are
//! an error (like `kubectl apply -n NS` with such objects): their namespace's live state is
//! unknown, so the diff would be wrong; `-A` reads every namespace.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use netpol_core::{AdminApi, Cluster, WorkloadKind};
use netpol_k8s::schema::{self, KnownKind};

use crate::cli::DiffArgs;
use crate::input::{self, Input, Read};
use crate::live;

/// An object's identity: what `kubectl apply` replaces (as far as the model keeps kinds apart).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ObjectId {
    Namespace(String),
    Node(String),
    Workload(WorkloadKind, String, String),
    Policy(String, String),
    Admin(AdminApi, String),
}

/// OLD (the live cluster) and NEW (it with PATHs applied).
pub fn sides(args: &DiffArgs) -> Result<(Input, Input)> {
    if args.paths.is_empty() {
        bail!("netpol diff --live needs the manifests about to be applied: PATH...");
    }
    if args.paths.iter().filter(|p| *p == Path::new("-")).count() > 1 {
        bail!("`-` (standard input) can be given once");
    }
    let options = input::load_options(args.validate);
    let manifests = manifest_texts(&args.paths)?;
    let live = live::read(&args.cluster)?;
    let applied = identities(&manifests, &options, &live.apply_namespace);
    if let Some(ns) = &live.namespace {
        outside_namespace(&applied, ns)?;
    }
    let old_loaded = live.snapshot.load(&options);
    let kept = live
        .snapshot
        .objects
        .iter()
        .filter(|o| live_id(&o.name).is_none_or(|id| !applied.contains(&id)))
        .map(|o| (o.name.as_str(), o.text.as_str()));
    let given = manifests.iter().map(|(n, t)| (n.as_str(), t.as_str()));
    let mut new_loaded =
        netpol_k8s::load_texts_in_namespace(kept.chain(given), &options, &live.apply_namespace);
    // The live objects NEW keeps were reported with OLD already.
    new_loaded
        .diagnostics
        .retain(|d| !old_loaded.diagnostics.contains(d));
    let file_args = super::input_args(args, Vec::new());
    let side = |loaded| Read {
        loaded,
        unread_kinds: live.incomplete(),
        namespace_read: live.namespace.clone(),
    };
    // A live object rejected is rejected in NEW too: said once, with OLD, whose error makes
    // the command exit 2 all the same.
    let old = Input::from_read(side(old_loaded), &file_args);
    let new = Input::from_read(side(new_loaded), &file_args);
    Ok((old, new))
}

/// The identities of the objects of `manifests`, each text loaded on its own and unfolded (a
/// folded Pod still replaces the live Pod of its name).
fn identities(
    manifests: &[(String, String)],
    options: &netpol_k8s::LoadOptions,
    namespace: &str,
) -> BTreeSet<ObjectId> {
    let mut ids = BTreeSet::new();
    for (name, text) in manifests {
        let fragment =
            netpol_k8s::load_fragment_in_namespace(name, text, options, namespace).cluster;
        ids.extend(ids_of(&fragment));
    }
    ids
}

fn ids_of(cluster: &Cluster) -> impl Iterator<Item = ObjectId> + '_ {
    let namespaces = cluster
        .namespaces
        .iter()
        .filter(|n| !n.implicit)
        .map(|n| ObjectId::Namespace(n.name.clone()));
    let nodes = cluster.nodes.iter().map(|n| ObjectId::Node(n.name.clone()));
    let workloads = cluster
        .workloads
        .iter()
        .map(|w| ObjectId::Workload(w.kind, w.namespace.clone(), w.name.clone()));
    let policies = cluster
        .policies
        .iter()
        .map(|p| ObjectId::Policy(p.namespace.clone(), p.name.clone()));
    let admin = cluster
        .admin_policies
        .iter()
        .map(|p| ObjectId::Admin(p.api, p.name.clone()));
    namespaces
        .chain(nodes)
        .chain(workloads)
        .chain(policies)
        .chain(admin)
}

/// The identity of a live object from its snapshot name (`Kind/ns/name` or `Kind/name`).
fn live_id(name: &str) -> Option<ObjectId> {
    let (kind, rest) = name.split_once('/')?;
    let kind = schema::by_kind(kind)?;
    let namespaced = || {
        rest.split_once('/')
            .map(|(ns, n)| (ns.to_string(), n.to_string()))
    };
    Some(match kind.id {
        KnownKind::Namespace => ObjectId::Namespace(rest.to_string()),
        KnownKind::Node => ObjectId::Node(rest.to_string()),
        KnownKind::NetworkPolicy => {
            let (ns, n) = namespaced()?;
            ObjectId::Policy(ns, n)
        }
        KnownKind::ClusterNetworkPolicy => {
            ObjectId::Admin(AdminApi::ClusterNetworkPolicy, rest.to_string())
        }
        KnownKind::AdminNetworkPolicy => {
            ObjectId::Admin(AdminApi::AdminNetworkPolicy, rest.to_string())
        }
        KnownKind::BaselineAdminNetworkPolicy => {
            ObjectId::Admin(AdminApi::BaselineAdminNetworkPolicy, rest.to_string())
        }
        KnownKind::Pod => workload(WorkloadKind::Pod, namespaced()?),
        KnownKind::VirtualMachine | KnownKind::KubevirtVirtualMachine => {
            workload(WorkloadKind::VirtualMachine, namespaced()?)
        }
        KnownKind::VirtualMachineInstance => {
            workload(WorkloadKind::VirtualMachineInstance, namespaced()?)
        }
        KnownKind::Controller(kind) => workload(kind, namespaced()?),
    })
}

fn workload(kind: WorkloadKind, (ns, name): (String, String)) -> ObjectId {
    ObjectId::Workload(kind, ns, name)
}

/// An error naming the objects of PATHs outside the one namespace read.
fn outside_namespace(applied: &BTreeSet<ObjectId>, read: &str) -> Result<()> {
    let outside: Vec<String> = applied
        .iter()
        .filter_map(|id| match id {
            ObjectId::Workload(_, ns, name) | ObjectId::Policy(ns, name) if ns != read => {
                Some(format!("{ns}/{name}"))
            }
            _ => None,
        })
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = outside.iter().take(5).map(String::as_str).collect();
    bail!(
        "only namespace {read} of the cluster was read, and PATHs have objects in other \
         namespaces ({}{}): their live state is unknown; read every namespace with -A, or the \
         right one with -n (an object without metadata.namespace is in -n's namespace, else the context's)",
        shown.join(", "),
        if outside.len() > shown.len() {
            format!(" and {} more", outside.len() - shown.len())
        } else {
            String::new()
        }
    )
}

/// The texts of PATHs, named by path, as `netpol_k8s::load_paths` picks them: a file named
/// itself, the `.yaml`, `.yml` and `.json` files under a directory (sorted, recursively), `-`
/// standard input.
fn manifest_texts(paths: &[PathBuf]) -> Result<Vec<(String, String)>> {
    let mut texts = Vec::new();
    for path in paths {
        if path == Path::new("-") {
            let text =
                std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?;
            texts.push(("-".to_string(), text));
            continue;
        }
        let mut files = Vec::new();
        collect(path, true, &mut files)?;
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            texts.push((file.display().to_string(), text));
        }
    }
    Ok(texts)
}

fn collect(path: &Path, named: bool, files: &mut Vec<PathBuf>) -> Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_dir() {
        let manifest = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        );
        if named || manifest {
            files.push(path.to_path_buf());
        }
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", path.display()))?;
    entries.sort();
    for entry in entries {
        collect(&entry, false, files)?;
    }
    Ok(())
}
