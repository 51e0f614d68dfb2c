//! The real collaborators: the `netpol-nft` compiler and the `netpol-dataplane` kernel access
//! (plus the `netpol-k8s` loader, see [`K8sLoader`]).
//!
//! The kernel is reached only through `netpol_dataplane::nft`, and only for the table
//! `netpol_nft` names ([`netpol_nft::FAMILY`], [`netpol_nft::TABLE`]); what the kernel lists back
//! is read by `netpol_nft` ([`netpol_nft::CounterReading`]), not here.

use std::collections::BTreeSet;
use std::sync::Mutex;

use netpol_core::{Cluster, EvalOptions};
use netpol_dataplane::nft::{self, Drift, Fingerprint, Listing};
use netpol_nft::{CounterReading, FAMILY, TABLE};

use crate::reconcile::{Compiled, Compiler, Enforcer, StepError};

/// Above this many set elements the drift check compares chains and rules only. Measured with the
/// agent_scale bench (33k elements, 2.4 MB script): a full listing takes ~1 s of CPU, after every
/// apply and at every drift check, while the terse one takes a fraction of that.
const FULL_LISTING_MAX_ELEMENTS: usize = 10_000;

/// `netpol_nft::compile_with_ct_mark`.
pub struct NftCompiler {
    opts: EvalOptions,
    ct_mark_bits: netpol_nft::CtMarkBits,
}

impl NftCompiler {
    /// A compiler using `opts` and the default conntrack mark range for every compile.
    pub fn new(opts: EvalOptions) -> Self {
        NftCompiler::with_ct_mark_bits(opts, netpol_nft::CtMarkBits::DEFAULT)
    }

    /// A compiler using `opts` and the conntrack mark range `ct_mark_bits` for every compile.
    pub fn with_ct_mark_bits(opts: EvalOptions, ct_mark_bits: netpol_nft::CtMarkBits) -> Self {
        NftCompiler { opts, ct_mark_bits }
    }
}

impl Compiler for NftCompiler {
    fn compile(&self, cluster: &Cluster, node: &str) -> Result<Compiled, StepError> {
        let ruleset = netpol_nft::compile_with_ct_mark(cluster, self.opts, node, self.ct_mark_bits)
            .map_err(|e| StepError(e.to_string()))?;
        Ok(Compiled {
            local_workloads: ruleset.summary.local_workloads.len(),
            total_workloads: cluster.workloads.len(),
            policies: cluster.policies.len(),
            counters: ruleset.policy_counters().to_vec(),
            elements: ruleset.summary.total_elements,
            text: ruleset.text.clone(),
            ruleset: Some(std::sync::Arc::new(ruleset)),
        })
    }
}

/// The `inet netpol` table in one network namespace (`None`: the agent's own).
///
/// The first apply, drift repairs and retries after a failure replace the whole table, declaring
/// its counters with the values the kernel held (so a replacement does not restart them); a
/// change from a ruleset this enforcer applied and verified itself is an incremental transaction
/// ([`netpol_nft::update_script`]), falling back to the full replace if the kernel refuses it.
///
/// Every listing taken after an apply is checked against the *whole* ruleset in force before it
/// becomes the reference of the drift check: it must hold exactly the ruleset's objects with
/// every chain's rules ([`netpol_nft::Ruleset::listing_mismatch`]), and after an incremental
/// update every object the update did not touch must be listed exactly as in the verified
/// listing before it ([`netpol_nft::unchanged_objects_differ`]). So a table flushed (or otherwise
/// changed) behind the agent's back is found at the next apply or drift check, whichever comes
/// first, even when an update applied cleanly on top of it; until a listing is verified, every
/// apply replaces the whole table.
pub struct KernelEnforcer {
    netns: Option<String>,
    /// The last listing verified to be the whole ruleset in force.
    fingerprint: Mutex<Option<Fingerprint>>,
    /// Applied, listing not yet taken: how to take and check it.
    pending: Mutex<Option<Pending>>,
    /// The ruleset in the kernel, when the last apply succeeded and was a `netpol-nft` ruleset.
    applied: Mutex<Option<std::sync::Arc<netpol_nft::Ruleset>>>,
}

