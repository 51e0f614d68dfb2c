//! The table's own named counters, exported: packets crossing the table's hooks
//! (`netpol_table_packets_total`, so that an operator sees a table no traffic crosses: a datapath
//! that bypasses netfilter) and packets it dropped by reason (`netpol_table_dropped_packets_total`:
//! `ingress`, `egress`, `spoofed`).
//!
//! The kernel's values can restart (a table deleted behind the agent's back, an agent that starts
//! after such a deletion); each export adds only the growth since the previous reading, taking a
//! lower reading as a restart from zero, so the exported counters never go down.

use std::collections::BTreeMap;
use std::sync::Mutex;

use netpol_nft::render::{DENIED_EGRESS, DENIED_INGRESS, DENIED_SPOOFED, TABLE_PACKETS};
use netpol_nft::CounterReading;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::metrics::{label, Labels};

/// The exported table counters and the kernel readings they were last advanced from.
#[derive(Debug, Default)]
pub struct TableMetrics {
    packets: Counter,
    dropped: Family<Labels, Counter>,
    last: Mutex<BTreeMap<&'static str, u64>>,
}

/// Which kernel counter feeds which drop reason.
const DROP_REASONS: [(&str, &str); 3] = [
    (DENIED_INGRESS, "ingress"),
    (DENIED_EGRESS, "egress"),
    (DENIED_SPOOFED, "spoofed"),
];

impl TableMetrics {
    /// Registers both metrics.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "netpol_table_packets",
            "Packets that crossed the table's hooks (0 while traffic flows: it bypasses netfilter)",
            self.packets.clone(),
        );
        r.register(
            "netpol_table_dropped_packets",
            "Packets the table dropped, by reason: ingress, egress (denied by policy) or spoofed \
             (a source the workload's interface does not own)",
            self.dropped.clone(),
        );
    }

    /// Advances the exported counters to a reading of the table's counters.
    pub fn observe(&self, readings: &[CounterReading]) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let mut advance = |name: &'static str| -> Option<u64> {
            let now = readings.iter().find(|r| r.name == name)?.packets;
            let before = last.insert(name, now).unwrap_or(0);
            // Lower than before: the kernel's counter restarted at zero since.
            Some(if now >= before { now - before } else { now })
        };
        if let Some(n) = advance(TABLE_PACKETS) {
            self.packets.inc_by(n);
        }
        for (name, reason) in DROP_REASONS {
            if let Some(n) = advance(name) {
                self.dropped
                    .get_or_create(&label("reason", reason))
                    .inc_by(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(name: &str, packets: u64) -> CounterReading {
        CounterReading {
            name: name.into(),
            packets,
            bytes: packets * 60,
        }
    }

    fn encode(m: &TableMetrics) -> String {
        let mut r = Registry::default();
        m.register(&mut r);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        out
    }

    #[test]
    fn table_counters_only_go_up_across_a_restart_of_the_kernels_counters() {
        let m = TableMetrics::default();
        m.observe(&[reading(TABLE_PACKETS, 100), reading(DENIED_SPOOFED, 3)]);
        m.observe(&[reading(TABLE_PACKETS, 150), reading(DENIED_SPOOFED, 4)]);
        // The table was deleted and recreated: the kernel starts again from zero.
        m.observe(&[reading(TABLE_PACKETS, 20), reading(DENIED_SPOOFED, 1)]);
        let text = encode(&m);
        assert!(text.contains("netpol_table_packets_total 170"), "{text}");
        assert!(
            text.contains(r#"netpol_table_dropped_packets_total{reason="spoofed"} 5"#),
            "{text}"
        );
        // A reading without the table (missing until repaired) changes nothing.
        m.observe(&[]);
        assert!(encode(&m).contains("netpol_table_packets_total 170"));
    }
}
