//! The demo: the user's page on real packets. Builds test-project (vm-a, vm-b), another-project
//! (vm-c) and an external DNS host as a lab, applies the page's policies one at a time (each
//! enforced by every node, then the VM matrix and the flows to the DNS host probed and compared
//! with the analyzer), and finally shows that strict loading catches the page's indentation
//! mistake and what the mistaken policy does when loaded anyway.
//!
//! [`run`] reports each stage to a callback as it happens (a blocked probe takes its timeout, so
//! a caller that prints shows progress) and returns the whole walk as data.

mod page;

use std::net::{IpAddr, Ipv4Addr};

use netpol_core::{AdminPolicy, Cluster, EvalOptions, Policy, Protocol};
use netpol_k8s::{LoadOptions, ValidationMode};
use serde::Serialize;

use crate::cluster_lab::{ClusterLab, LabInventory, LabPlan};
use crate::error::LabError;
use crate::report::{ExternalProbe, ProbeReport};
use page::{Flow, Step};

pub use page::MATRIX_PORT;

/// The page's external address, which the lab must never send to.
pub const PAGE_DNS: IpAddr = IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8));
/// Its stand-in from the documentation range 192.0.2.0/24 (RFC 5737): the lab's DNS host.
pub const DNS_STAND_IN: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53));

/// A policy file a step applies, as loaded: the page's text with [`PAGE_DNS`] replaced by
/// [`DNS_STAND_IN`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AppliedPolicy {
    /// The file as the demo names it (`examples/test-project/policies/...`).
    pub file: String,
    /// The manifest text, comments included.
    pub manifest: String,
}

/// What a policy step is about, known before anything is probed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StepIntro {
    /// 1-based.
    pub number: usize,
    /// The page's heading.
    pub title: &'static str,
    /// The policy added at this step (they accumulate); none for the first step.
    pub applied: Option<AppliedPolicy>,
    /// What the step should show, in one or two sentences.
    pub explanation: &'static str,
}

/// One policy step, probed.
#[derive(Debug, Clone, Serialize)]
pub struct DemoStep {
    /// Its heading, policy and explanation.
    pub intro: StepIntro,
    /// The VM matrix on TCP [`MATRIX_PORT`], observed and predicted.
    pub matrix: ProbeReport,
    /// The flows to the DNS host, observed and predicted.
    pub external: Vec<ExternalProbe>,
}

impl DemoStep {
    /// Whether the kernel did what the analyzer predicted on every probe of this step.
    pub fn matches(&self) -> bool {
        self.matrix.mismatches.is_empty() && self.external.iter().all(ExternalProbe::matches)
    }

    /// The real probes of this step.
    pub fn probe_count(&self) -> usize {
        self.matrix.probe_count() + self.external.len()
    }
}

/// How loading the page's mistake went, in strict and in warn mode.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MistakeCheck {
    /// 1-based: the step after the policy steps.
    pub number: usize,
    /// Its heading.
    pub title: &'static str,
    /// The mistaken file.
    pub file: &'static str,
    /// Every diagnostic of the strict load, as the loader prints it.
    pub strict_diagnostics: Vec<String>,
    /// Whether strict mode rejected the policy (an error, and no policy loaded).
    pub caught: bool,
    /// The warn-mode diagnostics about the NetworkPolicy itself (not about its namespace).
    pub warn_diagnostics: Vec<String>,
    /// What happens next: the policy is loaded anyway.
    pub explanation: &'static str,
}

/// The last step: the mistake caught, then loaded anyway and probed.
#[derive(Debug, Clone, Serialize)]
pub struct MistakeStep {
    /// The loads in strict and warn mode.
    pub check: MistakeCheck,
    /// Flows to the DNS host with the mistaken policy (and vm-a isolated both ways) in force.
    pub external: Vec<ExternalProbe>,
    /// What the probes show.
    pub conclusion: &'static str,
}

/// The whole walk.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// The lab it ran on.
    pub lab: LabInventory,
    /// The policy steps, in order.
    pub steps: Vec<DemoStep>,
    /// The mistake step, after them.
    pub mistake: MistakeStep,
}

impl DemoReport {
    /// How many steps the page has, the mistake included.
    pub fn step_count(&self) -> usize {
        self.steps.len() + 1
    }

    /// Every real probe sent.
    pub fn probe_count(&self) -> usize {
        self.steps.iter().map(DemoStep::probe_count).sum::<usize>() + self.mistake.external.len()
    }

    /// Whether every probe matched the prediction and the mistake was caught.
    pub fn passed(&self) -> bool {
        self.steps.iter().all(DemoStep::matches)
            && self.mistake.check.caught
            && self.mistake.external.iter().all(ExternalProbe::matches)
    }
}

