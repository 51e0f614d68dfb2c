//! netpol-lab: builds labs from a cluster, loads each node's ruleset, probes, compares.
//!
//! A lab is one network namespace per node (a router enforcing that node's compiled nftables
//! ruleset) and per workload (its real addresses), plus external hosts; `netpol-dataplane` does
//! the kernel side. This crate turns a [`netpol_core::Cluster`] into such a lab
//! ([`ClusterLab::build`]), compiles and loads every node's ruleset ([`ClusterLab::enforce`]),
//! probes every ordered pair with real packets (over each family of a dual-stack pair), the
//! nodes to and from their workloads and every workload's hairpin through its own Service, and
//! compares each verdict with the analyzer's truth table ([`ClusterLab::probe_matrix`]). Results are data ([`ProbeReport`], [`LabInventory`],
//! [`demo::DemoReport`]); rendering them as text is the caller's job.
//!
//! - [`preflight`]: the privileges and tools a lab needs, named when missing.
//! - [`cluster_lab`]: the lab of a cluster and its operations.
//! - [`placement`]: the addresses the lab adds: nodes' (their Node object's or synthetic ones),
//!   and Service addresses for hairpin.
//! - [`report`]: what a probe run found, as `Serialize` data.
//! - [`demo`]: the user's page walked step by step on a lab.
//!
//! Cleanup: dropping a [`ClusterLab`] (also on every error path) removes its namespaces, and with
//! them every ruleset it loaded. Destructors do not run on a signal, so a program that builds labs
//! calls [`install_interrupt_cleanup`] once at start-up.

pub mod cluster_lab;
pub mod demo;
mod error;
pub mod placement;
pub mod preflight;
pub mod report;

pub use cluster_lab::{
    node_host_name, ClusterLab, HostEntry, LabInventory, LabPlan, NodeEntry, ServiceEntry,
    DEFAULT_NODE,
};
pub use error::LabError;
pub use netpol_dataplane::{install_interrupt_cleanup, DataplaneError};
pub use preflight::preflight;
pub use report::{
    method_note, ExternalProbe, FamilyMatrices, FamilyPair, HairpinProbe, Mismatch, NodeFlow,
    NodeProbe, PairMatrix, ProbeReport,
};
