//! The agent's settings as plain values (argument parsing is `netpol-cli`'s).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use netpol_core::EvalOptions;

use crate::AgentError;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Where and how to follow the Kubernetes API.
#[derive(Clone, Debug)]
pub struct KubeConfig {
    /// An explicit API server URL (tests, `kubectl proxy`); `None` uses the in-cluster service
    /// account or the kubeconfig, as `kube::Config::infer` does.
    pub api_server: Option<String>,
    /// Also watch Deckhouse VirtualMachines when the CRD exists (default true).
    pub watch_virtual_machines: bool,
    /// Also watch KubeVirt VirtualMachineInstances when the CRD exists (default true).
    pub watch_virtual_machine_instances: bool,
    /// How often the API is asked again whether a missing VM CRD has been installed since
    /// (default 30 s).
    pub crd_recheck_interval: Duration,
    /// A kubeconfig file to read instead of inferring (`$KUBECONFIG`, `~/.kube/config`, or the
    /// in-cluster service account). Ignored when `api_server` is set.
    pub kubeconfig: Option<PathBuf>,
    /// The longest wait for the answer to one request that is not a watch (discovery, a page
    /// of a list, the start of a watch); a request not answered by then is abandoned, the kind
    /// is reported stuck on `/readyz` and retried (default 20 s).
    pub request_timeout: Duration,
    /// How long an established watch may send nothing at all (no event and no bookmark) before
    /// it is treated as dead and restarted from its last resourceVersion. The agent asks for
    /// bookmarks, which a real API server sends about once a minute on a quiet watch, so this
    /// must stay above a minute (default 90 s).
    pub watch_idle_timeout: Duration,
    /// The first retry delay after a failed request; it doubles per failure in a row up to
    /// `backoff_max`, each delay drawn at random between half of it and all of it (jitter, so
    /// that the nodes of a cluster do not retry in step). Default 250 ms.
    pub backoff_initial: Duration,
    /// The cap of the retry delay (default 4 s): once the API answers again, every kind is
    /// back within this long.
    pub backoff_max: Duration,
    /// Where the last good version of every object is kept across restarts
    /// (`kube-last-good.json` in this directory): an object that arrives invalid (after a
    /// restart too) is enforced as its last good version until a valid one arrives. `None`
    /// keeps last good versions in memory only.
    pub state_dir: Option<PathBuf>,
}

impl Default for KubeConfig {
    fn default() -> Self {
        KubeConfig::in_cluster()
    }
}

impl KubeConfig {
    /// In-cluster (or kubeconfig) access, watching every supported kind.
    pub fn in_cluster() -> Self {
        KubeConfig {
            api_server: None,
            watch_virtual_machines: true,
            watch_virtual_machine_instances: true,
            crd_recheck_interval: Duration::from_secs(30),
            kubeconfig: None,
            request_timeout: Duration::from_secs(20),
            watch_idle_timeout: Duration::from_secs(90),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(4),
            state_dir: None,
        }
    }
}

impl KubeConfig {
    fn validate(&self) -> Result<(), AgentError> {
        let positive = [
            ("request timeout", self.request_timeout),
            ("watch idle timeout", self.watch_idle_timeout),
            ("initial backoff", self.backoff_initial),
            ("backoff cap", self.backoff_max),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
            return Err(AgentError::Config(format!("the {name} must be positive")));
        }
        if self.backoff_max < self.backoff_initial {
            return Err(AgentError::Config(
                "the backoff cap is below the initial backoff".into(),
            ));
        }
        Ok(())
    }
}

/// Everything the agent needs; plain values, no argument parsing.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The node whose workloads this agent enforces (downward API `spec.nodeName`).
    pub node_name: String,
    /// Directories of manifests to follow (recursively; `.yaml`, `.yml`, `.json`).
    pub manifest_dirs: Vec<PathBuf>,
    /// Follow the Kubernetes API as well.
    pub kube: Option<KubeConfig>,
    /// The network namespace to enforce in; `None` is the agent's own (the node's, with
    /// hostNetwork).
    pub netns: Option<String>,
    /// `/metrics`, `/healthz`, `/readyz`. Loopback by default.
    pub listen: SocketAddr,
    /// The shortest time between the end of one sync and the start of the next: a change after
    /// a quiet period is synced at once; changes arriving within this window after a sync are
    /// handled together by one sync when it ends.
    pub coalesce_window: Duration,
    /// The file watcher's debounce window: a file is read once no event touched the directory
    /// for this long. Short (20 ms by default) because it adds to every change's enforcement
    /// delay; a writer that is still writing keeps producing events and so keeps the window open,
    /// and a file read half-written only fails to load (its last good content stays) until the
    /// next event.
    pub file_debounce: Duration,
    /// How often the kernel's table is compared with what was applied.
    pub drift_interval: Duration,
    /// First retry delay after a failed apply; doubles up to `retry_max`.
    pub retry_initial: Duration,
    /// Longest retry delay after repeated failed applies.
    pub retry_max: Duration,
    /// Remove the table when the agent stops (default: leave the rules in force).
    pub cleanup_on_exit: bool,
    /// Choices where NetworkPolicy implementations differ, as for `netpol check`.
    pub eval_options: EvalOptions,
    /// How log lines are written (text or JSON).
    pub log_format: LogFormat,
    /// Receive the packets the table drops (NFLOG group `netpol_nft::DENIED_LOG_GROUP`, in
    /// `netns`) and log each denied flow with the policies that deny it (default true).
    pub denied_flow_log: bool,
    /// The bits of the conntrack mark the table may use for peer classes (`--ct-mark-bits`,
    /// `0xffff0000` by default); every other bit of a connection's mark is left alone.
    pub ct_mark_bits: netpol_nft::CtMarkBits,
}

impl AgentConfig {
    /// Defaults for one node: loopback metrics on port 9402, 10 s drift checks.
    pub fn new(node_name: impl Into<String>) -> Self {
        AgentConfig {
            node_name: node_name.into(),
            manifest_dirs: Vec::new(),
            kube: None,
            netns: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 9402)),
            coalesce_window: Duration::from_millis(100),
            file_debounce: Duration::from_millis(20),
            drift_interval: Duration::from_secs(10),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
            cleanup_on_exit: false,
            eval_options: EvalOptions::default(),
            log_format: LogFormat::Text,
            denied_flow_log: true,
            ct_mark_bits: netpol_nft::CtMarkBits::DEFAULT,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), AgentError> {
        if self.node_name.trim().is_empty() {
            return Err(AgentError::Config("the node name is empty".into()));
        }
        if self.manifest_dirs.is_empty() && self.kube.is_none() {
            return Err(AgentError::Config(
                "no source: give a manifest directory or enable the Kubernetes API".into(),
            ));
        }
        if self.drift_interval.is_zero() || self.retry_initial.is_zero() {
            return Err(AgentError::Config(
                "drift interval and retry delay must be positive".into(),
            ));
        }
        if let Some(kube) = &self.kube {
            kube.validate()?;
        }
        Ok(())
    }
}
