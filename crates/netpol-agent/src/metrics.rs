//! The agent's Prometheus metrics (text exposition through `prometheus-client`).

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::reconcile::PolicyCounterValue;

/// The label set of a metric family: `(name, value)` pairs.
pub(crate) type Labels = Vec<(String, String)>;

/// One label.
pub(crate) fn label(k: &str, v: &str) -> Labels {
    vec![(k.to_string(), v.to_string())]
}

/// Every metric the agent exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Syncs by result: `applied`, `unchanged`, `apply_failed`, `compile_failed`.
    pub syncs: Family<Labels, Counter>,
    /// Time taken by each sync, in seconds.
    pub sync_duration: Histogram,
    /// Unix time of the last sync that left the intended ruleset in the kernel.
    pub last_success: Gauge<f64, AtomicU64>,
    /// Workloads by scope: `local` (on this node) and `total`.
    pub workloads: Family<Labels, Gauge>,
    /// NetworkPolicies known.
    pub policies: Gauge,
    /// Policies isolating at least one local workload (they have a kernel counter).
    pub local_policies: Gauge,
    /// Elements in every set and map of the applied table.
    pub ruleset_elements: Gauge,
    /// nft transactions that failed (the previous ruleset stays in force).
    pub apply_errors: Counter,
    /// Times the kernel's table differed from what was applied and was re-applied.
    pub drift_repairs: Counter,
    /// Drift checks that could not read the kernel's table.
    pub drift_check_errors: Counter,
    /// Errors loading source content, by source.
    pub source_errors: Family<Labels, Counter>,
    /// Rescans of a manifest directory, by source.
    pub source_rescans: Family<Labels, Counter>,
    /// Files (or objects) whose current content does not load and whose last good content is
    /// in force, by source.
    pub source_failing: Family<Labels, Gauge>,
    /// 1 while a source may be out of date (its list or watch failing or stuck), by source.
    pub source_stale: Family<Labels, Gauge>,
    /// Objects whose current version does not convert, enforced as their last good version,
    /// by source.
    pub source_last_good_objects: Family<Labels, Gauge>,
    /// From the first unsynced change of a source to the rules being in the kernel.
    pub enforcement_delay: Histogram,
    /// 1 when a ruleset was applied and the last sync succeeded, 0 otherwise.
    pub ready: Gauge,
    /// Denied flows logged (one per distinct flow and suppression window), by direction.
    pub denied_flows_logged: Family<Labels, Counter>,
    /// Denied packets of an already logged flow, only counted, by direction.
    pub denied_flow_repeats_suppressed: Family<Labels, Counter>,
    /// Denied flows the evaluator allows on the side the kernel denied them, by direction.
    pub denied_flow_disagreements: Family<Labels, Counter>,
    /// NFLOG records not logged, by reason: `malformed` (unparsable message) or
    /// `foreign_prefix` (another program's log rule).
    pub denied_log_ignored_records: Family<Labels, Counter>,
    /// Times the kernel dropped log messages because the agent's receive buffer was full.
    pub denied_log_overruns: Counter,
    counters: std::sync::Arc<PolicyCounters>,
    /// Local workload addresses whose traffic bypasses the table (not enforced).
    pub datapath_bypassed_addresses: Gauge,
    /// The table's own counters: packets crossing it, packets dropped by reason.
    pub table: crate::table_metrics::TableMetrics,
}

/// The per-policy kernel counters, refreshed before each scrape, exported as counters that never
/// go down while the agent runs.
///
/// The kernel's values survive a full replacement of the table (the enforcer declares the new
/// counters with the old values) and the agent's restarts (the table stays), but a counter can
/// still restart at zero in the kernel: the table deleted behind the agent's back, or a reading
/// taken just before a replacement that could not carry the values. Whenever a reading is below
/// the previous one, the previous one is added to an offset kept per series, so the exported
/// value continues from where it was. A series absent from a reading that lists other counters
/// (its policy no longer isolates a local workload) is dropped with its offset; when it comes
/// back it starts again from the kernel's value, which Prometheus treats as a counter reset, as
/// it does for a restart of the agent after the table was deleted (`--cleanup-on-exit`). An
/// empty reading (the table missing until the agent repairs it) keeps every offset.
#[derive(Debug, Default)]
pub struct PolicyCounters {
    values: Mutex<Vec<PolicyCounterValue>>,
    /// By (policy, counter name): the last kernel reading and the offsets of earlier resets.
    carried: Mutex<std::collections::BTreeMap<(String, String), CarriedCounter>>,
}

