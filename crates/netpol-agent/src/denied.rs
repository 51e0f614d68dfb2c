//! The denied-flow log: every packet the node's table drops is also sent (rate-limited node-wide,
//! see `netpol_nft::DENIED_LOG_GROUP`) to an NFLOG group; a blocking thread here receives those
//! packets in the agent's network namespace and logs one structured event per distinct flow,
//! naming the workloads and the policies that deny it, as the reference evaluator explains the
//! flow against the cluster state the ruleset in force was compiled from.
//!
//! - One `INFO` event `denied flow` (target `netpol_agent::denied`) per flow (direction, source,
//!   destination, protocol, destination port); the same flow again within [`SUPPRESS_WINDOW`] is
//!   only counted, and when the window ends with repeats one `denied flow repeated` event gives
//!   their number.
//! - If the evaluator says the flow is allowed on the side the kernel denied it, that is a bug
//!   somewhere (compiler, kernel, or the state): it is logged at `ERROR` as `kernel denied a flow
//!   the policies allow`, never folded into the ordinary line. A record whose chain is not in the
//!   ruleset compiled from the current state came from an older ruleset (the state changed while
//!   the packet was queued) and is logged at `WARN` instead.
//! - Packets from other programs logging to the group (a prefix that is not netpol's) and
//!   malformed messages are counted, not logged.
//!
//! The explanation itself is [`crate::explain`]'s; which chains the ruleset in force has is
//! `netpol_nft`'s to say ([`netpol_nft::Ruleset::denied_chain`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netpol_core::{Direction, EvalOptions};
use netpol_dataplane::{NflogRecord, NflogSocket, NflogStats};

pub use crate::explain::{protocol_name, Agreement, Explainer, Explanation};
use crate::metrics::Metrics;
use crate::reconcile::{self, SharedState};

/// How long repeats of a logged flow are only counted.
pub const SUPPRESS_WINDOW: Duration = Duration::from_secs(10);

/// How often the receiving thread looks at the stop flag and ends expired windows.
const TICK: Duration = Duration::from_millis(250);

/// Most flows tracked for suppression at once. The kernel lets at most a few hundred packets
/// through the rate limit per window, so this is only a guard.
const MAX_TRACKED: usize = 4096;

/// The running receiver; [`DeniedLog::stop`] ends it.
pub struct DeniedLog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DeniedLog {
    /// Opens the NFLOG group in `netns` and starts the receiving thread. An error (no
    /// `CAP_NET_ADMIN`, the group taken by another listener in that namespace) is returned for
    /// the caller to report; enforcement does not depend on it.
    pub fn start(
        netns: Option<&str>,
        opts: EvalOptions,
        state: SharedState,
        metrics: Arc<Metrics>,
    ) -> Result<DeniedLog, netpol_dataplane::DataplaneError> {
        let socket = NflogSocket::open(netns, netpol_nft::DENIED_LOG_GROUP)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("denied-flow-log".into())
            .spawn(move || receive(socket, flag, Logger::new(opts, state, metrics)))
            .map_err(|e| netpol_dataplane::DataplaneError::Io {
                context: "starting the denied-flow log thread".into(),
                source: e,
            })?;
        Ok(DeniedLog {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (at most about one `TICK`).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DeniedLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn receive(mut socket: NflogSocket, stop: Arc<AtomicBool>, mut logger: Logger) {
    let mut seen = NflogStats::default();
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_timeout(Some(TICK)) {
            Ok(Some(record)) => logger.record(&record, Instant::now()),
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, "denied-flow log: receiving failed; stopping it");
                break;
            }
        }
        let stats = socket.stats();
        logger.socket_stats(seen, stats);
        seen = stats;
        logger.end_windows(Instant::now());
    }
    logger.end_windows(Instant::now() + SUPPRESS_WINDOW);
}

/// What identifies a flow for suppression: the source port is left out, so retries and new
/// connections of the same client to the same service count as repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FlowKey {
    direction: Direction,
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    dst_port: Option<u16>,
    icmp_type: Option<u8>,
}

struct Window {
    logged_at: Instant,
    repeats: u64,
}

