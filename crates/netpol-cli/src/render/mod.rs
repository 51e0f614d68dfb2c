//! The binary's one rendering module: every text output of the commands (kubectl-like tables,
//! reachability grids, CSV and Markdown, the lab's and the demo's reports) is written here, over
//! the values the libraries return (`TruthTable`, `ProbeReport`, `DemoEvent`, ...). Explanations
//! of verdicts and the connectivity map's lines come from `netpol_core::render`; JSON documents
//! are the values' own `Serialize`. An HTML report would be a sibling module.

pub mod diff;
pub mod exposure;
pub mod get;
pub mod graph;
pub mod lab;
pub mod lint;
pub mod matrix;
pub mod report;

use comfy_table::{presets, Table};

/// A borderless, left-aligned table like `kubectl get` prints.
pub fn kubectl_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    table.set_header(header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    table
}

/// Renders a table the way kubectl does: columns separated by three spaces, no leading or trailing
/// blanks.
pub fn render(table: &Table) -> String {
    let mut table = table.clone();
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A square grid like the upstream e2e reachability tables: one row per source, one column per
/// destination, `cell(row, column)` (positions in `names`) giving the mark.
pub fn grid(corner: &str, names: &[String], cell: impl Fn(usize, usize) -> String) -> String {
    let mut header = vec![corner.to_string()];
    header.extend(names.iter().cloned());
    let mut table = kubectl_table(&header.iter().map(String::as_str).collect::<Vec<_>>());
    for (r, name) in names.iter().enumerate() {
        let mut row = vec![name.clone()];
        row.extend((0..names.len()).map(|c| cell(r, c)));
        table.add_row(row);
    }
    render(&table)
}

/// The grid mark of a verdict.
pub fn mark(allowed: bool) -> String {
    if allowed { "." } else { "X" }.to_string()
}

/// Addresses as `10.0.0.1,fd00::1`.
pub fn join_addresses(addresses: &[std::net::IpAddr]) -> String {
    addresses
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
