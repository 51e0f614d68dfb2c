//! Loading the input of a command: manifests (PATHs) or, with no PATH, the live cluster; the
//! shared flags, diagnostics on stderr, the exit code they imply.

use anyhow::{anyhow, bail, Result};
use netpol_core::{Cluster, EvalOptions};
use netpol_k8s::{LoadOptions, Loaded, ValidationMode};

use crate::cli::{InputArgs, Validate};
use crate::live;

/// A loaded cluster plus whether any object was rejected or any kind could not be read from
/// the cluster (either makes the command exit 2 after it has done its job with the rest).
pub struct Input {
    pub cluster: Cluster,
    pub opts: EvalOptions,
    pub had_errors: bool,
    /// Some kinds of the live cluster could not be read (said on stderr).
    pub unread_kinds: bool,
    /// The one namespace a live cluster's namespaced objects were read from (`None`: files, or
    /// `-A`).
    pub namespace_read: Option<String>,
}

/// What `-n`/`-A` mean with PATHs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceFlags {
    /// They are live-cluster flags: an error with PATHs.
    LiveOnly,
    /// The command filters its output by them (`get`): accepted with PATHs.
    Filter,
}

/// What was read, before its diagnostics are printed.
pub struct Read {
    pub loaded: Loaded,
    pub unread_kinds: bool,
    pub namespace_read: Option<String>,
}

/// Loads the manifests of `args.paths` or, with none, the live cluster; the loader's
/// diagnostics are left to the caller. PATHs together with `--kubeconfig` or `--context` (or
/// `-n`/`-A`, unless `namespaces` is [`NamespaceFlags::Filter`]) are an error: the command
/// would read one and silently ignore the other.
pub fn read(args: &InputArgs, options: &LoadOptions, namespaces: NamespaceFlags) -> Result<Read> {
    if args.paths.is_empty() {
        let live = live::read(&args.live)?;
        return Ok(Read {
            loaded: live.snapshot.load(options),
            unread_kinds: live.incomplete(),
            namespace_read: live.namespace,
        });
    }
    let mut given = args.live.given();
    if namespaces == NamespaceFlags::Filter {
        given.retain(|flag| !matches!(*flag, "--namespace" | "--all-namespaces"));
    }
    if !given.is_empty() {
        bail!(
            "{} read a live cluster, and PATHs were given too: give either PATHs (manifests) or \
             the live cluster's flags, not both",
            given.join(", ")
        );
    }
    Ok(Read {
        loaded: netpol_k8s::load_paths(&args.paths, options),
        unread_kinds: false,
        namespace_read: None,
    })
}

/// The load options of `--validate`.
pub fn load_options(validate: Validate) -> LoadOptions {
    let validation = match validate {
        Validate::Strict => ValidationMode::Strict,
        Validate::Warn => ValidationMode::Warn,
        Validate::Ignore => ValidationMode::Ignore,
    };
    LoadOptions { validation }
}

/// Loads the input, prints every diagnostic to stderr, and keeps going with what loaded.
pub fn load(args: &InputArgs) -> Result<Input> {
    load_with(args, NamespaceFlags::LiveOnly)
}

/// [`load`], saying what `-n`/`-A` mean with PATHs.
pub fn load_with(args: &InputArgs, namespaces: NamespaceFlags) -> Result<Input> {
    let read = read(args, &load_options(args.validate), namespaces)?;
    Ok(Input::from_read(read, args))
}

impl Input {
    /// Prints the diagnostics of `read` and adds `--resolve`'s names.
    pub fn from_read(read: Read, args: &InputArgs) -> Input {
        for diagnostic in &read.loaded.diagnostics {
            eprintln!("{diagnostic}");
        }
        let had_errors = read.loaded.has_errors();
        let mut cluster = read.loaded.cluster;
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
            unread_kinds: read.unread_kinds,
            namespace_read: read.namespace_read,
        }
    }

    /// For commands that answered with what loaded: exit 2 after the answer when anything was
    /// rejected or could not be read. `what` names the answer ("verdict", "matrix", ...).
    pub fn answered_partially(&self, what: &str) -> Result<()> {
        partial_answer(self.had_errors, self.unread_kinds, what)
    }

    /// For commands that enforce: refuse before doing anything when an object was rejected, a
    /// kind could not be read or only one namespace of a live cluster was read, because a
    /// partial cluster would enforce something else. `why` finishes the sentence.
    pub fn require_complete(&self, why: &str) -> Result<()> {
        if let Some(ns) = &self.namespace_read {
            return Err(anyhow!(
                "only namespace {ns} of the cluster was read, so peers in the others are \
                 missing (-A reads every namespace): {why}"
            ));
        }
        if self.unread_kinds {
            return Err(anyhow!(
                "some kinds could not be read from the cluster (see above): {why}"
            ));
        }
        if self.had_errors {
            return Err(anyhow!("some objects were rejected (see above): {why}"));
        }
        Ok(())
    }
}

/// The error of an answer given with what loaded, if anything was missing.
pub fn partial_answer(had_errors: bool, unread_kinds: bool, what: &str) -> Result<()> {
    match (had_errors, unread_kinds) {
        (_, true) => Err(anyhow!(
            "some kinds could not be read from the cluster{} (see above); the {what} covers only what was read",
            if had_errors { " and some objects were rejected" } else { "" }
        )),
        (true, false) => Err(anyhow!(
            "some objects were rejected (see above); the {what} covers only what loaded"
        )),
        (false, false) => Ok(()),
    }
}
