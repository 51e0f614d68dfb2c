//! `netpol demo`: the user's page on real packets. Builds test-project (vm-a, vm-b),
//! another-project (vm-c) and an external DNS host in network namespaces, applies the page's
//! policies one at a time, and after each step shows the policy, the probed matrix and the
//! analyzer's prediction side by side.

use std::net::IpAddr;

use anyhow::{anyhow, bail, Context, Result};
use netpol_core::{evaluate, Cluster, Endpoint, Policy, Protocol};
use netpol_k8s::{LoadOptions, ValidationMode};

use crate::cli::DemoArgs;
use crate::lab_run::{preflight, LabPlan, LabRun, ProbeReport};
use crate::output::{grid, join_addresses, mark};

/// The bundled manifests: the user's page as files (see examples/test-project).
const NAMESPACES: (&str, &str) = (
    "examples/test-project/namespaces.yaml",
    include_str!("../../../../examples/test-project/namespaces.yaml"),
);
const VMS: [(&str, &str); 2] = [
    (
        "examples/test-project/vms-test-project.yaml",
        include_str!("../../../../examples/test-project/vms-test-project.yaml"),
    ),
    (
        "examples/test-project/vms-another-project.yaml",
        include_str!("../../../../examples/test-project/vms-another-project.yaml"),
    ),
];
const DENY_INGRESS: (&str, &str) = (
    "examples/test-project/policies/01-vm-a-deny-ingress.yaml",
    include_str!("../../../../examples/test-project/policies/01-vm-a-deny-ingress.yaml"),
);
const DENY_INGRESS_EGRESS: (&str, &str) = (
    "examples/test-project/policies/02-vm-a-deny-ingress-egress.yaml",
    include_str!("../../../../examples/test-project/policies/02-vm-a-deny-ingress-egress.yaml"),
);
const ALLOW_FROM_VM_B: (&str, &str) = (
    "examples/test-project/policies/03-allow-ingress-from-vm-b-to-vm-a.yaml",
    include_str!(
        "../../../../examples/test-project/policies/03-allow-ingress-from-vm-b-to-vm-a.yaml"
    ),
);
const ALLOW_DNS: (&str, &str) = (
    "examples/test-project/policies/04-allow-egress-from-vm-a-to-8-8-8-8.yaml",
    include_str!(
        "../../../../examples/test-project/policies/04-allow-egress-from-vm-a-to-8-8-8-8.yaml"
    ),
);
const PORT_RANGE: (&str, &str) = (
    "examples/test-project/policies/05-allow-egress-from-vm-a-port-range.yaml",
    include_str!(
        "../../../../examples/test-project/policies/05-allow-egress-from-vm-a-port-range.yaml"
    ),
);
const ALLOW_NAMESPACE: (&str, &str) = (
    "examples/test-project/policies/06-allow-ingress-from-namespace-another-project-to-vm-a.yaml",
    include_str!("../../../../examples/test-project/policies/06-allow-ingress-from-namespace-another-project-to-vm-a.yaml"),
);
const MISTAKE: (&str, &str) = (
    "examples/mistakes/egress-ports-under-peer.yaml",
    include_str!("../../../../examples/mistakes/egress-ports-under-peer.yaml"),
);

/// The page's external address, which the lab must never send to.
const PAGE_DNS: &str = "8.8.8.8";
/// Its stand-in from the documentation range 192.0.2.0/24 (RFC 5737): the lab's DNS host.
const DNS_STAND_IN: &str = "192.0.2.53";

/// The port every VM-to-VM matrix is probed on.
const MATRIX_PORT: u16 = 80;

/// Flows to the external DNS host probed at every step: (from VM, protocol, port).
const EXTERNAL_FLOWS: [(&str, Protocol, u16); 4] = [
    ("test-project/vm-a", Protocol::Tcp, 53),
    ("test-project/vm-a", Protocol::Udp, 53),
    ("test-project/vm-a", Protocol::Tcp, 32000),
    ("test-project/vm-b", Protocol::Tcp, 53),
];

struct Step {
    title: &'static str,
    /// The policy added at this step (cumulative), or none for the first step.
    adds: Option<(&'static str, &'static str)>,
    explanation: &'static str,
}

const STEPS: [Step; 7] = [
    Step {
        title: "No policy",
        adds: None,
        explanation: "No policy selects any VM, so every VM is open in both directions.",
    },
    Step {
        title: "Isolate all incoming traffic of vm-a",
        adds: Some(DENY_INGRESS),
        explanation: "vm-a is selected for Ingress and the policy has no ingress rules: nothing may reach vm-a. vm-a can still send.",
    },
    Step {
        title: "Isolate incoming and outgoing traffic of vm-a",
        adds: Some(DENY_INGRESS_EGRESS),
        explanation: "policyTypes now also lists Egress with no egress rules: vm-a can neither receive nor send.",
    },
    Step {
        title: "Allow incoming traffic from vm-b to vm-a",
        adds: Some(ALLOW_FROM_VM_B),
        explanation: "Policies are additive: this rule adds vm-b (podSelector vm: b, same namespace) to what vm-a accepts, on every port.",
    },
    Step {
        title: "Allow outgoing traffic from vm-a to the DNS host on TCP 53",
        adds: Some(ALLOW_DNS),
        explanation: "vm-a may now open TCP 53 to the DNS host; UDP 53 and other ports stay blocked (the rule names TCP only).",
    },
    Step {
        title: "A port range with endPort",
        adds: Some(PORT_RANGE),
        explanation: "TCP 32000-32768 to the DNS host is added; the range includes both ends.",
    },
    Step {
        title: "Allow incoming traffic from the namespace another-project",
        adds: Some(ALLOW_NAMESPACE),
        explanation: "namespaceSelector kubernetes.io/metadata.name: another-project (the label every namespace gets) lets vm-c reach vm-a.",
    },
];

