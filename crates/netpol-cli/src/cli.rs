//! Command-line arguments. Every command's `--help` ends with an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "netpol",
    version,
    about = "Kubernetes NetworkPolicy for virtual machines and pods: analyze, enforce with nftables, prove with real packets",
    after_help = "Exit codes: 0 success (allowed / no mismatch), 1 denied or mismatch, 2 error.\n\nExample:\n  netpol check examples/test-project --from test-project/vm-b --to test-project/vm-a --port 80"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Can A reach B on a port, and why.
    #[command(
        after_help = "Examples:\n  netpol check examples/test-project --from test-project/vm-b --to test-project/vm-a --port 80\n  netpol check examples/test-project --from test-project/vm-a --to 8.8.8.8 --port 53 -o json\n  netpol check -A --context prod --from deployment/shop/web --to shop/db --port 5432   # live\n\nREF is namespace/name of a Pod or VM (vm/ns/name or pod/ns/name when both exist), node/NAME, or an\nIP address (a workload's: that workload over exactly that address; a node's; or one outside the\ncluster). Dual-stack pairs are answered per family where the families differ. Exit 0 allowed, 1 denied, 2 error."
    )]
    Check(CheckArgs),
    /// The truth table for one port, or the whole connectivity map.
    #[command(
        after_help = "Examples:\n  netpol matrix examples/test-project --port 80 --protocol TCP\n  netpol matrix examples/test-project --port 80 -o json\n  netpol matrix examples/test-project            # every allowed port range between every pair\n  kubectl get ns,netpol,vm,pods -A -o yaml | netpol matrix - --port 22 -o summary"
    )]
    Matrix(MatrixArgs),
    /// What changes in connectivity between two versions of the manifests, and why: a CI gate.
    #[command(
        after_help = "Examples:\n  netpol diff old/ new/\n  netpol diff --git origin/main manifests/ -o md      # a pull-request comment\n  helm template chart | netpol diff manifests/ -\n  netpol diff --live -A manifests/                    # the cluster now, and once they are applied\n\nPairs of endpoints on both sides are listed with the ports gained and lost (up to --limit);\nan endpoint on one side only is one line with its connection counts. Exit 0 no change in\nconnectivity, 1 changed, 2 error."
    )]
    Diff(DiffArgs),
    /// List VMs, pods or both with their isolation, like `d8 k get vm`.
    #[command(
        after_help = "Examples:\n  netpol get vms -A examples/test-project\n  netpol get workloads -n test-project examples/test-project\n  netpol get policies -A                     # the live cluster of the current kubeconfig context"
    )]
    Get(GetArgs),
    /// One self-contained HTML page: the connectivity graph, isolation, lint findings, exposure.
    #[command(
        after_help = "Examples:\n  netpol report examples/test-project -o html > report.html\n  netpol report examples/test-project -o json   # the data the page draws\n\nThe page needs no network (no CDN): open it from file://. Search and filters work offline."
    )]
    Report(ReportArgs),
    /// Compile the policies of one node into its nftables ruleset.
    #[command(
        after_help = "Examples:\n  netpol compile examples/test-project --node virtlab-2\n  netpol compile examples/test-project --node virtlab-2 -o json\n  netpol compile examples/test-project --node virtlab-2 | sudo nft -c -f -   # validate"
    )]
    Compile(CompileArgs),
    /// Build the lab, enforce every node's ruleset, send real packets between every pair and compare with the analyzer.
    #[command(
        after_help = "Examples:\n  sudo netpol probe examples/test-project --port 80\n  sudo netpol probe examples/test-project --port 53 --protocol UDP -o json\n\nNeeds root, nft and ip. Exit 0 when the kernel did exactly what the analyzer predicted, 1 on any mismatch, 2 on error."
    )]
    Probe(ProbeArgs),
    /// Build the lab from manifests and keep it up for exploring by hand, until Ctrl-C.
    #[command(
        after_help = "Examples:\n  sudo netpol lab examples/test-project --listen TCP/80 --listen UDP/53 --external 192.0.2.53\n  # then, in another terminal (names are printed):\n  sudo ip netns exec <workload netns> nc -vz 10.66.20.70 80\n  sudo ip netns exec <node netns> nft list table inet netpol\n\nOne network namespace per node (a router enforcing its ruleset) and per workload (its real\naddresses on a veth to its node). Everything is removed on Ctrl-C or SIGTERM."
    )]
    Lab(LabArgs),
    /// Walk through the user's page on real packets: each policy, the probed matrix and the prediction.
    #[command(
        after_help = "Example:\n  sudo netpol demo\n\nNeeds root, nft and ip. Everything it creates is removed on exit, on error and on Ctrl-C."
    )]
    Demo(DemoArgs),
    /// Run the node agent: follow manifests or the Kubernetes API and keep this node enforcing.
    #[command(
        after_help = "Examples:\n  netpol agent --node-name virtlab-1 --manifests /etc/netpol/manifests\n  netpol agent --kube --node-name $NODE_NAME --log-format json      # in a DaemonSet (see deploy/)\n  netpol agent --kubeconfig ~/.kube/config --node-name virtlab-1\n\nRules stay in force when the agent stops (SIGTERM), so a restart never opens traffic;\n--cleanup-on-exit removes them. Metrics, /healthz and /readyz are served on --listen.\nEach denied flow is logged with the policies that deny it unless --no-denied-flow-log."
    )]
    Agent(AgentArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  netpol completions bash > /etc/bash_completion.d/netpol\n  netpol completions zsh > \"${fpath[1]}/_netpol\"\n  netpol completions fish > ~/.config/fish/completions/netpol.fish"
    )]
    Completions(CompletionsArgs),
    /// Find policies that probably do not do what their author meant.
    #[command(
        after_help = "Examples:\n  netpol lint examples/test-project\n  netpol lint examples/mistakes --fail-on warning\n  netpol lint k8s/ -o sarif > netpol.sarif      # for code-scanning UIs\n\nManifests are always loaded in warn mode (--validate is ignored): unknown and misplaced fields\nbecome findings (NP009) instead of rejecting the object. Findings: NP001 policy selects no\nworkload, NP002 peer selects nothing, NP003 redundant rule or policy, NP004 egress isolation\nwithout DNS, NP005 ipBlock covering workload addresses, NP006 unknown named port, NP007 Egress\nwithout egress rules, NP008 namespaceSelector and podSelector as two peers, NP009 unknown or\nmisplaced field, NP010 duplicate field.\nExit 0 no finding at or above --fail-on (or no --fail-on), 1 otherwise, 2 error."
    )]
    Lint(LintArgs),
    /// Which workloads accept connections from outside the cluster, every namespace or everything; which reach outside.
    #[command(
        after_help = "Examples:\n  netpol exposure examples/test-project\n  netpol exposure examples/test-project -o md\n  netpol exposure examples/test-project --ipblock-matches-workloads false -o json\n\nOutside the cluster means every address that is neither a workload's nor a node's; the address\nsets are computed exactly from the ipBlocks. Exit 0, 2 on error."
    )]
    Exposure(ExposureArgs),
    /// Generate a synthetic cluster and time the analyzer on it.
    #[command(
        after_help = "Examples:\n  netpol bench                       # 10,000 workloads, 200 namespaces, 2,000 policies\n  netpol bench --workloads 1000 --write /tmp/synthetic.yaml"
    )]
    Bench(BenchArgs),
}

