//! The findings of `netpol lint`: text (one `file:line: severity[ID]` line and a hint per
//! finding, then a count) and SARIF 2.1.0 for code-scanning UIs. JSON is `LintReport`'s own.

use std::fmt::Write;

use netpol_core::lint::{Check, Finding, LintReport, LintSeverity};
use serde_json::{json, Value};

/// `file:line: warning[NP001]: NetworkPolicy ns/p: message`, `  hint: ...`, then the counts.
pub fn text(report: &LintReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let at = match &f.origin {
            Some(o) if o.line > 0 => format!("{}:{}: ", o.file, o.line),
            Some(o) => format!("{}: ", o.file),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{at}{}[{}]: {}: {}",
            f.severity,
            f.check.id(),
            f.object,
            f.message
        );
        let _ = writeln!(out, "  hint: {}", f.hint);
    }
    let count = |s: LintSeverity| report.findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        out,
        "{} finding(s): {} error(s), {} warning(s), {} info",
        report.findings.len(),
        count(LintSeverity::Error),
        count(LintSeverity::Warning),
        count(LintSeverity::Info)
    );
    if !report.skipped.is_empty() {
        let ids: Vec<&str> = report.skipped.iter().map(|c| c.id()).collect();
        let _ = writeln!(
            out,
            "skipped {} (they need workloads and the input has none)",
            ids.join(", ")
        );
    }
    out
}

fn level(s: LintSeverity) -> &'static str {
    match s {
        LintSeverity::Error => "error",
        LintSeverity::Warning => "warning",
        LintSeverity::Info => "note",
    }
}

/// A path as a relative URI reference: forward slashes, and the characters a URI cannot hold
/// percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn result(f: &Finding) -> Value {
    let rule_index = Check::ALL.iter().position(|c| *c == f.check).unwrap_or(0);
    let mut r = json!({
        "ruleId": f.check.id(),
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": { "text": format!("{}: {} (hint: {})", f.object, f.message, f.hint) },
    });
    if let Some(o) = &f.origin {
        let mut physical = json!({ "artifactLocation": { "uri": uri(&o.file) } });
        if o.line > 0 {
            physical["region"] = json!({ "startLine": o.line });
        }
        r["locations"] = json!([{ "physicalLocation": physical }]);
    }
    r
}

/// The SARIF 2.1.0 log: one run, every check as a rule (with its help), every finding a result.
pub fn sarif(report: &LintReport) -> Value {
    let rules: Vec<Value> = Check::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.id(),
                "name": c.name(),
                "shortDescription": { "text": c.summary() },
                "fullDescription": { "text": c.summary() },
                "help": { "text": c.help() },
                "defaultConfiguration": { "level": level(c.default_severity()) },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "netpol",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://kubernetes.io/docs/concepts/services-networking/network-policies/",
                    "rules": rules,
                }
            },
            "results": report.findings.iter().map(result).collect::<Vec<_>>(),
        }]
    })
}
