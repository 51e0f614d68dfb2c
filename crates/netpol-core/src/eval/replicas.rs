//! A flow from one replica of a workload to another (two Pods of one Deployment, two instances of
//! one StatefulSet...). In Kubernetes that is an ordinary pod-to-pod flow: the egress of the one
//! and the ingress of the other must both allow it, and the admin tiers apply as to any pair.
//! Only an instance reaching its *own* address is exempt ([`super::evaluate`] with one workload
//! on both ends).
//!
//! Both ends are the workload: its labels, namespace and named ports (against which a named port
//! resolves). Its addresses: netpol does not tell its replicas' addresses apart (ipBlocks are
//! matched against a workload's first address of each family, in every fast path too), so both
//! ends use its address of the flow's family unless the caller pins them.

use std::net::IpAddr;

use super::{evaluate_flow, Endpoint, FlowKind, Verdict};
use crate::model::{Cluster, EvalOptions, Protocol};

/// Evaluates a flow from one replica of `workload` (an index into [`Cluster::workloads`]) to
/// another, over the family of its first address. The answer is the pair's whatever the workload's
/// instances say; [`crate::model::Workload::has_replicas`] tells whether such a flow exists.
pub fn evaluate_replicas(
    cluster: &Cluster,
    opts: EvalOptions,
    workload: usize,
    protocol: Protocol,
    port: u16,
) -> Verdict {
    evaluate_replicas_at(cluster, opts, workload, None, None, protocol, port)
}

/// Like [`evaluate_replicas`], with the source replica's address `src` and the destination
/// replica's `dst` given exactly (`Some`); an end left `None` uses the workload's first address
/// of the other end's family (of its first address, when neither is given).
pub fn evaluate_replicas_at(
    cluster: &Cluster,
    opts: EvalOptions,
    workload: usize,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    protocol: Protocol,
    port: u16,
) -> Verdict {
    let end = Endpoint::Workload(workload);
    evaluate_flow(
        cluster,
        opts,
        (&end, src),
        (&end, dst),
        (protocol, port),
        FlowKind::Replicas,
    )
}
