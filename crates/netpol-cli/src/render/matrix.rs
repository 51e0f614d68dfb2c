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

/// How a text grid of the truth table is spelled: the header (corner, one cell per destination,
/// what ends it) and the rows (the source's cell, one cell per destination).
struct Spelling<'a> {
    corner: String,
    column: &'a dyn Fn(&str) -> String,
    header_end: String,
    row: &'a dyn Fn(&str) -> String,
    /// The cell of a denied and of an allowed pair.
    cells: [&'a str; 2],
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
            out.push_str(s.cells[usize::from(table.allowed(from, to))]);
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
            cells: [",false", ",true"],
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
            cells: [" ✗ |", " ✓ |"],
        },
    )
}