pub fn run(args: &DemoArgs) -> Result<u8> {
    preflight().context("netpol demo runs the page on real packets")?;
    netpol_dataplane::install_interrupt_cleanup()?;
    let base = load_base()?;
    let dns: IpAddr = DNS_STAND_IN.parse()?;
    let say = |text: &str| {
        if !args.quiet {
            println!("{text}");
        }
    };
    say(&format!(
        "netpol demo: the user's page on real packets. VMs are network namespaces with their real addresses;\n\
         each node enforces its own nftables ruleset. The page's external address {PAGE_DNS} is replaced by\n\
         {DNS_STAND_IN} (documentation range): the demo never sends traffic outside the lab.\n"
    ));
    let listen = vec![
        (Protocol::Tcp, MATRIX_PORT),
        (Protocol::Tcp, 53),
        (Protocol::Udp, 53),
        (Protocol::Tcp, 32000),
    ];
    let run = LabRun::build(
        &base,
        netpol_core::EvalOptions::default(),
        &LabPlan {
            listen,
            externals: vec![dns],
        },
    )?;
    say(&format!(
        "lab: nodes {}; VMs {}; external DNS host {DNS_STAND_IN}\n",
        run.nodes.join(", "),
        run.members
            .iter()
            .map(|&i| {
                let w = &run.cluster.workloads[i];
                format!(
                    "{} {} on {}",
                    w.key(),
                    join_addresses(&w.addresses),
                    w.node.as_deref().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    ));

    let mut policies: Vec<Policy> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut probes = 0usize;
    for (n, step) in STEPS.iter().enumerate() {
        say(&format!("== Step {}: {} ==", n + 1, step.title));
        if let Some((file, text)) = step.adds {
            let text = text.replace(PAGE_DNS, DNS_STAND_IN);
            say(&format!(
                "applying {file}:\n{}",
                indent(strip_comments(&text))
            ));
            policies.extend(load_policies(file, &text, ValidationMode::Strict)?);
        }
        say(step.explanation);
        let (n_probes, mismatches) = enforce_and_show(&run, &base, &policies, dns, &say)?;
        probes += n_probes;
        failures.extend(
            mismatches
                .into_iter()
                .map(|m| format!("step {}: {m}", n + 1)),
        );
    }

    say("== Step 8: the page's indentation mistake ==");
    let (file, text) = MISTAKE;
    let text = text.replace(PAGE_DNS, DNS_STAND_IN);
    let strict = netpol_k8s::load_str(file, &text, &LoadOptions::default());
    let caught = strict.has_errors() && strict.cluster.policies.is_empty();
    for d in &strict.diagnostics {
        say(&format!("netpol --validate=strict: {d}"));
    }
    if !caught {
        failures.push("the page's indentation mistake was not rejected in strict mode".into());
    }
    let warned = netpol_k8s::load_str(
        file,
        &text,
        &LoadOptions {
            validation: ValidationMode::Warn,
        },
    );
    // Loaded alone, the file also draws a warning about its undefined namespace: not the point here.
    for d in warned.diagnostics.iter().filter(|d| {
        d.object
            .as_deref()
            .is_some_and(|o| o.starts_with("NetworkPolicy"))
    }) {
        say(&format!("netpol --validate=warn: {d}"));
    }
    say("Loaded anyway (as kubectl --validate=warn or an old API server would), with vm-a isolated both ways:");
    let mistaken: Vec<Policy> = load_policies(
        DENY_INGRESS_EGRESS.0,
        DENY_INGRESS_EGRESS.1,
        ValidationMode::Strict,
    )?
    .into_iter()
    .chain(warned.cluster.policies)
    .collect();
    run.enforce(&mistaken)?;
    for port in [53, 80] {
        let flow = ("test-project/vm-a", Protocol::Tcp, port);
        probes += 1;
        if let Some(m) = probe_external_flow(&run, &base, &mistaken, dns, flow, &say)? {
            failures.push(format!("step 8: {m}"));
        }
    }
    say("  The misplaced `ports` is dropped, so the rule allows every port to the DNS host (TCP 80 gets through).\n");

    if failures.is_empty() {
        println!(
            "demo: OK: 8 steps, {probes} real probes, the kernel did exactly what the analyzer predicted, and the page's mistake was caught"
        );
        Ok(0)
    } else {
        for f in &failures {
            println!("MISMATCH {f}");
        }
        println!(
            "demo: FAILED: {} mismatches in {probes} probes",
            failures.len()
        );
        Ok(1)
    }
}

fn load_base() -> Result<Cluster> {
    let mut text = String::new();
    for (_, t) in std::iter::once(NAMESPACES).chain(VMS) {
        text.push_str("---\n");
        text.push_str(t);
        text.push('\n');
    }
    let loaded = netpol_k8s::load_str("examples/test-project", &text, &LoadOptions::default());
    if loaded.has_errors() {
        let errors: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
        bail!("the bundled examples do not load:\n{}", errors.join("\n"));
    }
    Ok(loaded.cluster)
}

fn load_policies(file: &str, text: &str, validation: ValidationMode) -> Result<Vec<Policy>> {
    let loaded = netpol_k8s::load_str(file, text, &LoadOptions { validation });
    if loaded.has_errors() {
        let errors: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
        bail!("{file} does not load:\n{}", errors.join("\n"));
    }
    Ok(loaded.cluster.policies)
}

/// Enforces `policies`, probes the VM matrix and the external flows, prints observed and predicted
/// side by side; returns the number of probes and the mismatches.
fn enforce_and_show(
    run: &LabRun,
    base: &Cluster,
    policies: &[Policy],
    dns: IpAddr,
    say: &dyn Fn(&str),
) -> Result<(usize, Vec<String>)> {
    run.enforce(policies)?;
    let report = run.probe_matrix(policies, Protocol::Tcp, MATRIX_PORT)?;
    say(&side_by_side(&report));
    let mut mismatches: Vec<String> = report
        .mismatches
        .iter()
        .map(|m| {
            format!(
                "{} -> {} TCP/{MATRIX_PORT} observed {} predicted {}",
                m.from,
                m.to,
                word(m.observed),
                word(m.predicted)
            )
        })
        .collect();
    let mut probes = report.workloads.len() * report.workloads.len();
    for flow in EXTERNAL_FLOWS {
        probes += 1;
        mismatches.extend(probe_external_flow(run, base, policies, dns, flow, say)?);
    }
    say(if mismatches.is_empty() {
        "  match: the kernel did what the analyzer predicted\n"
    } else {
        "  MISMATCH: the kernel and the analyzer disagree (see above)\n"
    });
    Ok((probes, mismatches))
}

/// Probes one flow from a VM to the DNS host, prints observed and predicted, and returns the
/// mismatch, if any.
fn probe_external_flow(
    run: &LabRun,
    base: &Cluster,
    policies: &[Policy],
    dns: IpAddr,
    (from, protocol, port): (&str, Protocol, u16),
    say: &dyn Fn(&str),
) -> Result<Option<String>> {
    let observed = run.probe_external(from, dns, protocol, port)?;
    let predicted = predict_external(run, base, policies, from, dns, protocol, port)?;
    let flow = format!("{from} -> {DNS_STAND_IN} {protocol}/{port}");
    say(&format!(
        "  {flow}: observed {}, predicted {}{}",
        word(observed),
        word(predicted),
        if observed == predicted {
            ""
        } else {
            "  MISMATCH"
        }
    ));
    Ok((observed != predicted).then(|| {
        format!(
            "{flow} observed {} predicted {}",
            word(observed),
            word(predicted)
        )
    }))
}

fn predict_external(
    run: &LabRun,
    base: &Cluster,
    policies: &[Policy],
    from: &str,
    to: IpAddr,
    protocol: Protocol,
    port: u16,
) -> Result<bool> {
    let mut cluster = base.clone();
    cluster.policies = policies.to_vec();
    cluster.add_missing_namespaces();
    let src = cluster
        .workloads
        .iter()
        .position(|w| w.key() == from)
        .ok_or_else(|| anyhow!("no workload {from} in the demo"))?;
    Ok(evaluate(
        &cluster,
        run.opts,
        &Endpoint::Workload(src),
        &Endpoint::External(to),
        protocol,
        port,
    )
    .allowed)
}

fn word(allowed: bool) -> &'static str {
    if allowed {
        "allowed"
    } else {
        "blocked"
    }
}

/// The observed and predicted grids next to each other.
fn side_by_side(report: &ProbeReport) -> String {
    let names = &report.workloads;
    let corner = format!("TCP/{MATRIX_PORT} FROM\\TO");
    let observed = grid(&corner, names, |r, c| {
        mark(report.observed(&names[r], &names[c]))
    });
    let predicted = grid(&corner, names, |r, c| {
        mark(report.predicted(&names[r], &names[c]))
    });
    let left: Vec<&str> = observed.lines().collect();
    let right: Vec<&str> = predicted.lines().collect();
    let width = left.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = format!(
        "  {:<width$}    {}\n",
        "observed (real packets)", "predicted (analyzer)"
    );
    for (l, r) in left.iter().zip(right.iter()) {
        out.push_str(&format!("  {l:<width$}    {r}\n"));
    }
    out.push_str("  (. reached/allowed, X blocked/denied)");
    out
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn indent(text: String) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