/// A stage of the walk, reported as it happens, in this order: `Started`, `LabBuilt`, then per
/// policy step `StepStarted`, `MatrixProbed`, one `ExternalProbed` per flow, `StepFinished`;
/// finally `MistakeChecked`, one `ExternalProbed` per flow, `MistakeFinished`.
#[derive(Debug, Clone, Copy)]
pub enum DemoEvent<'a> {
    /// The bundled manifests loaded; the lab is being built.
    Started,
    /// The lab is up, enforcing nothing yet.
    LabBuilt(&'a LabInventory),
    /// A policy step begins; its policy (if any) is loaded and enforced next.
    StepStarted(&'a StepIntro),
    /// The VM matrix of the current step was probed.
    MatrixProbed(&'a ProbeReport),
    /// One flow to the DNS host was probed.
    ExternalProbed(&'a ExternalProbe),
    /// A policy step is complete.
    StepFinished(&'a DemoStep),
    /// The mistake was loaded in strict and warn mode; it is enforced and probed next.
    MistakeChecked(&'a MistakeCheck),
    /// The mistake step is complete.
    MistakeFinished(&'a MistakeStep),
}

/// Walks the page on a lab of its own (checked by [`crate::preflight()`] first), reporting each
/// stage to `on_event`. The lab is removed when this returns, on success and on error; a caller
/// that may be interrupted installs [`crate::install_interrupt_cleanup`] first.
pub fn run(mut on_event: impl FnMut(DemoEvent<'_>)) -> Result<DemoReport, LabError> {
    let on_event: &mut dyn FnMut(DemoEvent<'_>) = &mut on_event;
    let base = load_base()?;
    on_event(DemoEvent::Started);
    let plan = LabPlan {
        listen: page::LISTEN.to_vec(),
        externals: vec![DNS_STAND_IN],
    };
    let mut lab = ClusterLab::build(&base, EvalOptions::default(), &plan)?;
    let inventory = lab.inventory();
    on_event(DemoEvent::LabBuilt(&inventory));
    let mut policies = Loaded::default();
    let mut steps = Vec::with_capacity(page::STEPS.len());
    for (i, step) in page::STEPS.iter().enumerate() {
        steps.push(policy_step(&mut lab, i + 1, step, &mut policies, on_event)?);
    }
    let mistake = mistake_step(&mut lab, page::STEPS.len() + 1, on_event)?;
    Ok(DemoReport {
        lab: inventory,
        steps,
        mistake,
    })
}

/// Adds the step's policy to `policies`, enforces them all, probes and compares.
fn policy_step(
    lab: &mut ClusterLab,
    number: usize,
    step: &Step,
    policies: &mut Loaded,
    on_event: &mut dyn FnMut(DemoEvent<'_>),
) -> Result<DemoStep, LabError> {
    let intro = StepIntro {
        number,
        title: step.title,
        applied: step.adds.as_ref().map(|file| AppliedPolicy {
            file: file.name.to_string(),
            manifest: with_stand_in(file.text),
        }),
        explanation: step.explanation,
    };
    on_event(DemoEvent::StepStarted(&intro));
    if let Some(applied) = &intro.applied {
        policies.extend(load_policies(&applied.file, &applied.manifest)?);
    }
    lab.enforce(&policies.network, &policies.admin)?;
    let matrix = lab.probe_matrix(Protocol::Tcp, MATRIX_PORT)?;
    on_event(DemoEvent::MatrixProbed(&matrix));
    let external = probe_flows(lab, &page::EXTERNAL_FLOWS, on_event)?;
    let step = DemoStep {
        intro,
        matrix,
        external,
    };
    on_event(DemoEvent::StepFinished(&step));
    Ok(step)
}

/// Loads the mistake strictly (it must be rejected) and leniently (it loads, minus the misplaced
/// `ports`), enforces the lenient result beside vm-a's isolation, and probes.
fn mistake_step(
    lab: &mut ClusterLab,
    number: usize,
    on_event: &mut dyn FnMut(DemoEvent<'_>),
) -> Result<MistakeStep, LabError> {
    let text = with_stand_in(page::MISTAKE.text);
    let strict = netpol_k8s::load_str(page::MISTAKE.name, &text, &LoadOptions::default());
    let warned = netpol_k8s::load_str(
        page::MISTAKE.name,
        &text,
        &LoadOptions {
            validation: ValidationMode::Warn,
        },
    );
    let check = MistakeCheck {
        number,
        title: page::MISTAKE_TITLE,
        file: page::MISTAKE.name,
        strict_diagnostics: strict.diagnostics.iter().map(|d| d.to_string()).collect(),
        caught: strict.has_errors() && strict.cluster.policies.is_empty(),
        // Loaded alone, the file also draws a warning about its undefined namespace: not the
        // point here.
        warn_diagnostics: warned
            .diagnostics
            .iter()
            .filter(|d| {
                d.object
                    .as_deref()
                    .is_some_and(|o| o.starts_with("NetworkPolicy"))
            })
            .map(|d| d.to_string())
            .collect(),
        explanation: page::MISTAKE_EXPLANATION,
    };
    on_event(DemoEvent::MistakeChecked(&check));
    let isolation = &page::DENY_INGRESS_EGRESS;
    let mistaken: Vec<Policy> = load_policies(isolation.name, isolation.text)?
        .network
        .into_iter()
        .chain(warned.cluster.policies)
        .collect();
    lab.enforce(&mistaken, &[])?;
    let external = probe_flows(lab, &page::MISTAKE_FLOWS, on_event)?;
    let step = MistakeStep {
        check,
        external,
        conclusion: page::MISTAKE_CONCLUSION,
    };
    on_event(DemoEvent::MistakeFinished(&step));
    Ok(step)
}

/// Probes each flow to the DNS host, reporting each as soon as it is known.
fn probe_flows(
    lab: &ClusterLab,
    flows: &[Flow],
    on_event: &mut dyn FnMut(DemoEvent<'_>),
) -> Result<Vec<ExternalProbe>, LabError> {
    let mut probes = Vec::with_capacity(flows.len());
    for flow in flows {
        let probe = lab.probe_external(flow.from, DNS_STAND_IN, flow.protocol, flow.port)?;
        on_event(DemoEvent::ExternalProbed(&probe));
        probes.push(probe);
    }
    Ok(probes)
}

/// The page's text with its external address replaced: the demo never sends outside the lab.
fn with_stand_in(text: &str) -> String {
    text.replace(&PAGE_DNS.to_string(), &DNS_STAND_IN.to_string())
}

fn load_base() -> Result<Cluster, LabError> {
    let mut text = String::new();
    for file in &page::BASE {
        text.push_str("---\n");
        text.push_str(file.text);
        text.push('\n');
    }
    let loaded = netpol_k8s::load_str(page::BASE_NAME, &text, &LoadOptions::default());
    if loaded.has_errors() {
        return Err(LabError::Bundled {
            name: "the bundled examples".to_string(),
            diagnostics: loaded.diagnostics.iter().map(|d| d.to_string()).collect(),
        });
    }
    Ok(loaded.cluster)
}

/// Loads one bundled policy file strictly.
/// The policies of every tier the steps have applied so far.
#[derive(Default)]
struct Loaded {
    network: Vec<Policy>,
    admin: Vec<AdminPolicy>,
}

impl Loaded {
    fn extend(&mut self, more: Loaded) {
        self.network.extend(more.network);
        self.admin.extend(more.admin);
    }
}

fn load_policies(file: &str, text: &str) -> Result<Loaded, LabError> {
    let loaded = netpol_k8s::load_str(file, text, &LoadOptions::default());
    if loaded.has_errors() {
        return Err(LabError::Bundled {
            name: file.to_string(),
            diagnostics: loaded.diagnostics.iter().map(|d| d.to_string()).collect(),
        });
    }
    Ok(Loaded {
        network: loaded.cluster.policies,
        admin: loaded.cluster.admin_policies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_and_every_step_policy_load_strictly() {
        let base = load_base().unwrap();
        assert_eq!(base.workloads.len(), 3);
        let mut count = 0;
        for step in &page::STEPS {
            if let Some(file) = &step.adds {
                let loaded = load_policies(file.name, &with_stand_in(file.text)).unwrap();
                count += loaded.network.len() + loaded.admin.len();
            }
        }
        assert_eq!(
            count, 8,
            "the page's six policies and the two of the admin tiers"
        );
    }

    #[test]
    fn no_applied_manifest_names_the_page_address_any_more() {
        let page = PAGE_DNS.to_string();
        let texts: Vec<String> = page::STEPS
            .iter()
            .filter_map(|s| s.adds.as_ref())
            .chain([&page::MISTAKE])
            .map(|b: &page::Bundled| with_stand_in(b.text))
            .collect();
        assert!(texts.iter().all(|t| !t.contains(&page)));
        assert!(texts.iter().any(|t| t.contains("192.0.2.53")));
    }

    #[test]
    fn every_probed_port_has_a_listener() {
        for flow in page::EXTERNAL_FLOWS.iter().chain(&page::MISTAKE_FLOWS) {
            assert!(page::LISTEN.contains(&(flow.protocol, flow.port)));
        }
        assert!(page::LISTEN.contains(&(Protocol::Tcp, MATRIX_PORT)));
    }
}