/// Options shared by every command that reads manifests or a live cluster.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Manifest files or directories (recursive: .yaml, .yml, .json), or `-` for stdin. With
    /// none, the live cluster is read, like kubectl (see --kubeconfig, --context, -n, -A).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// How to treat unknown or duplicate fields, like `kubectl --validate`.
    #[arg(long, value_enum, default_value_t = Validate::Strict)]
    pub validate: Validate,
    /// Whether an ipBlock also matches in-cluster workload addresses (true: upstream conformance
    /// behaviour; false: Cilium, which Deckhouse uses).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub ipblock_matches_workloads: bool,
    /// Resolve a domain name for admin policies' `domainNames` peers (repeatable:
    /// `--resolve api.example.com=192.0.2.10`); without it such peers match nothing. The
    /// kernel does not enforce domainNames either way.
    #[arg(long, value_name = "NAME=IP", value_parser = parse_resolve)]
    pub resolve: Vec<(String, std::net::IpAddr)>,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// Which live cluster to read, and how much of it: kubectl's flags.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
#[command(next_help_heading = "A live cluster (read with no PATH; diff: with --live)")]
pub struct LiveArgs {
    /// The kubeconfig file; default $KUBECONFIG (files merged as kubectl does), else
    /// ~/.kube/config, else the pod's service account (in a cluster).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use instead of its current-context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Read namespaced objects (pods, VMs, NetworkPolicies, controllers) of this namespace only;
    /// default: the context's namespace (else `default`), as kubectl. Namespaces, Nodes and the
    /// admin policies are always read whole. With PATHs, only `get` takes it (it filters the
    /// listing).
    #[arg(
        short = 'n',
        long,
        value_name = "NS",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,
    /// Read every namespace. With PATHs, only `get` takes it (every namespace is listed anyway).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

impl LiveArgs {
    /// The flags that only make sense for a live cluster, as the user typed them.
    pub fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        if self.kubeconfig.is_some() {
            given.push("--kubeconfig");
        }
        if self.context.is_some() {
            given.push("--context");
        }
        if self.namespace.is_some() {
            given.push("--namespace");
        }
        if self.all_namespaces {
            given.push("--all-namespaces");
        }
        given
    }
}