fn direction_label(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

/// Turns records into events; owns the suppression windows and the explainer cache.
struct Logger {
    opts: EvalOptions,
    state: SharedState,
    metrics: Arc<Metrics>,
    windows: HashMap<FlowKey, Window>,
    explainer: Option<Explainer>,
}

impl Logger {
    fn new(opts: EvalOptions, state: SharedState, metrics: Arc<Metrics>) -> Self {
        Logger {
            opts,
            state,
            metrics,
            windows: HashMap::new(),
            explainer: None,
        }
    }

    fn socket_stats(&self, before: NflogStats, now: NflogStats) {
        let malformed = now.unparsable.saturating_sub(before.unparsable);
        if malformed > 0 {
            self.metrics.denied_log_ignored("malformed", malformed);
        }
        let overruns = now.overruns.saturating_sub(before.overruns);
        if overruns > 0 {
            self.metrics.denied_log_overruns.inc_by(overruns);
            tracing::warn!(
                overruns,
                "denied-flow log: the kernel dropped log messages (receive buffer full)"
            );
        }
    }

    fn record(&mut self, record: &NflogRecord, now: Instant) {
        if record.prefix == netpol_nft::SPOOFED_LOG_PREFIX {
            self.spoofed(record);
            return;
        }
        let Some((direction, chain)) = netpol_nft::parse_denied_log_prefix(&record.prefix) else {
            self.metrics.denied_log_ignored("foreign_prefix", 1);
            return;
        };
        let key = FlowKey {
            direction,
            src: record.src,
            dst: record.dst,
            protocol: record.protocol,
            dst_port: record.dst_port,
            icmp_type: record.icmp_type,
        };
        if let Some(w) = self.windows.get_mut(&key) {
            if now.duration_since(w.logged_at) < SUPPRESS_WINDOW {
                w.repeats += 1;
                self.metrics.denied_suppressed(direction_label(direction));
                return;
            }
        }
        self.end_windows(now);
        if self.windows.len() < MAX_TRACKED {
            self.windows.insert(
                key,
                Window {
                    logged_at: now,
                    repeats: 0,
                },
            );
        }
        self.log(direction, chain, record);
    }

    /// A packet the source-address check dropped: a workload sent from an address the node does
    /// not route back through its interface. No policy is involved, so there is nothing to
    /// explain; the table's log limit bounds how often this is logged.
    fn spoofed(&mut self, record: &NflogRecord) {
        self.metrics.denied_logged("spoofed");
        tracing::warn!(
            protocol = %protocol_name(record.protocol),
            src = %record.src,
            dst = %record.dst,
            dst_port = record.dst_port,
            "dropped a packet from a workload interface whose source address the workload does not \
             own (a guest using an address it was not given, or a neighbour's)"
        );
    }

    /// Ends every window older than [`SUPPRESS_WINDOW`] at `now`, reporting its repeats.
    fn end_windows(&mut self, now: Instant) {
        self.windows.retain(|k, w| {
            if now.duration_since(w.logged_at) < SUPPRESS_WINDOW {
                return true;
            }
            if w.repeats > 0 {
                tracing::info!(
                    direction = direction_label(k.direction),
                    protocol = %protocol_name(k.protocol),
                    src = %k.src,
                    dst = %k.dst,
                    dst_port = k.dst_port,
                    icmp_type = k.icmp_type,
                    repeats = w.repeats,
                    window_seconds = SUPPRESS_WINDOW.as_secs(),
                    "denied flow repeated"
                );
            }
            false
        });
    }

    fn log(&mut self, direction: Direction, chain: &str, record: &NflogRecord) {
        let status = reconcile::status(&self.state);
        let ruleset = status.enforced_ruleset;
        let explanation = match status.enforced_cluster {
            Some(cluster) => {
                let fresh = match &self.explainer {
                    Some(e) => !Arc::ptr_eq(e.cluster(), &cluster),
                    None => true,
                };
                if fresh {
                    self.explainer = Some(Explainer::new(cluster));
                }
                self.explainer
                    .as_ref()
                    .map(|e| e.explain(self.opts, direction, record))
            }
            None => None,
        };
        let explanation = explanation.unwrap_or_else(|| Explanation {
            src_workload: "unknown".into(),
            dst_workload: "unknown".into(),
            policies: Vec::new(),
            reason: "this agent has not enforced a ruleset yet (a table left by an earlier run?)"
                .into(),
            agreement: Agreement::Unknown,
        });
        let d = direction_label(direction);
        // A drop by an admin tier's Deny rule: its prefix names the rule (`cnp/NAME[N]`).
        let admin_rule = ruleset
            .as_deref()
            .and_then(|r| r.denied_chain(direction, chain))
            .and_then(|c| c.admin_rule.map(|a| a.label()))
            .unwrap_or_default();
        let policies = explanation.policies.join(", ");
        let protocol = protocol_name(record.protocol);
        macro_rules! event {
            ($level:ident, $message:literal, $evaluator:literal) => {
                tracing::$level!(
                    direction = d,
                    protocol = %protocol,
                    src = %record.src,
                    src_port = record.src_port,
                    dst = %record.dst,
                    dst_port = record.dst_port,
                    icmp_type = record.icmp_type,
                    src_workload = %explanation.src_workload,
                    dst_workload = %explanation.dst_workload,
                    policies = %policies,
                    reason = %explanation.reason,
                    chain = chain,
                    admin_rule = %admin_rule,
                    evaluator = $evaluator,
                    $message
                )
            };
        }
        match explanation.agreement {
            Agreement::Denied => event!(info, "denied flow", "denied"),
            Agreement::Unknown => event!(info, "denied flow", "unknown"),
            Agreement::Allowed if chain_is_current(ruleset.as_deref(), direction, chain) => {
                self.metrics.denied_disagreement(d);
                event!(error, "kernel denied a flow the policies allow", "allowed")
            }
            Agreement::Allowed => event!(
                warn,
                "denied flow from an older ruleset (the state changed since)",
                "allowed"
            ),
        }
        self.metrics.denied_logged(d);
    }
}

/// Whether `chain` is an identity chain of the ruleset in force, i.e. the dropping rule belongs to
/// the ruleset the explanation was made against. Without a known ruleset it is assumed current,
/// so that a disagreement is reported loudly rather than hidden.
fn chain_is_current(
    ruleset: Option<&netpol_nft::Ruleset>,
    direction: Direction,
    chain: &str,
) -> bool {
    ruleset.is_none_or(|r| r.denied_chain(direction, chain).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::tests::{cluster, record};
    use netpol_core::Cluster;

    #[test]
    fn repeats_within_the_window_are_counted_then_reported_once() {
        let metrics = Arc::new(Metrics::new());
        let state = SharedState::default();
        reconcile_set(&state, cluster());
        let mut logger = Logger::new(EvalOptions::default(), state, metrics.clone());
        let t0 = Instant::now();
        let r = record("10.80.0.1", "10.80.0.2", 6, Some(81));
        logger.record(&r, t0);
        logger.record(&r, t0 + Duration::from_secs(1));
        logger.record(&r, t0 + Duration::from_secs(2));
        // Another port is another flow.
        logger.record(&record("10.80.0.1", "10.80.0.2", 6, Some(82)), t0);
        let text = metrics.encode();
        assert!(
            text.contains(r#"netpol_denied_flows_logged_total{direction="ingress"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"netpol_denied_flow_repeats_suppressed_total{direction="ingress"} 2"#),
            "{text}"
        );
        assert_eq!(logger.windows.len(), 2);
        logger.end_windows(t0 + SUPPRESS_WINDOW);
        assert!(logger.windows.is_empty());
        // After the window the flow is logged in full again.
        logger.record(&r, t0 + SUPPRESS_WINDOW + Duration::from_secs(1));
        assert!(metrics
            .encode()
            .contains(r#"netpol_denied_flows_logged_total{direction="ingress"} 3"#));
        // Someone else's prefix is counted, not logged.
        let mut foreign = r.clone();
        foreign.prefix = "ulogd".into();
        logger.record(&foreign, t0);
        assert!(metrics
            .encode()
            .contains(r#"netpol_denied_log_ignored_records_total{reason="foreign_prefix"} 1"#));
        // The source check's drops are logged as such, not taken for someone else's.
        let mut spoofed = r.clone();
        spoofed.prefix = netpol_nft::SPOOFED_LOG_PREFIX.into();
        logger.record(&spoofed, t0);
        let text = metrics.encode();
        assert!(
            text.contains(r#"netpol_denied_flows_logged_total{direction="spoofed"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"reason="foreign_prefix"} 1"#), "{text}");
    }

    #[test]
    fn only_a_chain_of_the_ruleset_in_force_makes_a_disagreement() {
        let ruleset = netpol_nft::compile(&cluster(), EvalOptions::default(), "n1").unwrap();
        let chain = ruleset
            .denied_chains()
            .find(|c| c.direction == Direction::Ingress)
            .unwrap()
            .chain
            .to_string();
        assert!(chain_is_current(Some(&ruleset), Direction::Ingress, &chain));
        // A record from a chain an earlier ruleset had.
        assert!(!chain_is_current(
            Some(&ruleset),
            Direction::Ingress,
            "in_00000000"
        ));
        // Nothing known to compare with: reported, not hidden.
        assert!(chain_is_current(None, Direction::Ingress, "in_00000000"));
    }

    fn reconcile_set(state: &SharedState, cluster: Arc<Cluster>) {
        state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .enforced_cluster = Some(cluster);
    }
}