/// One series of [`PolicyCounters`]: the kernel's last values and what resets took away.
#[derive(Clone, Copy, Debug, Default)]
struct CarriedCounter {
    packets: u64,
    bytes: u64,
    packets_offset: u64,
    bytes_offset: u64,
}

impl PolicyCounters {
    /// Turns kernel readings into exported values that never decrease (see the type's docs).
    fn carry(&self, values: Vec<PolicyCounterValue>) -> Vec<PolicyCounterValue> {
        let mut carried = self.carried.lock().unwrap_or_else(|p| p.into_inner());
        if values.is_empty() {
            return values;
        }
        let mut next = std::collections::BTreeMap::new();
        let out = values
            .into_iter()
            .map(|v| {
                let key = (v.policy.clone(), v.counter.clone());
                let mut c = carried.get(&key).copied().unwrap_or_default();
                if v.packets < c.packets || v.bytes < c.bytes {
                    c.packets_offset = c.packets_offset.saturating_add(c.packets);
                    c.bytes_offset = c.bytes_offset.saturating_add(c.bytes);
                }
                c.packets = v.packets;
                c.bytes = v.bytes;
                next.insert(key, c);
                PolicyCounterValue {
                    packets: v.packets.saturating_add(c.packets_offset),
                    bytes: v.bytes.saturating_add(c.bytes_offset),
                    ..v
                }
            })
            .collect();
        *carried = next;
        out
    }
}