/// `NAME=IP` of `--resolve`.
fn parse_resolve(text: &str) -> Result<(String, std::net::IpAddr), String> {
    let (name, ip) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected NAME=IP, e.g. api.example.com=192.0.2.10"))?;
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err(format!("{text:?}: the name is empty"));
    }
    let ip = ip
        .trim()
        .parse()
        .map_err(|e| format!("{text:?}: {ip:?} is not an IP address ({e})"))?;
    Ok((name, ip))
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validate {
    /// Reject an object with an unknown or duplicate field.
    Strict,
    /// Keep the object, drop the field, warn.
    Warn,
    /// Keep the object, drop the field silently.
    Ignore,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Source: ns/name, KIND/ns/name (vm, pod, deployment, ...), node/NAME, or an IP address.
    #[arg(long, value_name = "REF")]
    pub from: String,
    /// Destination: ns/name, KIND/ns/name (vm, pod, deployment, ...), node/NAME, or an IP address.
    #[arg(long, value_name = "REF")]
    pub to: String,
    /// Destination port (1-65535).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// TCP, UDP or SCTP.
    #[arg(long, default_value = "TCP")]
    pub protocol: String,
    /// The workload reaches itself through a Service that load-balances back to it (hairpin):
    /// subject to the admin tiers, unlike reaching its own address. --from and --to must name
    /// the same workload.
    #[arg(long)]
    pub via_service: bool,
    #[arg(short, long, value_enum, default_value_t = CheckFormat::Text)]
    pub output: CheckFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct MatrixArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Destination port; without it, the full connectivity map over every port and protocol.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// TCP, UDP or SCTP (with --port).
    #[arg(long, default_value = "TCP", requires = "port")]
    pub protocol: String,
    /// table, json, csv, md or summary (with --port); text, json, summary, dot (Graphviz) or
    /// mermaid (without).
    #[arg(short, long, value_enum)]
    pub output: Option<MatrixFormat>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixFormat {
    Table,
    Text,
    Json,
    Csv,
    Md,
    Summary,
    /// A Graphviz digraph of the connectivity map.
    Dot,
    /// A Mermaid flowchart of the connectivity map.
    Mermaid,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// OLD NEW: each a manifest file, directory or `-` (stdin, for one of them); with --git, the
    /// paths to compare (default `.`).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Compare PATHs as they are at this git revision (OLD) with the working tree (NEW).
    #[arg(long, value_name = "REV", conflicts_with = "live")]
    pub git: Option<String>,
    /// Compare the live cluster (OLD) with the cluster once PATHs are applied to it (NEW: every
    /// object of PATHs replaces the live one of the same kind, namespace and name, or is added).
    #[arg(long)]
    pub live: bool,
    #[arg(short, long, value_enum, default_value_t = DiffFormat::Text)]
    pub output: DiffFormat,
    /// List at most this many changed pairs and one-sided endpoints (0: all); counts are always
    /// complete.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub limit: usize,
    /// How to treat unknown or duplicate fields, like `kubectl --validate`.
    #[arg(long, value_enum, default_value_t = Validate::Strict)]
    pub validate: Validate,
    /// Whether an ipBlock also matches in-cluster workload addresses (see `netpol check --help`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub ipblock_matches_workloads: bool,
    /// Resolve a domain name for admin policies' `domainNames` peers (repeatable:
    /// `--resolve api.example.com=192.0.2.10`); without it such peers match nothing. The
    /// kernel does not enforce domainNames either way.
    #[arg(long, value_name = "NAME=IP", value_parser = parse_resolve)]
    pub resolve: Vec<(String, std::net::IpAddr)>,
    /// The live cluster of --live.
    #[command(flatten)]
    pub cluster: LiveArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffFormat {
    Text,
    Json,
    /// Markdown for a pull-request comment.
    Md,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// html (the page) or json (the data it draws).
    #[arg(short, long, value_enum, default_value = "html")]
    pub output: ReportFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Json,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// vms, pods, workloads, nodes or policies.
    #[arg(value_enum)]
    pub what: GetWhat,
    #[command(flatten)]
    pub input: InputArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetWhat {
    #[value(alias = "vm", alias = "virtualmachines")]
    Vms,
    #[value(alias = "pod")]
    Pods,
    #[value(alias = "workload")]
    Workloads,
    #[value(alias = "node", alias = "no")]
    Nodes,
    /// The policies of every tier (ClusterNetworkPolicy, AdminNetworkPolicy, NetworkPolicy,
    /// BaselineAdminNetworkPolicy) in the order they decide, with how many workloads each selects.
    #[value(alias = "policy", alias = "netpol", alias = "cnp")]
    Policies,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 10_000)]
    pub workloads: usize,
    #[arg(long, default_value_t = 200)]
    pub namespaces: usize,
    #[arg(long, default_value_t = 2_000)]
    pub policies: usize,
    #[arg(long, default_value_t = 20)]
    pub nodes: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Add this many admin-tier policies (ClusterNetworkPolicies of both tiers, ANPs and the
    /// BANP, using every feature) with Node objects and resolved names.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub admin_policies: usize,
    /// Also write the synthetic cluster as YAML manifests to this file (and time loading it).
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Also time `netpol diff` (both maps, the diff, the text) this many rounds against an edited
    /// copy of the cluster, and once against the cluster of the next seed.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub diff_rounds: usize,
}

/// What a node's table does beyond the policies (`compile` and `agent`).
#[derive(Args, Debug)]
pub struct NodeTableArgs {
    /// The bits of the conntrack mark the table may use for peer classes, as a mask
    /// (0xffff0000) or a bit range (16-31); every other bit is left alone.
    #[arg(long, default_value_t = netpol_nft::CtMarkBits::DEFAULT, value_name = "MASK")]
    pub ct_mark_bits: netpol_nft::CtMarkBits,
    /// Drop packets arriving through a workload interface from a source the node does not route
    /// back through it (a guest using an address it does not own); `off` leaves that to the CNI
    /// (Calico, Cilium).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub source_check: Switch,
    /// The host-side names of workload interfaces the source check applies to, comma-separated;
    /// a trailing `*` matches any suffix.
    #[arg(long, value_delimiter = ',', value_name = "NAMES",
          default_values_t = netpol_nft::DEFAULT_WORKLOAD_INTERFACES.iter().map(|s| s.to_string()))]
    pub workload_interfaces: Vec<String>,
}

