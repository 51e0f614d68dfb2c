//! `netpol lint PATH...`: loads in warn mode, runs the pure checks of `netpol_core::lint`, turns
//! the decoder's unknown and duplicate fields into findings (NP009, NP010) and prints them.

use anyhow::Result;
use netpol_core::lint::{lint, Check, Finding, LintSeverity};
use netpol_core::{EvalOptions, Origin};
use netpol_k8s::{Diagnostic, DiagnosticKind, LoadOptions, ValidationMode};

use crate::cli::{FailOn, LintArgs, LintFormat};

pub fn run(args: &LintArgs) -> Result<u8> {
    // Warn mode whatever --validate says: an unknown field is a finding here, not a rejection.
    let options = LoadOptions {
        validation: ValidationMode::Warn,
    };
    let read = crate::input::read(
        &args.input,
        &options,
        crate::input::NamespaceFlags::LiveOnly,
    )?;
    let loaded = read.loaded;
    let opts = EvalOptions {
        ipblock_matches_workloads: args.input.ipblock_matches_workloads,
    };
    let mut report = lint(&loaded.cluster, opts);
    let mut from_decoder = Vec::new();
    for d in &loaded.diagnostics {
        match field_finding(d) {
            Some(f) => from_decoder.push(f),
            None => eprintln!("{d}"),
        }
    }
    report.extend(from_decoder);
    let text = match args.output {
        LintFormat::Text => crate::render::lint::text(&report),
        LintFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        LintFormat::Sarif => {
            serde_json::to_string_pretty(&crate::render::lint::sarif(&report))? + "\n"
        }
    };
    print!("{text}");
    crate::input::partial_answer(loaded.has_errors(), read.unread_kinds, "list of findings")?;
    let threshold = match args.fail_on {
        None => return Ok(0),
        Some(FailOn::Warning) => LintSeverity::Warning,
        Some(FailOn::Error) => LintSeverity::Error,
    };
    Ok(u8::from(report.worst().is_some_and(|w| w >= threshold)))
}

/// NP009/NP010 from an unknown or duplicate field the decoder dropped or overrode.
fn field_finding(d: &Diagnostic) -> Option<Finding> {
    let check = match d.kind {
        DiagnosticKind::UnknownField => Check::UnknownField,
        DiagnosticKind::DuplicateField => Check::DuplicateField,
        _ => return None,
    };
    Some(Finding {
        check,
        severity: check.default_severity(),
        object: d.object.clone().unwrap_or_else(|| d.file.clone()),
        origin: Some(Origin {
            file: d.file.clone(),
            line: d.line,
        }),
        message: d.message.clone(),
        hint: d.hint.clone().unwrap_or_else(|| check.help().to_string()),
    })
}
