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

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netpol_core::{
    evaluate, Cluster, Direction, DirectionVerdict, Endpoint, EvalOptions, Protocol,
};
use netpol_dataplane::{NflogRecord, NflogSocket, NflogStats};

use crate::metrics::Metrics;
use crate::reconcile::{self, SharedState};

/// How long repeats of a logged flow are only counted.
pub const SUPPRESS_WINDOW: Duration = Duration::from_secs(10);

/// How often the receiving thread looks at the stop flag and ends expired windows.
const TICK: Duration = Duration::from_millis(250);

/// Most flows tracked for suppression at once. The kernel lets at most a few hundred packets
/// through the rate limit per window, so this is only a guard.
const MAX_TRACKED: usize = 4096;

/// Longest `reason` text in an event.
const MAX_REASON: usize = 400;

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

    /// Stops the thread and waits for it (at most about one [`TICK`]).
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

/// How the evaluator's answer compares with the kernel's drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agreement {
    /// The evaluator denies it too, on the same side.
    Denied,
    /// The evaluator allows it on the side the kernel denied it.
    Allowed,
    /// The evaluator cannot say (no state yet, the local address is not a workload of it).
    Unknown,
}

/// A denied packet explained against a cluster state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// `namespace/name`, or `external`.
    pub src_workload: String,
    pub dst_workload: String,
    /// The policies isolating the denying side's workload in that direction.
    pub policies: Vec<String>,
    pub reason: String,
    pub agreement: Agreement,
}

/// Finds workloads by address in one cluster state.
pub struct Explainer {
    cluster: Arc<Cluster>,
    by_address: HashMap<IpAddr, usize>,
}

