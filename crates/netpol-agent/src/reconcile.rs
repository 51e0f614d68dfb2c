//! The reconcile loop: level-triggered, coalesced, atomic, retried, drift-repaired.
//!
//! A sync always starts from the whole current state (never from the change that woke it), so
//! missed or merged notifications cannot leave the kernel behind. Nothing is applied before every
//! source finished its initial list. The kernel is only ever changed by one transaction on the
//! `inet netpol` table (a full replacement, or an incremental update from a table verified to be
//! the previous ruleset); a failed transaction leaves the previous table in force and is retried
//! with exponential backoff.
//!
//! Drift repair compares the kernel with the whole ruleset in force, not with what the last
//! update left: the table read back after every apply is checked by the enforcer
//! ([`Enforcer::settle`]), and one that is not the whole ruleset (flushed before an update that
//! applied cleanly on top of it, say) is replaced in full at once; the periodic drift check
//! ([`Enforcer::check_drift`]) catches what changes between applies.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netpol_core::Cluster;
use netpol_nft::{CounterReading, PolicyCounter};
use tokio::sync::watch;
use tokio::time::sleep_until;

use crate::metrics::Metrics;
use crate::store::Store;
use crate::AgentConfig;

/// A compile or kernel step that failed, with a message for logs and `/readyz`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StepError(pub String);

/// A node's ruleset as the compiler produced it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compiled {
    /// The complete atomic nft script.
    pub text: String,
    /// Workloads on this node.
    pub local_workloads: usize,
    /// Workloads in the whole cluster.
    pub total_workloads: usize,
    /// NetworkPolicies in the whole cluster.
    pub policies: usize,
    /// Every policy with a counter object in the table, and that object's name.
    pub counters: Vec<PolicyCounter>,
    /// Elements in every set and map of the table.
    pub elements: usize,
    /// The compiler's full result, when it is `netpol-nft`'s: an opaque handle the kernel side
    /// hands to [`netpol_nft::update_script`] (to turn the applied table into this one with an
    /// incremental transaction instead of a full replace) and the denied-flow log asks which
    /// chains it has ([`netpol_nft::Ruleset::denied_chain`]).
    pub ruleset: Option<Arc<netpol_nft::Ruleset>>,
}

/// Compiles the whole cluster for one node.
pub trait Compiler: Send + Sync {
    /// Compiles `cluster` for the node called `node`; an error leaves the applied ruleset in force.
    fn compile(&self, cluster: &Cluster, node: &str) -> Result<Compiled, StepError>;
}

/// One named counter's value in the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyCounterValue {
    /// `namespace/name` of the policy the counter belongs to.
    pub policy: String,
    /// The counter object's name in the table.
    pub counter: String,
    /// Packets counted so far.
    pub packets: u64,
    /// Bytes counted so far.
    pub bytes: u64,
}

/// The kernel side: applies scripts atomically and reads them back.
pub trait Enforcer: Send + Sync {
    /// Applies the script as one transaction: the rules are in force when it returns.
    fn apply(&self, compiled: &Compiled) -> Result<(), StepError>;
    /// Records what the table looks like after the last apply (for [`Enforcer::check_drift`]);
    /// called after the enforcement has been recorded, so that reading the table back does not
    /// count as enforcement delay. `Ok(Some(description))` when the table read back is not the
    /// whole ruleset in force (drift: it is replaced in full); an error means it cannot be read.
    fn settle(&self) -> Result<Option<String>, StepError> {
        Ok(None)
    }
    /// `Ok(None)` when the table is what was last applied, `Ok(Some(description))` otherwise.
    fn check_drift(&self) -> Result<Option<String>, StepError>;
    /// The named counters of the table, as the kernel holds them now.
    fn counters(&self) -> Result<Vec<CounterReading>, StepError>;
    /// Deletes the table.
    fn remove(&self) -> Result<(), StepError>;
}

