//! The user's page as the demo walks it: the bundled manifests (examples/test-project and the
//! page's indentation mistake, compiled into the binary so the demo runs from anywhere), the
//! steps in order, and the flows probed besides the VM matrix.

use netpol_core::Protocol;

/// A manifest file: the name the demo shows and its text.
pub(super) struct Bundled {
    pub name: &'static str,
    pub text: &'static str,
}

/// A file of the repository under its repository path, its text compiled in.
macro_rules! bundled {
    ($path:literal) => {
        Bundled {
            name: $path,
            text: include_str!(concat!("../../../../", $path)),
        }
    };
}

/// The namespaces and VMs every step starts from.
pub(super) const BASE: [Bundled; 3] = [
    bundled!("examples/test-project/namespaces.yaml"),
    bundled!("examples/test-project/vms-test-project.yaml"),
    bundled!("examples/test-project/vms-another-project.yaml"),
];

/// The name the base manifests load under, together.
pub(super) const BASE_NAME: &str = "examples/test-project";

const DENY_INGRESS: Bundled = bundled!("examples/test-project/policies/01-vm-a-deny-ingress.yaml");
/// The policy the mistake step loads together with the mistake (vm-a isolated both ways).
pub(super) const DENY_INGRESS_EGRESS: Bundled =
    bundled!("examples/test-project/policies/02-vm-a-deny-ingress-egress.yaml");
const ALLOW_FROM_VM_B: Bundled =
    bundled!("examples/test-project/policies/03-allow-ingress-from-vm-b-to-vm-a.yaml");
const ALLOW_DNS: Bundled =
    bundled!("examples/test-project/policies/04-allow-egress-from-vm-a-to-8-8-8-8.yaml");
const PORT_RANGE: Bundled =
    bundled!("examples/test-project/policies/05-allow-egress-from-vm-a-port-range.yaml");
const ALLOW_NAMESPACE: Bundled = bundled!(
    "examples/test-project/policies/06-allow-ingress-from-namespace-another-project-to-vm-a.yaml"
);
/// Step 8: an Admin-tier ClusterNetworkPolicy guarantees the DNS host to every VM.
const ADMIN_DNS: Bundled = bundled!("examples/tiers/admin-dns-host-for-every-vm.yaml");
/// Step 9: a Baseline-tier ClusterNetworkPolicy denies cross-project traffic.
const BASELINE_CROSS_PROJECT: Bundled = bundled!("examples/tiers/baseline-cross-project.yaml");
/// The page's mistake: `ports` indented under the peer.
pub(super) const MISTAKE: Bundled = bundled!("examples/mistakes/egress-ports-under-peer.yaml");

/// The port every VM-to-VM matrix is probed on.
pub const MATRIX_PORT: u16 = 80;

/// A flow to the external DNS host.
pub(super) struct Flow {
    pub from: &'static str,
    pub protocol: Protocol,
    pub port: u16,
}

/// Flows to the external DNS host probed at every policy step.
pub(super) const EXTERNAL_FLOWS: [Flow; 4] = [
    Flow {
        from: "test-project/vm-a",
        protocol: Protocol::Tcp,
        port: 53,
    },
    Flow {
        from: "test-project/vm-a",
        protocol: Protocol::Udp,
        port: 53,
    },
    Flow {
        from: "test-project/vm-a",
        protocol: Protocol::Tcp,
        port: 32000,
    },
    Flow {
        from: "test-project/vm-b",
        protocol: Protocol::Tcp,
        port: 53,
    },
];

/// Flows probed after the mistaken policy is loaded: the misplaced `ports` opens every port.
pub(super) const MISTAKE_FLOWS: [Flow; 2] = [
    Flow {
        from: "test-project/vm-a",
        protocol: Protocol::Tcp,
        port: 53,
    },
    Flow {
        from: "test-project/vm-a",
        protocol: Protocol::Tcp,
        port: 80,
    },
];

/// What every host of the demo listens on: the matrix port and the external flows' ports.
pub(super) const LISTEN: [(Protocol, u16); 4] = [
    (Protocol::Tcp, MATRIX_PORT),
    (Protocol::Tcp, 53),
    (Protocol::Udp, 53),
    (Protocol::Tcp, 32000),
];

/// One step of the page.
pub(super) struct Step {
    pub title: &'static str,
    /// The policy added at this step (cumulative), or none for the first step.
    pub adds: Option<Bundled>,
    pub explanation: &'static str,
}

/// The page's policy steps, in order, then the admin tiers over them; the mistake follows.
pub(super) const STEPS: [Step; 9] = [
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
    Step {
        title: "An administrator guarantees DNS to every VM (Admin tier)",
        adds: Some(ADMIN_DNS),
        explanation: "A ClusterNetworkPolicy in the Admin tier decides before any NetworkPolicy: every VM may reach the DNS host on 53/UDP and 53/TCP, so vm-a's UDP 53 gets through although its own policies name TCP only.",
    },
    Step {
        title: "A baseline denies cross-project traffic (Baseline tier)",
        adds: Some(BASELINE_CROSS_PROJECT),
        explanation: "A ClusterNetworkPolicy in the Baseline tier decides only for workloads no NetworkPolicy isolates: vm-c can no longer reach vm-b (or vm-b vm-c), but still reaches vm-a, whose own policy from step 7 opens it.",
    },
];

/// The step after the policy steps.
pub(super) const MISTAKE_TITLE: &str = "the page's indentation mistake";
pub(super) const MISTAKE_EXPLANATION: &str = "Loaded anyway (as kubectl --validate=warn or an old API server would), with vm-a isolated both ways:";
pub(super) const MISTAKE_CONCLUSION: &str = "The misplaced `ports` is dropped, so the rule allows every port to the DNS host (TCP 80 gets through).";