/// What [`KernelEnforcer::settle`] checks the listing after an apply against.
struct Pending {
    listing: Listing,
    /// After an incremental update: the verified listing before it and the objects it touched.
    update: Option<(Fingerprint, BTreeSet<String>)>,
}

impl KernelEnforcer {
    /// An enforcer of `table inet netpol` in the named namespace (`None`: the agent's own).
    pub fn new(netns: Option<String>) -> Self {
        KernelEnforcer {
            netns,
            fingerprint: Mutex::new(None),
            pending: Mutex::new(None),
            applied: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Fingerprint>> {
        self.fingerprint.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_applied(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<std::sync::Arc<netpol_nft::Ruleset>>> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tries the incremental transaction from the verified table of the ruleset in the kernel;
    /// `None` when there is none to try or the kernel refused it (then nothing changed), else
    /// the verified listing it started from and the objects it touched.
    fn try_update(&self, compiled: &Compiled) -> Option<(Fingerprint, BTreeSet<String>)> {
        let new = compiled.ruleset.as_ref()?;
        let old = self.lock_applied().clone()?;
        // Only from a table verified to be the whole old ruleset.
        let before = self.lock().clone()?;
        // The same ruleset again is a repair or a retry: only a full replace restores it.
        if std::sync::Arc::ptr_eq(&old, new) || *old == **new {
            return None;
        }
        let script = netpol_nft::update_script(&old, new)?;
        let touched = netpol_nft::update_touches(&old, new)?;
        match nft::apply(self.netns.as_deref(), &script) {
            Ok(()) => Some((before, touched)),
            Err(error) => {
                tracing::warn!(%error, "incremental update refused; replacing the whole table");
                None
            }
        }
    }

    /// The full script of `compiled`, its counters declared with the values the kernel holds now
    /// (so the replacement does not restart them); the plain script when they cannot be read.
    fn full_script(&self, compiled: &Compiled) -> String {
        let Some(ruleset) = &compiled.ruleset else {
            return compiled.text.clone();
        };
        match self.counters() {
            Ok(readings) if readings.is_empty() => compiled.text.clone(),
            Ok(readings) => ruleset.text_carrying_counters(&readings),
            Err(error) => {
                tracing::warn!(%error, "cannot read the counters before replacing the table; they restart at zero");
                compiled.text.clone()
            }
        }
    }
}

fn err(e: netpol_dataplane::DataplaneError) -> StepError {
    StepError(e.to_string())
}

impl Enforcer for KernelEnforcer {
    fn apply(&self, compiled: &Compiled) -> Result<(), StepError> {
        // The rules are in force when the transaction returns; the listing for drift detection
        // is taken by `settle`, after the reconcile loop has recorded the enforcement.
        let started = std::time::Instant::now();
        let update = self.try_update(compiled);
        let incremental = update.is_some();
        if !incremental {
            let script = self.full_script(compiled);
            // Whatever is in the kernel now is not known to be the last ruleset any more until
            // this succeeds.
            *self.lock_applied() = None;
            *self.lock() = None;
            nft::apply(self.netns.as_deref(), &script).map_err(err)?;
        }
        tracing::info!(incremental, transaction = ?started.elapsed(), "nft transaction");
        let listing = if compiled.elements > FULL_LISTING_MAX_ELEMENTS {
            Listing::Terse
        } else {
            Listing::Full
        };
        // Not verified until `settle` has checked the listing.
        *self.lock() = None;
        *self.lock_pending() = Some(Pending { listing, update });
        *self.lock_applied() = compiled.ruleset.clone();
        Ok(())
    }

    fn settle(&self) -> Result<Option<String>, StepError> {
        let Some(pending) = self.lock_pending().take() else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        let fp = nft::fingerprint(self.netns.as_deref(), FAMILY, TABLE, pending.listing)
            .map_err(err)?
            .ok_or_else(|| StepError("the table is missing right after it was applied".into()))?;
        tracing::debug!(listing = ?started.elapsed(), "fingerprint taken");
        let applied = self.lock_applied().clone();
        if let Some(why) = applied.and_then(|r| r.listing_mismatch(fp.text())) {
            return Ok(Some(why));
        }
        if let Some((before, touched)) = &pending.update {
            let differ = netpol_nft::unchanged_objects_differ(before.text(), fp.text(), touched);
            if !differ.is_empty() {
                return Ok(Some(format!(
                    "{} objects the update did not touch changed behind the agent's back (first: {})",
                    differ.len(),
                    differ[0]
                )));
            }
        }
        *self.lock() = Some(fp);
        Ok(None)
    }

    fn check_drift(&self) -> Result<Option<String>, StepError> {
        if let Some(description) = self.settle()? {
            return Ok(Some(description));
        }
        let Some(fp) = self.lock().clone() else {
            if self.lock_applied().is_some() {
                return Ok(Some("the table in force was never verified".into()));
            }
            return Ok(None);
        };
        match nft::verify(self.netns.as_deref(), &fp).map_err(err)? {
            Drift::InSync => Ok(None),
            Drift::Missing => Ok(Some("the table is gone".into())),
            Drift::Changed {
                only_expected,
                only_actual,
            } => Ok(Some(format!(
                "{} expected lines missing, {} unexpected lines (first missing: {:?})",
                only_expected.len(),
                only_actual.len(),
                only_expected.first()
            ))),
        }
    }

    fn counters(&self) -> Result<Vec<CounterReading>, StepError> {
        let Some(json) =
            nft::counters_json_text(self.netns.as_deref(), FAMILY, TABLE).map_err(err)?
        else {
            return Ok(Vec::new());
        };
        CounterReading::parse_listing(&json).map_err(|e| StepError(e.to_string()))
    }

    fn remove(&self) -> Result<(), StepError> {
        *self.lock_applied() = None;
        nft::delete_table(self.netns.as_deref(), FAMILY, TABLE).map_err(err)?;
        *self.lock() = None;
        *self.lock_pending() = None;
        Ok(())
    }
}

/// `netpol_k8s::load_str`: the same decoding, validation and defaulting as `netpol check`.
pub struct K8sLoader {
    opts: netpol_k8s::LoadOptions,
}

impl K8sLoader {
    /// Strict validation (unknown or duplicate fields reject the object), like `kubectl`'s default.
    pub fn new() -> Self {
        K8sLoader::with_options(netpol_k8s::LoadOptions::default())
    }

    /// A loader with the given decoding and validation options.
    pub fn with_options(opts: netpol_k8s::LoadOptions) -> Self {
        K8sLoader { opts }
    }
}

impl Default for K8sLoader {
    fn default() -> Self {
        K8sLoader::new()
    }
}

impl crate::store::ManifestLoader for K8sLoader {
    /// One text's objects as they are (`netpol_k8s::load_fragment`): what needs every object,
    /// VM folding and namespaces used but not defined, is the store's and the reconcile loop's
    /// (one text alone cannot know what another file or the API holds), so no text reports them.
    fn load(&self, name: &str, text: &str) -> crate::store::LoadOutcome {
        let loaded = netpol_k8s::load_fragment(name, text, &self.opts);
        let mut outcome = crate::store::LoadOutcome {
            cluster: loaded.cluster,
            ..Default::default()
        };
        for d in loaded.diagnostics {
            match d.severity {
                netpol_k8s::Severity::Error => outcome.errors.push(d.to_string()),
                netpol_k8s::Severity::Warning => outcome.warnings.push(d.to_string()),
                netpol_k8s::Severity::Note => {}
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_using_a_namespace_another_file_defines_loads_without_warnings() {
        use crate::store::ManifestLoader;
        let text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
            metadata: {name: deny, namespace: elsewhere}\nspec: {podSelector: {}}\n";
        let outcome = K8sLoader::new().load("p.yaml", text);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
        assert_eq!(outcome.cluster.policies.len(), 1);
        // Other warnings still come through.
        let text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
            metadata: {name: deny, namespace: elsewhere}\n\
            spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.1/8}}]}]}\n";
        let outcome = K8sLoader::new().load("p.yaml", text);
        assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    }
}
