//! netpol-dataplane: the only crate that touches the kernel. It applies nftables rulesets
//! atomically, reads them back, and builds the lab (network namespaces, veths, listeners, probes).
//!
//! It knows nothing about policies: it takes nft text and plain descriptions of hosts.
//!
//! - [`nft`]: every nftables call (apply, check, list, delete, drift detection), optionally inside
//!   a named network namespace.
//! - [`netns`]: named network namespaces with a per-process name prefix, Drop guards and stale
//!   cleanup.
//! - [`nflog`]: receiving packets that nftables rules log to an NFLOG group (the denied-flow
//!   log), inside a named network namespace.
//! - [`datapath`]: what the node's datapath lets the table see (workloads on a bridge that
//!   does not hand IP packets to netfilter).
//! - [`lab`]: nodes as router namespaces, VMs/pods and external hosts as namespaces with real
//!   addresses, listeners and TCP/UDP/SCTP probes.

mod cmd;
pub mod datapath;
mod error;
pub mod lab;
mod listeners;
pub mod netns;
pub mod nflog;
pub mod nft;
mod probe;
pub mod sctp;

pub use error::DataplaneError;
pub use lab::{HairpinService, Lab, LabHost, LabSpec, ProbeProtocol, ProbeRequest};
pub use netns::{cleanup_own, cleanup_stale, install_interrupt_cleanup, Netns};
pub use nflog::{NflogRecord, NflogSocket, NflogStats};
pub use nft::{Drift, Fingerprint, Listing};
