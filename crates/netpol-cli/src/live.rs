//! Reading a live cluster, the kubectl way: the kubeconfig and context kubectl would use, one list
//! per kind (netpol-agent's [`snapshot`](netpol_agent::kube_source::snapshot)), the namespace of
//! `-n`, or of the context, or every one with `-A`. What could not be read is said on stderr
//! and makes the command exit 2 after it answered with the rest.

use std::time::Duration;

use anyhow::{anyhow, Result};
use netpol_agent::kube_source::snapshot::{self, Namespaces, Snapshot, CLI_KINDS};
use netpol_agent::kube_source::{connect, ClusterAccess};

use crate::cli::LiveArgs;

/// The longest wait for one answer of the API server (connecting, discovery, a list page).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What was read from the cluster.
pub struct LiveRead {
    /// The objects, as texts for the loader.
    pub snapshot: Snapshot,
    /// The one namespace namespaced objects were read from; `None` with `-A`.
    pub namespace: Option<String>,
    /// Where `kubectl apply` would put a namespaced object without `metadata.namespace`: `-n`,
    /// else the context's namespace (else `default`), also with `-A`.
    pub apply_namespace: String,
}

impl LiveRead {
    /// Some kinds could not be read (said on stderr already).
    pub fn incomplete(&self) -> bool {
        !self.snapshot.errors.is_empty()
    }
}

/// Reads the cluster `args` names. Notes (CRDs not installed, one namespace only) and the kinds
/// that could not be read go to stderr; an error only when nothing at all could be read (no
/// kubeconfig, an unknown context, the server unreachable).
pub fn read(args: &LiveArgs) -> Result<LiveRead> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(read_async(args))
}

async fn read_async(args: &LiveArgs) -> Result<LiveRead> {
    let access = ClusterAccess {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        request_timeout: REQUEST_TIMEOUT,
        user_agent: format!("netpol/{}", env!("CARGO_PKG_VERSION")),
    };
    let connection = connect(&access).await?;
    let namespaces = match (&args.namespace, args.all_namespaces) {
        (_, true) => Namespaces::All,
        (Some(ns), false) => Namespaces::One(ns.clone()),
        (None, false) => Namespaces::One(connection.default_namespace.clone()),
    };
    let snapshot =
        snapshot::snapshot(&connection.client, CLI_KINDS, &namespaces, REQUEST_TIMEOUT).await;
    if let Some(why) = &snapshot.unreachable {
        return Err(anyhow!(
            "cannot read the cluster at {}: {why}",
            connection.server
        ));
    }
    if snapshot.kinds_read == 0 {
        let mut reasons: Vec<String> = snapshot.errors.iter().map(|e| e.to_string()).collect();
        reasons.dedup();
        return Err(anyhow!(
            "cannot read the cluster at {}:\n  {}",
            connection.server,
            reasons.join("\n  ")
        ));
    }
    if !snapshot.not_served.is_empty() {
        let kinds: Vec<String> = snapshot
            .not_served
            .iter()
            .map(|k| format!("{}.{}", k.plural, k.group))
            .collect();
        eprintln!(
            "netpol: note: not served by this cluster (CRD not installed), so none read: {}",
            kinds.join(", ")
        );
    }
    for error in &snapshot.errors {
        eprintln!("netpol: error: {error}");
    }
    let apply_namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| connection.default_namespace.clone());
    let namespace = match namespaces {
        Namespaces::All => None,
        Namespaces::One(ns) => {
            let why = if args.namespace.is_some() {
                "-n"
            } else {
                "the context's namespace; -n NS reads another"
            };
            eprintln!(
                "netpol: note: only namespace {ns} was read ({why}; -A reads every one): \
                 workloads and policies of other namespaces are unknown, and so are peers there"
            );
            Some(ns)
        }
    };
    Ok(LiveRead {
        snapshot,
        namespace,
        apply_namespace,
    })
}
