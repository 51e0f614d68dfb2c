//! Loading manifests for a command: the shared flags, diagnostics on stderr, the exit code they
//! imply.

use anyhow::{anyhow, Result};
use netpol_core::{Cluster, EvalOptions};
use netpol_k8s::{LoadOptions, ValidationMode};

use crate::cli::{InputArgs, Validate};

/// A loaded cluster plus whether any object was rejected (which makes the command exit 2 after it
/// has done its job with everything else).
pub struct Input {
    pub cluster: Cluster,
    pub opts: EvalOptions,
    pub had_errors: bool,
}

/// Loads every path, prints every diagnostic to stderr, and keeps going with what loaded.
pub fn load(args: &InputArgs) -> Input {
    let validation = match args.validate {
        Validate::Strict => ValidationMode::Strict,
        Validate::Warn => ValidationMode::Warn,
        Validate::Ignore => ValidationMode::Ignore,
    };
    let loaded = netpol_k8s::load_paths(&args.paths, &LoadOptions { validation });
    for diagnostic in &loaded.diagnostics {
        eprintln!("{diagnostic}");
    }
    let had_errors = loaded.has_errors();
    let mut cluster = loaded.cluster;
    for (name, ip) in &args.resolve {
        cluster
            .resolved_names
            .entry(name.clone())
            .or_default()
            .push(*ip);
    }
    Input {
        cluster,
        opts: EvalOptions {
            ipblock_matches_workloads: args.ipblock_matches_workloads,
        },
        had_errors,
    }
}

impl Input {
    /// For commands that answered with what loaded: exit 2 after the answer when anything was
    /// rejected. `what` names the answer ("verdict", "matrix", ...).
    pub fn answered_partially(&self, what: &str) -> Result<()> {
        if self.had_errors {
            return Err(anyhow!(
                "some objects were rejected (see above); the {what} covers only what loaded"
            ));
        }
        Ok(())
    }

    /// For commands that enforce: refuse before doing anything when an object was rejected,
    /// because a partial cluster would enforce something else. `why` finishes the sentence.
    pub fn require_complete(&self, why: &str) -> Result<()> {
        if self.had_errors {
            return Err(anyhow!("some objects were rejected (see above): {why}"));
        }
        Ok(())
    }
}