impl Collector for PolicyCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let values = self
            .values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        {
            let proto = ConstCounter::new(0u64);
            let mut m = encoder.encode_descriptor(
                "netpol_policy_packets",
                "Packets whose verdict a policy decided (first packets of new connections), from the kernel's named counter; monotonic across table replacements",
                None,
                proto.metric_type(),
            )?;
            for v in &values {
                let labels = vec![
                    ("policy".to_string(), v.policy.clone()),
                    ("counter".to_string(), v.counter.clone()),
                ];
                ConstCounter::new(v.packets).encode(m.encode_family(&labels)?)?;
            }
        }
        let proto = ConstCounter::new(0u64);
        let mut m = encoder.encode_descriptor(
            "netpol_policy_bytes",
            "Bytes counted by a policy's kernel counter; monotonic across table replacements",
            None,
            proto.metric_type(),
        )?;
        for v in &values {
            let labels = vec![
                ("policy".to_string(), v.policy.clone()),
                ("counter".to_string(), v.counter.clone()),
            ];
            ConstCounter::new(v.bytes).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric registered at zero, ready to be encoded. Registration order is exposition
    /// order, so the groups below keep the order the metrics have always been listed in.
    pub fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::default(),
            syncs: Family::<Labels, Counter>::default(),
            sync_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            last_success: Gauge::<f64, AtomicU64>::default(),
            workloads: Family::<Labels, Gauge>::default(),
            policies: Gauge::default(),
            local_policies: Gauge::default(),
            ruleset_elements: Gauge::default(),
            apply_errors: Counter::default(),
            drift_repairs: Counter::default(),
            drift_check_errors: Counter::default(),
            source_errors: Family::<Labels, Counter>::default(),
            source_rescans: Family::<Labels, Counter>::default(),
            source_failing: Family::<Labels, Gauge>::default(),
            source_stale: Family::<Labels, Gauge>::default(),
            source_last_good_objects: Family::<Labels, Gauge>::default(),
            enforcement_delay: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            ready: Gauge::default(),
            denied_flows_logged: Family::<Labels, Counter>::default(),
            denied_flow_repeats_suppressed: Family::<Labels, Counter>::default(),
            denied_flow_disagreements: Family::<Labels, Counter>::default(),
            denied_log_ignored_records: Family::<Labels, Counter>::default(),
            denied_log_overruns: Counter::default(),
            counters: std::sync::Arc::new(PolicyCounters::default()),
            datapath_bypassed_addresses: Gauge::default(),
            table: Default::default(),
        };
        metrics.register_sync_metrics();
        metrics.register_kernel_metrics();
        metrics.table.register(&mut metrics.registry);
        metrics.register_source_metrics();
        metrics.register_denied_log_metrics();
        metrics
            .registry
            .register_collector(Box::new(metrics.counters.clone()));
        metrics
    }

    /// What each sync did and the cluster and table it left in force.
    fn register_sync_metrics(&mut self) {
        let r = &mut self.registry;
        r.register("netpol_syncs", "Syncs by result", self.syncs.clone());
        r.register(
            "netpol_sync_duration_seconds",
            "Time to assemble, compile and (if changed) apply the ruleset",
            self.sync_duration.clone(),
        );
        r.register(
            "netpol_last_successful_sync_timestamp_seconds",
            "Unix time of the last sync that left the intended ruleset in the kernel",
            self.last_success.clone(),
        );
        r.register(
            "netpol_workloads",
            "Workloads known (scope=total) and on this node (scope=local)",
            self.workloads.clone(),
        );
        r.register(
            "netpol_policies",
            "NetworkPolicies known",
            self.policies.clone(),
        );
        r.register(
            "netpol_local_policies",
            "NetworkPolicies isolating at least one workload of this node",
            self.local_policies.clone(),
        );
        r.register(
            "netpol_ruleset_elements",
            "Elements in all sets and maps of the applied table",
            self.ruleset_elements.clone(),
        );
    }

    /// Failures and repairs of the table in the kernel.
    fn register_kernel_metrics(&mut self) {
        let r = &mut self.registry;
        r.register(
            "netpol_apply_errors",
            "Failed nft transactions (the previous ruleset stays in force)",
            self.apply_errors.clone(),
        );
        r.register(
            "netpol_drift_repairs",
            "Times the kernel's table differed from what was applied and was re-applied",
            self.drift_repairs.clone(),
        );
        r.register(
            "netpol_datapath_bypassed_addresses",
            "Local workload addresses whose traffic bypasses the table (a bridge without \
             br_netfilter): not enforced",
            self.datapath_bypassed_addresses.clone(),
        );
        r.register(
            "netpol_drift_check_errors",
            "Drift checks that could not read the kernel's table",
            self.drift_check_errors.clone(),
        );
    }

    /// How the sources load, how fast their changes are enforced, and readiness.
    fn register_source_metrics(&mut self) {
        let r = &mut self.registry;
        r.register(
            "netpol_source_errors",
            "Source contents that failed to load (last good content kept)",
            self.source_errors.clone(),
        );
        r.register(
            "netpol_source_rescans",
            "Rescans of a manifest directory (one per debounced batch of file changes)",
            self.source_rescans.clone(),
        );
        r.register(
            "netpol_source_failing",
            "Files or objects whose current content does not load right now",
            self.source_failing.clone(),
        );
        r.register(
            "netpol_source_stale",
            "1 while a Kubernetes kind's list or watch fails or is stuck (its last state stays in force)",
            self.source_stale.clone(),
        );
        r.register(
            "netpol_source_last_good_objects",
            "Objects whose current version does not convert, enforced as their last good version",
            self.source_last_good_objects.clone(),
        );
        r.register(
            "netpol_enforcement_delay_seconds",
            "Delay from a source change being seen to the resulting rules being in the kernel",
            self.enforcement_delay.clone(),
        );
        r.register(
            "netpol_ready",
            "1 when the first sync was applied and the last sync succeeded",
            self.ready.clone(),
        );
    }

    /// The denied-flow log.
    fn register_denied_log_metrics(&mut self) {
        let r = &mut self.registry;
        r.register(
            "netpol_denied_flows_logged",
            "Denied flows logged (once per flow and suppression window), by direction",
            self.denied_flows_logged.clone(),
        );
        r.register(
            "netpol_denied_flow_repeats_suppressed",
            "Logged denied packets of a flow already logged in its window, by direction",
            self.denied_flow_repeats_suppressed.clone(),
        );
        r.register(
            "netpol_denied_flow_disagreements",
            "Flows the kernel denied although the policies allow them, by direction",
            self.denied_flow_disagreements.clone(),
        );
        r.register(
            "netpol_denied_log_ignored_records",
            "NFLOG records not logged: malformed, or another program's prefix",
            self.denied_log_ignored_records.clone(),
        );
        r.register(
            "netpol_denied_log_overruns",
            "Times the kernel dropped denied-packet log messages (receive buffer full)",
            self.denied_log_overruns.clone(),
        );
    }

    /// Counts one sync with its `result` label.
    pub fn sync(&self, result: &str) {
        self.syncs.get_or_create(&label("result", result)).inc();
    }

    /// Sets the workload gauges: on this node and in the whole cluster.
    pub fn set_workloads(&self, local: usize, total: usize) {
        self.workloads
            .get_or_create(&label("scope", "local"))
            .set(local as i64);
        self.workloads
            .get_or_create(&label("scope", "total"))
            .set(total as i64);
    }

    /// `direction` is `ingress` or `egress`.
    pub fn denied_logged(&self, direction: &'static str) {
        self.denied_flows_logged
            .get_or_create(&label("direction", direction))
            .inc();
    }

    /// Counts a denied packet of an already logged flow (`direction` is `ingress` or `egress`).
    pub fn denied_suppressed(&self, direction: &'static str) {
        self.denied_flow_repeats_suppressed
            .get_or_create(&label("direction", direction))
            .inc();
    }

    /// Counts a denied flow the evaluator would allow (`direction` is `ingress` or `egress`).
    pub fn denied_disagreement(&self, direction: &'static str) {
        self.denied_flow_disagreements
            .get_or_create(&label("direction", direction))
            .inc();
    }

    /// `reason` is `malformed` or `foreign_prefix`.
    pub fn denied_log_ignored(&self, reason: &'static str, n: u64) {
        self.denied_log_ignored_records
            .get_or_create(&label("reason", reason))
            .inc_by(n);
    }

    /// Counts a load error of the named source.
    pub fn source_error(&self, source: &str) {
        self.source_errors
            .get_or_create(&label("source", source))
            .inc();
    }

    /// Counts a rescan of the named manifest directory.
    pub fn rescan(&self, source: &str) {
        self.source_rescans
            .get_or_create(&label("source", source))
            .inc();
    }

    /// Sets how many files or objects of the named source currently fail to load.
    pub fn set_failing(&self, source: &str, n: i64) {
        self.source_failing
            .get_or_create(&label("source", source))
            .set(n);
    }

    /// Sets whether the named source may be out of date (list or watch failing or stuck).
    pub fn set_source_stale(&self, source: &str, stale: bool) {
        self.source_stale
            .get_or_create(&label("source", source))
            .set(i64::from(stale));
    }

    /// Sets how many objects of the named source are enforced as their last good version.
    pub fn set_last_good(&self, source: &str, n: usize) {
        self.source_last_good_objects
            .get_or_create(&label("source", source))
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Replaces the per-policy kernel counter values exported on the next scrape; a value below
    /// the previous reading of its series is taken as a restart of the kernel's counter and
    /// continued from the previous value (see [`PolicyCounters`]).
    pub fn set_policy_counters(&self, values: Vec<PolicyCounterValue>) {
        let values = self.counters.carry(values);
        *self
            .counters
            .values
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = values;
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%error, "cannot encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_counters_appear_with_their_policy_label() {
        let m = Metrics::new();
        m.set_policy_counters(vec![PolicyCounterValue {
            policy: "ns/allow".into(),
            counter: "pol_ns_allow".into(),
            packets: 7,
            bytes: 420,
        }]);
        m.sync("applied");
        let text = m.encode();
        assert!(
            text.contains(
                r#"netpol_policy_packets_total{policy="ns/allow",counter="pol_ns_allow"} 7"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"netpol_policy_bytes_total{policy="ns/allow",counter="pol_ns_allow"} 420"#
        ));
        assert!(text.contains(r#"netpol_syncs_total{result="applied"} 1"#));
    }

    #[test]
    fn a_kernel_counter_that_restarts_is_exported_continuing_from_its_last_value() {
        let m = Metrics::new();
        let reading = |policy: &str, packets, bytes| PolicyCounterValue {
            policy: policy.into(),
            counter: format!("pol_{policy}"),
            packets,
            bytes,
        };
        let exported = |m: &Metrics, policy: &str| -> (u64, u64) {
            let v = m.counters.values.lock().unwrap();
            let v = v.iter().find(|v| v.policy == policy).unwrap();
            (v.packets, v.bytes)
        };
        m.set_policy_counters(vec![reading("a", 10, 600), reading("b", 1, 60)]);
        m.set_policy_counters(vec![reading("a", 12, 720), reading("b", 2, 120)]);
        assert_eq!(exported(&m, "a"), (12, 720));
        // The table was replaced without carrying the values: a restarts from zero.
        m.set_policy_counters(vec![reading("a", 3, 180), reading("b", 2, 120)]);
        assert_eq!(exported(&m, "a"), (15, 900));
        assert_eq!(exported(&m, "b"), (2, 120));
        m.set_policy_counters(vec![reading("a", 4, 240), reading("b", 2, 120)]);
        assert_eq!(exported(&m, "a"), (16, 960));
        // Twice, with the table missing in between.
        m.set_policy_counters(vec![]);
        m.set_policy_counters(vec![reading("a", 0, 0)]);
        assert_eq!(exported(&m, "a"), (16, 960));
        let text = m.encode();
        assert!(
            text.contains(r#"netpol_policy_packets_total{policy="a",counter="pol_a"} 16"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"policy="b""#),
            "b no longer isolates anything"
        );
    }
}
