//! netpol-test-support: shared builders, generators and privilege checks for the workspace's
//! tests.
//!
//! Dev-only (`publish = false`, only ever a `[dev-dependencies]` entry). Its parts:
//! - [`build`]: short builders of the `netpol-core` model (namespaces, pods and VMs with labels,
//!   addresses, node and named ports, policies with selectors, peers and ports, a cluster from
//!   parts), re-exported at the crate root so `use netpol_test_support::*;` brings them in;
//! - [`admin`]: the admin tiers' policies, rules, peers and ports, Nodes for `nodes` peers, and
//!   [`oracle_verdict`]/[`oracle_allows`] asking the oracle about a flow between named ends;
//! - [`admin_set::synthetic_admin_policies`]: the benchmarks' set of admin policies;
//! - [`arb`]: the one proptest generator of random small clusters, whose size and shape each
//!   property test chooses with an [`arb::ClusterShape`];
//! - [`lint::without_redundancies`]: a cluster without what lint reports redundant;
//! - [`require_root`]: the check privileged tests start with; they fail, never skip, without root;
//! - [`ip_in`], [`sysctl_in`]: setting up a test's own network namespaces;
//! - [`interesting_ports`]: the ports where a property test's answers can change;
//! - `fake_apiserver` (feature `fake-apiserver`): the FAKE Kubernetes API server the agent's and
//!   the CLI's tests read from (no real one can run in tests).
//!
//! The builders panic on malformed literals (an address or CIDR that does not parse): they only
//! ever take constants written in a test, where a panic is the clearest report.

pub mod admin;
pub mod admin_set;
pub mod arb;
pub mod build;
#[cfg(feature = "fake-apiserver")]
pub mod fake_apiserver;
pub mod lint;
mod ports;
mod root;
mod shell;

pub use admin::*;
pub use build::*;
pub use ports::interesting_ports;
pub use root::require_root;
pub use shell::{ip_in, sysctl_in};
