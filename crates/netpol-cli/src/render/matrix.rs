//! The truth table as a grid, CSV, Markdown and a summary line.

use netpol_core::TruthTable;

use super::{grid, mark};

/// `workloads: 3, pairs: 9, allowed: 7, denied: 2 (TCP/80)` (`workloads: 2, nodes: 2, pairs:
/// 16, ...` with nodes); counts are of the family each flow prefers, and `, differ by family: N`
/// follows when some dual-stack pairs differ.
pub fn summary_line(table: &TruthTable) -> String {
    let n = table.workload_order().len();
    let differing = table.differing_count();
    format!(
        "{}, pairs: {}, allowed: {}, denied: {}{} ({}/{})",
        endpoint_counts(n, table.node_count()),
        n * n,
        table.allowed_count(),
        table.denied_count(),
        if differing > 0 {
            format!(", differ by family: {differing}")
        } else {
            String::new()
        },
        table.protocol,
        table.port
    )
}

/// `workloads: N`, or `workloads: N, nodes: M` when `nodes` of the `endpoints` are nodes.
pub fn endpoint_counts(endpoints: usize, nodes: usize) -> String {
    if nodes == 0 {
        format!("workloads: {endpoints}")
    } else {
        format!("workloads: {}, nodes: {nodes}", endpoints - nodes)
    }
}

/// Which of a spelling's cells a pair gets: 0 denied, 1 allowed, 2 allowed over IPv4 only, 3
/// allowed over IPv6 only.
fn cell(table: &TruthTable, from: usize, to: usize) -> usize {
    match table.by_family(from, to) {
        Some([true, _]) => 2,
        Some(_) => 3,
        None => usize::from(table.allowed(from, to)),
    }
}

/// Rows are sources, columns destinations, `.` allowed and `X` denied; `4` or `6` where a
/// dual-stack pair is allowed over IPv4 only or IPv6 only.
pub fn render_grid(table: &TruthTable, keys: &[String]) -> String {
    let order = table.workload_order();
    let names: Vec<String> = order.iter().map(|&i| keys[i].clone()).collect();
    let corner = format!("{}/{} FROM\\TO", table.protocol, table.port);
    let marks = [mark(false), mark(true), "4".to_string(), "6".to_string()];
    let legend = if table.differing_count() > 0 {
        "(. allowed, X denied, 4 allowed over IPv4 only, 6 allowed over IPv6 only)"
    } else {
        "(. allowed, X denied)"
    };
    format!(
        "{}{legend}\n",
        grid(&corner, &names, |r, c| marks
            [cell(table, order[r], order[c])]
        .clone())
    )
}

/// How a text grid of the truth table is spelled: the header (corner, one cell per destination,
/// what ends it) and the rows (the source's cell, one cell per destination).
struct Spelling<'a> {
    corner: String,
    column: &'a dyn Fn(&str) -> String,
    header_end: String,
    row: &'a dyn Fn(&str) -> String,
    /// The cell of a denied pair, an allowed one, one allowed over IPv4 only, over IPv6 only.
    cells: [&'a str; 4],
}

fn spell(table: &TruthTable, keys: &[String], s: &Spelling<'_>) -> String {
    let order = table.workload_order();
    let mut out = s.corner.clone();
    for &to in order {
        out.push_str(&(s.column)(&keys[to]));
    }
    out.push_str(&s.header_end);
    for &from in order {
        out.push_str(&(s.row)(&keys[from]));
        for &to in order {
            out.push_str(s.cells[cell(table, from, to)]);
        }
        out.push('\n');
    }
    out
}

/// `from\to,a,b` then `a,true,false` per source.
pub fn render_csv(table: &TruthTable, keys: &[String]) -> String {
    spell(
        table,
        keys,
        &Spelling {
            corner: "from\\to".to_string(),
            column: &|k| format!(",{}", csv_field(k)),
            header_end: "\n".to_string(),
            row: &csv_field,
            cells: [",false", ",true", ",IPv4", ",IPv6"],
        },
    )
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A Markdown table with ✓ and ✗ cells.
pub fn render_markdown(table: &TruthTable, keys: &[String]) -> String {
    let columns = table.workload_order().len();
    spell(
        table,
        keys,
        &Spelling {
            corner: format!("| {}/{} from \\ to |", table.protocol, table.port),
            column: &|k| format!(" {k} |"),
            header_end: format!("\n|---|{}\n", "---|".repeat(columns)),
            row: &|k| format!("| {k} |"),
            cells: [" ✗ |", " ✓ |", " ✓ IPv4 only |", " ✓ IPv6 only |"],
        },
    )
}
