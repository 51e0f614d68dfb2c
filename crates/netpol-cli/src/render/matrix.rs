//! The truth table as a grid, CSV, Markdown and a summary line.

use netpol_core::TruthTable;

use super::{grid, mark};

/// `workloads: 3, pairs: 9, allowed: 7, denied: 2 (TCP/80)`.
pub fn summary_line(table: &TruthTable) -> String {
    let n = table.workload_order().len();
    format!(
        "workloads: {n}, pairs: {}, allowed: {}, denied: {} ({}/{})",
        n * n,
        table.allowed_count(),
        table.denied_count(),
        table.protocol,
        table.port
    )
}

/// Rows are sources, columns destinations, `.` allowed and `X` denied.
pub fn render_grid(table: &TruthTable, keys: &[String]) -> String {
    let order = table.workload_order();
    let names: Vec<String> = order.iter().map(|&i| keys[i].clone()).collect();
    let corner = format!("{}/{} FROM\\TO", table.protocol, table.port);
    format!(
        "{}(. allowed, X denied)\n",
        grid(&corner, &names, |r, c| mark(
            table.allowed(order[r], order[c])
        ))
    )
}

pub fn render_csv(table: &TruthTable, keys: &[String]) -> String {
    let order = table.workload_order();
    let mut out = String::from("from\\to");
    for &to in order {
        out.push(',');
        out.push_str(&csv_field(&keys[to]));
    }
    out.push('\n');
    for &from in order {
        out.push_str(&csv_field(&keys[from]));
        for &to in order {
            out.push_str(if table.allowed(from, to) {
                ",true"
            } else {
                ",false"
            });
        }
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn render_markdown(table: &TruthTable, keys: &[String]) -> String {
    let order = table.workload_order();
    let mut out = format!("| {}/{} from \\ to |", table.protocol, table.port);
    for &to in order {
        out.push_str(&format!(" {} |", keys[to]));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(order.len()));
    out.push('\n');
    for &from in order {
        out.push_str(&format!("| {} |", keys[from]));
        for &to in order {
            out.push_str(if table.allowed(from, to) {
                " ✓ |"
            } else {
                " ✗ |"
            });
        }
        out.push('\n');
    }
    out
}
