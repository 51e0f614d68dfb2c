//! The errors of building, enforcing and probing a lab. Each message is one link of a chain:
//! the cause is the `source`, so `{:#}`-style printing reads "building the lab: lab: ...".
//! Kernel errors are boxed: they are large, and every lab call returns this type.

use netpol_core::Protocol;
use netpol_dataplane::DataplaneError;
use netpol_nft::CompileError;

/// Everything that can stop a lab run.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The process lacks root or a command-line tool the lab needs; each entry names one.
    #[error("the lab needs:\n  - {}", .0.join("\n  - "))]
    Missing(Vec<String>),
    /// The namespaces, links or listeners could not be set up (nothing is left behind).
    #[error("building the lab")]
    Build(#[source] Box<DataplaneError>),
    /// A node's ruleset could not be compiled; nothing of that enforce call was loaded.
    #[error("compiling the ruleset of node {node}")]
    Compile {
        /// The node whose ruleset failed.
        node: String,
        /// Why.
        #[source]
        source: CompileError,
    },
    /// The kernel refused a node's ruleset.
    #[error("loading the ruleset into node {node}")]
    Load {
        /// The node whose namespace refused it.
        node: String,
        /// Why.
        #[source]
        source: Box<DataplaneError>,
    },
    /// Two lab workloads have no address family in common, so no probe between them exists.
    #[error("{from} and {to} share no address family: they cannot talk")]
    NoCommonFamily {
        /// The source workload's key.
        from: String,
        /// The destination workload's key.
        to: String,
    },
    /// A probe could not be run at all (a blocked flow is a result, not this error).
    #[error("probing {from} -> {to} {protocol}/{port}")]
    Probe {
        /// The source host.
        from: String,
        /// The destination: a workload key or an address.
        to: String,
        /// The probed protocol.
        protocol: Protocol,
        /// The probed port.
        port: u16,
        /// Why.
        #[source]
        source: Box<DataplaneError>,
    },
    /// A workload key that is not in the lab's cluster.
    #[error("no workload {0} in the lab")]
    UnknownWorkload(String),
    /// A manifest bundled with the demo does not load; each entry is one diagnostic.
    #[error("{name} does not load:\n{}", .diagnostics.join("\n"))]
    Bundled {
        /// The file (or set of files) as the demo names it.
        name: String,
        /// The loader's diagnostics, as it prints them.
        diagnostics: Vec<String>,
    },
}