/// What `/readyz` and the counters endpoint need to know.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// Whether a ruleset has been applied since the agent started.
    pub first_applied: bool,
    /// Whether the last sync succeeded (compiled and, if needed, applied).
    pub last_ok: bool,
    /// Why the last sync failed; `None` after a success.
    pub last_error: Option<String>,
    /// Sources still doing their first listing (nothing is applied until they are done).
    pub waiting_for: Vec<String>,
    /// counter name -> policy key of the applied ruleset.
    pub counters: BTreeMap<String, String>,
    /// Syncs attempted, successful or not.
    pub syncs: u64,
    /// Rulesets applied to the kernel.
    pub applies: u64,
    /// The cluster state the ruleset in force was compiled from (for explaining what the
    /// kernel does, e.g. which policies denied a logged flow).
    pub enforced_cluster: Option<Arc<Cluster>>,
    /// The ruleset in force, compiled from `enforced_cluster` (when it is `netpol-nft`'s).
    pub enforced_ruleset: Option<Arc<netpol_nft::Ruleset>>,
}

impl Status {
    /// Ready for `/readyz`: a ruleset was applied and the last sync succeeded.
    pub fn ready(&self) -> bool {
        self.first_applied && self.last_ok
    }
}

/// The status shared between the reconciler and the HTTP endpoints.
pub type SharedState = Arc<Mutex<Status>>;

