//! netpol-core: the pure semantics of Kubernetes `networking.k8s.io/v1` NetworkPolicy for pods and
//! virtual machines.
//!
//! This crate holds the model (namespaces, workloads, policies), label-selector matching, the
//! evaluation of one flow with provenance (which policy and rule decided), and the bulk analyses
//! (truth tables, connectivity maps). It does no I/O, knows no Kubernetes wire types and has no
//! async code: every other crate feeds it plain values.

pub mod analysis;
mod bits;
pub mod eval;
pub mod exposure;
pub mod hash;
pub mod lint;
pub mod model;
pub mod policy_set;
pub mod render;
pub mod synth;

pub use analysis::{Analyzer, ConnectivityMap, TruthTable};
pub use eval::{
    evaluate, evaluate_hairpin, evaluate_hairpin_at, evaluate_replicas, evaluate_replicas_at,
    explain, flow_addresses, AdminRuleMatch, DirectionVerdict, Endpoint, TierOutcome, TierStep,
    Verdict,
};
pub use model::*;
pub use policy_set::PolicySet;