/// On or off.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

impl NodeTableArgs {
    /// The node options these arguments give, or why they are unusable.
    pub fn node_options(&self) -> anyhow::Result<netpol_nft::NodeOptions> {
        for name in &self.workload_interfaces {
            netpol_nft::check_interface_pattern(name).map_err(anyhow::Error::msg)?;
        }
        Ok(netpol_nft::NodeOptions {
            ct_mark_bits: self.ct_mark_bits,
            source_check: match self.source_check {
                Switch::On => netpol_nft::SourceCheck::Interfaces(self.workload_interfaces.clone()),
                Switch::Off => netpol_nft::SourceCheck::Off,
            },
        })
    }
}

#[derive(Args, Debug)]
pub struct CompileArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The node whose workloads the ruleset enforces (their `spec.nodeName` / `status.nodeName`).
    #[arg(long)]
    pub node: String,
    #[arg(short, long, value_enum, default_value_t = CompileFormat::Nft)]
    pub output: CompileFormat,
    #[command(flatten)]
    pub node_table: NodeTableArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileFormat {
    /// The nft script, ready for `nft -f`.
    Nft,
    /// The summary (local workloads, identities, set sizes) and the script.
    Json,
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// TCP, UDP or SCTP.
    #[arg(long, default_value = "TCP")]
    pub protocol: String,
    #[arg(short, long, value_enum, default_value_t = ProbeFormat::Table)]
    pub output: ProbeFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Print only the final verdict line and any mismatch.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The node whose workloads this agent enforces.
    #[arg(long, alias = "node", env = "NODE_NAME")]
    pub node_name: String,
    /// A directory of manifests to follow (repeatable).
    #[arg(long, value_name = "DIR")]
    pub manifests: Vec<PathBuf>,
    /// Follow the Kubernetes API with the in-cluster service account (or $KUBECONFIG).
    #[arg(long)]
    pub kube: bool,
    /// Follow the Kubernetes API described by this kubeconfig file.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Keep the last good version of every API object in a file in this directory, so that an
    /// object that is invalid when the agent restarts is still enforced as it last was valid
    /// (deploy/ mounts a hostPath here).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Seconds an API request other than a watch (discovery, a list page, a watch start) may
    /// take before it is abandoned, reported on /readyz and retried.
    #[arg(long, default_value_t = 20.0, value_name = "SECONDS")]
    pub request_timeout: f64,
    /// Seconds an API watch may send nothing (no event, no bookmark) before it is restarted
    /// from its last resourceVersion. Keep it above 60: a quiet watch gets a bookmark a minute.
    #[arg(long, default_value_t = 90.0, value_name = "SECONDS")]
    pub watch_idle_timeout: f64,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "127.0.0.1:9402")]
    pub listen: std::net::SocketAddr,
    #[arg(long, value_enum, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,
    /// Seconds between checks that the kernel still holds the applied ruleset.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub drift_interval: f64,
    /// Remove the rules when the agent stops (default: leave them in force).
    #[arg(long)]
    pub cleanup_on_exit: bool,
    /// Enforce inside this named network namespace instead of the agent's own.
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Whether an ipBlock also matches in-cluster workload addresses (see `netpol check --help`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub ipblock_matches_workloads: bool,
    /// Do not log denied flows. By default the agent receives the packets the table drops (NFLOG
    /// group 28272, at most 50 a second node-wide) and logs each denied flow once per 10 s with
    /// the workloads and the policies that deny it (log target netpol_agent::denied).
    #[arg(long)]
    pub no_denied_flow_log: bool,
    #[command(flatten)]
    pub node_table: NodeTableArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct LabArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// A listener every workload runs: PROTOCOL/PORT (repeatable; TCP/80 when none is given).
    #[arg(long, value_name = "PROTOCOL/PORT")]
    pub listen: Vec<String>,
    /// An address outside the cluster that gets a host of its own (repeatable; documentation
    /// ranges such as 192.0.2.0/24 recommended).
    #[arg(long, value_name = "IP")]
    pub external: Vec<std::net::IpAddr>,
    /// Do not load the compiled rulesets: every node forwards everything.
    #[arg(long)]
    pub no_enforce: bool,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Exit 1 when a finding of this severity or worse exists.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    #[arg(short, long, value_enum, default_value_t = LintFormat::Text)]
    pub output: LintFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Warnings and errors.
    Warning,
    /// Errors only.
    Error,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LintFormat {
    Text,
    Json,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
}

#[derive(Args, Debug)]
pub struct ExposureArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Also list workloads that expose nothing.
    #[arg(long)]
    pub all: bool,
    #[arg(short, long, value_enum, default_value_t = ExposureFormat::Text)]
    pub output: ExposureFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExposureFormat {
    Text,
    Json,
    /// Markdown, for a pull-request comment.
    Md,
}