/// Reads the state, tolerating a poisoned lock (the data is plain values).
pub fn status(state: &SharedState) -> Status {
    state.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn update(state: &SharedState, f: impl FnOnce(&mut Status)) {
    f(&mut state.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The loop that turns store changes into compiled rulesets in the kernel, with retries and drift repair.
pub struct Reconciler {
    node: String,
    store: Store,
    compiler: Arc<dyn Compiler>,
    enforcer: Arc<dyn Enforcer>,
    metrics: Arc<Metrics>,
    state: SharedState,
    coalesce: Duration,
    drift_interval: Duration,
    retry_initial: Duration,
    retry_max: Duration,
    /// What is in the kernel (as far as the last successful apply knows).
    applied: Option<Compiled>,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// The oldest change not yet enforced.
    pending_since: Option<Instant>,
    /// Namespaces last reported as used but not defined.
    undefined_namespaces: Vec<String>,
}

enum Wake {
    Changed,
    Retry,
    Drift,
    Stop,
}

impl Reconciler {
    /// A reconciler for `config.node_name` reading `store`, not yet running.
    pub fn new(
        config: &AgentConfig,
        store: Store,
        compiler: Arc<dyn Compiler>,
        enforcer: Arc<dyn Enforcer>,
        metrics: Arc<Metrics>,
        state: SharedState,
    ) -> Self {
        Reconciler {
            node: config.node_name.clone(),
            store,
            compiler,
            enforcer,
            metrics,
            state,
            coalesce: config.coalesce_window,
            drift_interval: config.drift_interval,
            retry_initial: config.retry_initial,
            retry_max: config.retry_max,
            applied: None,
            retry_at: None,
            backoff: config.retry_initial,
            pending_since: None,
            undefined_namespaces: Vec::new(),
        }
    }

    /// Runs until `shutdown` turns true: syncs on every change, retries failures with backoff, repairs drift.
    pub async fn run(
        mut self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), crate::AgentError> {
        let mut changes = self.store.subscribe();
        // A change may have happened before we subscribed: start with a sync attempt.
        let mut wake = Wake::Changed;
        let mut next_drift = Instant::now() + self.drift_interval;
        let mut last_sync_end: Option<Instant> = None;
        loop {
            match wake {
                Wake::Stop => return Ok(()),
                Wake::Changed => {
                    // Coalesce as a rate limit: a change after a quiet period is synced at once
                    // (no added latency for a single edit); changes arriving within the window
                    // after a sync wait for the window's end and are handled by one sync.
                    if let Some(last) = last_sync_end {
                        let due = last + self.coalesce;
                        tokio::select! {
                            _ = sleep_until(due.into()) => {}
                            _ = crate::stopped(&mut shutdown) => return Ok(()),
                        }
                    }
                    changes.borrow_and_update();
                    self.sync(false).await;
                    last_sync_end = Some(Instant::now());
                }
                Wake::Retry => {
                    self.retry_at = None;
                    self.sync(true).await;
                }
                Wake::Drift => {
                    next_drift = Instant::now() + self.drift_interval;
                    self.check_drift().await;
                }
            }
            let retry_at = self.retry_at;
            wake = tokio::select! {
                r = changes.changed() => match r { Ok(()) => Wake::Changed, Err(_) => Wake::Stop },
                _ = async { match retry_at { Some(t) => sleep_until(t.into()).await, None => std::future::pending().await } } => Wake::Retry,
                _ = sleep_until(next_drift.into()) => Wake::Drift,
                _ = crate::stopped(&mut shutdown) => Wake::Stop,
            };
        }
    }

    async fn sync(&mut self, force_apply: bool) {
        if !self.store.all_ready() {
            let waiting = self.store.not_ready();
            tracing::info!(?waiting, "not applying: sources still listing");
            update(&self.state, |s| s.waiting_for = waiting);
            return;
        }
        let started = Instant::now();
        let (cluster, since) = self.store.snapshot();
        self.report_undefined_namespaces(&cluster);
        let assembled = started.elapsed();
        if let Some(since) = since {
            self.pending_since = Some(self.pending_since.map_or(since, |p| p.min(since)));
        }
        let compiler = self.compiler.clone();
        let node = self.node.clone();
        let input = cluster.clone();
        let compiled = tokio::task::spawn_blocking(move || compiler.compile(&input, &node))
            .await
            .unwrap_or_else(|e| Err(StepError(format!("compiler task failed: {e}"))));
        let compile_took = started.elapsed() - assembled;
        let compiled = match compiled {
            Ok(c) => c,
            Err(error) => {
                tracing::error!(%error, "cannot compile the ruleset; the previous one stays in force");
                self.metrics.sync("compile_failed");
                self.finish(started, Err(error.0));
                return;
            }
        };
        self.metrics
            .set_workloads(compiled.local_workloads, compiled.total_workloads);
        self.metrics.policies.set(compiled.policies as i64);
        if !force_apply
            && self
                .applied
                .as_ref()
                .is_some_and(|a| a.text == compiled.text)
        {
            tracing::debug!(?assembled, ?compile_took, "ruleset unchanged");
            self.publish_enforced(cluster);
            self.metrics.sync("unchanged");
            self.enforced(started);
            self.finish(started, Ok(()));
            return;
        }
        tracing::debug!(?assembled, ?compile_took, "compiled");
        match self.apply(compiled).await {
            Ok(()) => {
                self.publish_enforced(cluster);
                self.metrics.sync("applied");
                self.enforced(started);
                self.finish(started, Ok(()));
                self.settle().await;
            }
            Err(error) => {
                self.metrics.sync("apply_failed");
                self.finish(started, Err(error));
            }
        }
    }

    async fn apply(&mut self, compiled: Compiled) -> Result<(), String> {
        let enforcer = self.enforcer.clone();
        let c = compiled.clone();
        let apply_started = Instant::now();
        let result = tokio::task::spawn_blocking(move || enforcer.apply(&c))
            .await
            .unwrap_or_else(|e| Err(StepError(format!("apply task failed: {e}"))));
        let apply_took = apply_started.elapsed();
        match result {
            Ok(()) => {
                tracing::info!(
                    local_workloads = compiled.local_workloads,
                    policies = compiled.policies,
                    elements = compiled.elements,
                    bytes = compiled.text.len(),
                    ?apply_took,
                    "ruleset applied"
                );
                self.metrics.ruleset_elements.set(compiled.elements as i64);
                self.metrics
                    .local_policies
                    .set(compiled.counters.len() as i64);
                let counters = compiled
                    .counters
                    .iter()
                    .map(|c| (c.counter.clone(), c.key.clone()))
                    .collect();
                update(&self.state, |s| {
                    s.counters = counters;
                    s.applies += 1;
                });
                self.applied = Some(compiled);
                self.retry_at = None;
                self.backoff = self.retry_initial;
                Ok(())
            }
            Err(error) => {
                self.metrics.apply_errors.inc();
                let delay = self.schedule_retry();
                tracing::error!(%error, retry_in = ?delay, "apply failed; the previous ruleset stays in force");
                Err(error.0)
            }
        }
    }

    /// Warns when the namespaces that objects use but no source defines change: they get only
    /// their `kubernetes.io/metadata.name` label, which namespaceSelectors may not expect.
    fn report_undefined_namespaces(&mut self, cluster: &Cluster) {
        let undefined: Vec<String> = cluster
            .namespaces
            .iter()
            .filter(|n| n.implicit)
            .map(|n| n.name.clone())
            .collect();
        if undefined != self.undefined_namespaces {
            if !undefined.is_empty() {
                tracing::warn!(
                    namespaces = ?undefined,
                    "namespaces used but not defined by any source: assuming each exists with only its kubernetes.io/metadata.name label"
                );
            }
            self.undefined_namespaces = undefined;
        }
    }

    /// Records, as one change, the state the ruleset in force was compiled from and that ruleset.
    fn publish_enforced(&self, cluster: Arc<Cluster>) {
        let ruleset = self.applied.as_ref().and_then(|a| a.ruleset.clone());
        update(&self.state, |s| {
            s.enforced_cluster = Some(cluster);
            s.enforced_ruleset = ruleset;
        });
    }

    /// Schedules a full re-apply after the current backoff, doubles the backoff (up to
    /// `retry_max`) and returns the delay.
    fn schedule_retry(&mut self) -> Duration {
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(self.retry_max);
        self.retry_at = Some(Instant::now() + delay);
        delay
    }

    /// Lets the enforcer read back what it applied. A table that is not the whole ruleset in
    /// force (flushed before an update applied on top of it, say) is drift: replaced in full at
    /// once, and if the replacement does not read back right either, retried with the failed-apply
    /// backoff, as is a table that cannot be read back at all.
    async fn settle(&mut self) {
        for attempt in 0..2 {
            let enforcer = self.enforcer.clone();
            let result = tokio::task::spawn_blocking(move || enforcer.settle())
                .await
                .unwrap_or_else(|e| Err(StepError(format!("settle task failed: {e}"))));
            match result {
                Ok(None) => return,
                Ok(Some(description)) if attempt == 0 => {
                    tracing::warn!(%description, "the table read back is not the whole ruleset in force; replacing it");
                    if !self.repair().await {
                        return;
                    }
                }
                Ok(Some(description)) => {
                    let delay = self.schedule_retry();
                    tracing::error!(%description, retry_in = ?delay, "the replaced table does not read back as the ruleset either");
                    return;
                }
                Err(error) => {
                    self.metrics.drift_check_errors.inc();
                    let delay = self.schedule_retry();
                    tracing::warn!(%error, retry_in = ?delay, "cannot read back the applied table; applying it again");
                    return;
                }
            }
        }
    }

    /// Applies the ruleset in force again in full (the enforcer replaces the whole table for the
    /// ruleset it last applied) and counts the repair; false when there is nothing to apply or
    /// the apply failed (a retry is scheduled then).
    async fn repair(&mut self) -> bool {
        let Some(applied) = self.applied.clone() else {
            return false;
        };
        let started = Instant::now();
        match self.apply(applied).await {
            Ok(()) => {
                self.metrics.drift_repairs.inc();
                self.finish(started, Ok(()));
                true
            }
            Err(error) => {
                self.finish(started, Err(error));
                false
            }
        }
    }

    fn enforced(&mut self, started: Instant) {
        if let Some(since) = self.pending_since.take() {
            self.metrics
                .enforcement_delay
                .observe(since.elapsed().as_secs_f64());
        }
        let _ = started;
    }

    fn finish(&mut self, started: Instant, result: Result<(), String>) {
        self.metrics
            .sync_duration
            .observe(started.elapsed().as_secs_f64());
        let ok = result.is_ok();
        if ok {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.metrics.last_success.set(now);
        }
        let applied = self.applied.is_some();
        update(&self.state, |s| {
            s.syncs += 1;
            s.waiting_for.clear();
            s.first_applied = applied;
            s.last_ok = ok;
            s.last_error = result.err();
        });
        self.metrics
            .ready
            .set(i64::from(status(&self.state).ready()));
    }

    async fn check_drift(&mut self) {
        if self.applied.is_none() {
            return;
        }
        if self.retry_at.is_some() {
            return; // a retry will apply anyway
        }
        let enforcer = self.enforcer.clone();
        let drift = tokio::task::spawn_blocking(move || enforcer.check_drift())
            .await
            .unwrap_or_else(|e| Err(StepError(format!("drift task failed: {e}"))));
        match drift {
            Ok(None) => tracing::debug!("no drift"),
            Ok(Some(description)) => {
                tracing::warn!(%description, "the kernel's table drifted from what was applied; repairing");
                if self.repair().await {
                    self.settle().await;
                }
            }
            Err(error) => {
                self.metrics.drift_check_errors.inc();
                tracing::warn!(%error, "cannot check the kernel's table for drift");
            }
        }
    }
}