impl Explainer {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        let mut by_address = HashMap::new();
        for (i, w) in cluster.workloads.iter().enumerate() {
            for a in &w.addresses {
                by_address.entry(*a).or_insert(i);
            }
        }
        Explainer {
            cluster,
            by_address,
        }
    }

    fn endpoint(&self, address: IpAddr) -> Endpoint {
        match self.by_address.get(&address) {
            Some(i) => Endpoint::Workload(*i),
            None => Endpoint::External(address),
        }
    }

    fn describe(&self, e: &Endpoint) -> String {
        match e {
            Endpoint::Workload(_) => e.describe(&self.cluster),
            Endpoint::External(_) => "external".to_string(),
        }
    }

    /// Why the evaluator denies (or not) the flow of a packet the `direction` side dropped.
    ///
    /// TCP, UDP and SCTP are evaluated at their destination port. Any other protocol (ICMP, ...)
    /// is allowed by NetworkPolicy only through rules without `ports`, so it is evaluated as TCP
    /// and then counted as allowed only when an allowing rule has no ports.
    pub fn explain(
        &self,
        opts: EvalOptions,
        direction: Direction,
        record: &NflogRecord,
    ) -> Explanation {
        let src = self.endpoint(record.src);
        let dst = self.endpoint(record.dst);
        let mut out = Explanation {
            src_workload: self.describe(&src),
            dst_workload: self.describe(&dst),
            policies: Vec::new(),
            reason: String::new(),
            agreement: Agreement::Unknown,
        };
        let local = match direction {
            Direction::Ingress => &dst,
            Direction::Egress => &src,
        };
        if let Endpoint::External(a) = local {
            out.reason = format!(
                "{a} is not a workload of the enforced state, yet the {direction} chain dropped it"
            );
            return out;
        }
        let ported = match (record.protocol, record.dst_port) {
            (6, Some(p)) => Some((Protocol::Tcp, p)),
            (17, Some(p)) => Some((Protocol::Udp, p)),
            (132, Some(p)) => Some((Protocol::Sctp, p)),
            (6 | 17 | 132, None) => {
                out.reason = "no port in the logged bytes (a later fragment)".to_string();
                return out;
            }
            _ => None,
        };
        let (protocol, port) = ported.unwrap_or((Protocol::Tcp, 0));
        let verdict = evaluate(&self.cluster, opts, &src, &dst, protocol, port);
        let side = match direction {
            Direction::Ingress => verdict.ingress,
            Direction::Egress => verdict.egress,
        };
        let whose = match direction {
            Direction::Ingress => &out.dst_workload,
            Direction::Egress => &out.src_workload,
        }
        .clone();
        match side {
            DirectionVerdict::Denied {
                isolated_by,
                denials,
            } => {
                out.policies = isolated_by;
                out.agreement = Agreement::Denied;
                out.reason = if ported.is_none() {
                    format!(
                        "{}: no rule without ports admits this peer, and only such rules allow it",
                        protocol_name(record.protocol)
                    )
                } else if denials.is_empty() {
                    "no rule of the isolating policies allows it".to_string()
                } else {
                    denials
                        .iter()
                        .map(|d| format!("{}: {}", d.policy, d.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
            }
            DirectionVerdict::Allowed {
                isolated_by,
                allowed_by,
            } if ported.is_none() && allowed_by.iter().all(|m| m.port.is_some()) => {
                out.policies = isolated_by;
                out.agreement = Agreement::Denied;
                out.reason = format!(
                    "{}: only rules with ports admit this peer, and ports name TCP/UDP/SCTP only",
                    protocol_name(record.protocol)
                );
            }
            DirectionVerdict::Allowed {
                isolated_by,
                allowed_by,
            } => {
                out.policies = isolated_by;
                out.agreement = Agreement::Allowed;
                out.reason = match allowed_by.first() {
                    Some(m) => format!("allowed by {}: {}", m.policy, m.rule_text),
                    None => "allowed".to_string(),
                };
            }
            DirectionVerdict::Open => {
                out.agreement = Agreement::Allowed;
                out.reason = format!("no policy isolates {whose} for {direction}");
            }
            DirectionVerdict::SelfTraffic => {
                out.agreement = Agreement::Allowed;
                out.reason = "traffic of a workload to itself is always allowed".to_string();
            }
            DirectionVerdict::NotApplicable | DirectionVerdict::UnknownWorkload { .. } => {
                out.reason = format!("{whose} is not a workload of the enforced state");
            }
        }
        if out.reason.len() > MAX_REASON {
            let mut cut = MAX_REASON - 3;
            while !out.reason.is_char_boundary(cut) {
                cut -= 1;
            }
            out.reason.truncate(cut);
            out.reason.push_str("...");
        }
        out
    }
}

/// `TCP`, `UDP`, `SCTP`, `ICMP`, `ICMPv6`, or the protocol number.
pub fn protocol_name(protocol: u8) -> String {
    match protocol {
        6 => "TCP".into(),
        17 => "UDP".into(),
        132 => "SCTP".into(),
        1 => "ICMP".into(),
        58 => "ICMPv6".into(),
        n => n.to_string(),
    }
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
                    Some(e) => !Arc::ptr_eq(&e.cluster, &cluster),
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

    const STATE: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.80.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.80.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-80, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 80}]
"#;

    fn cluster() -> Arc<Cluster> {
        let loaded = netpol_k8s::load_str("state.yaml", STATE, &Default::default());
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        Arc::new(loaded.cluster)
    }

    fn record(src: &str, dst: &str, protocol: u8, dst_port: Option<u16>) -> NflogRecord {
        NflogRecord {
            prefix: netpol_nft::denied_log_prefix(Direction::Ingress, "in_00000000"),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol,
            src_port: dst_port.map(|_| 40000),
            dst_port,
            icmp_type: if dst_port.is_none() { Some(8) } else { None },
            icmp_code: None,
        }
    }

    #[test]
    fn a_denied_port_names_the_isolating_policy_and_what_it_admits() {
        let e = Explainer::new(cluster()).explain(
            EvalOptions::default(),
            Direction::Ingress,
            &record("10.80.0.1", "10.80.0.2", 6, Some(81)),
        );
        assert_eq!(e.agreement, Agreement::Denied);
        assert_eq!(e.src_workload, "shop/client");
        assert_eq!(e.dst_workload, "shop/web");
        assert_eq!(e.policies, vec!["shop/web-80".to_string()]);
        assert!(
            e.reason.contains("shop/web-80") && e.reason.contains("81"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn an_allowed_port_dropped_by_the_kernel_is_a_disagreement() {
        let e = Explainer::new(cluster()).explain(
            EvalOptions::default(),
            Direction::Ingress,
            &record("10.80.0.1", "10.80.0.2", 6, Some(80)),
        );
        assert_eq!(e.agreement, Agreement::Allowed);
        assert!(
            e.reason.starts_with("allowed by shop/web-80"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn icmp_is_denied_by_a_rule_with_ports_and_external_peers_are_named_external() {
        let x = Explainer::new(cluster());
        let e = x.explain(
            EvalOptions::default(),
            Direction::Ingress,
            &record("10.80.0.1", "10.80.0.2", 1, None),
        );
        assert_eq!(e.agreement, Agreement::Denied, "{}", e.reason);
        assert!(e.reason.starts_with("ICMP"), "{}", e.reason);
        let e = x.explain(
            EvalOptions::default(),
            Direction::Ingress,
            &record("192.0.2.9", "10.80.0.2", 17, Some(53)),
        );
        assert_eq!(
            (e.src_workload.as_str(), e.agreement),
            ("external", Agreement::Denied)
        );
        // The egress side of client is not isolated: a drop there is not explained by policy.
        let e = x.explain(
            EvalOptions::default(),
            Direction::Egress,
            &record("10.80.0.1", "192.0.2.9", 6, Some(443)),
        );
        assert_eq!(e.agreement, Agreement::Allowed);
        assert!(
            e.reason.contains("no policy isolates shop/client"),
            "{}",
            e.reason
        );
    }

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
