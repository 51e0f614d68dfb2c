//! The analysis commands reading a live cluster (no PATH), the kubectl way. THE API SERVER IS A
//! FAKE (netpol-test-support's fake_apiserver: no real one can run in tests); it speaks the real
//! protocol (discovery, paged lists cluster-wide and per namespace, 403 answers) to the real kube
//! client, and the `netpol` binary is the real one.
//!
//! Every answer is held against the same command on the same objects given as files: each
//! object is one file (its JSON on one line, as the API serves it) named `Kind/namespace/name`,
//! the name the live read gives it in diagnostics and provenance, so the outputs must be equal
//! byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use netpol_test_support::fake_apiserver::FakeApi;
use serde_json::{json, Value};

const DECKHOUSE_VM: &str = "virtualization.deckhouse.io/v1alpha2";
const POLICY_V2: &str = "policy.networking.k8s.io/v1alpha2";

/// One object of the small cluster: its plural (where the fake serves it) and itself.
struct Object {
    plural: &'static str,
    value: Value,
}

fn object(plural: &'static str, value: Value) -> Object {
    Object { plural, value }
}

fn namespace(name: &str, team: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, "team": team}}})
}

fn pod(ns: &str, name: &str, app: &str, ip: &str, port: u16) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-20T09:20:11Z"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": "registry.example/app:1",
            "ports": [{"name": "serve", "containerPort": port, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
}

/// A policy of `ns` isolating `app` for ingress and letting `from` in on `port`.
fn ingress_policy(ns: &str, name: &str, app: &str, from: &str, port: u16) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": from}}}],
                "ports": [{"protocol": "TCP", "port": port}]}]}})
}

/// The small cluster, kind by kind in the order the live read lists kinds (netpol-k8s's
/// `READ_KINDS`), each kind's objects by `namespace/name`.
fn small_cluster() -> Vec<Object> {
    vec![
        object("namespaces", namespace("shop", "a")),
        object("namespaces", namespace("web", "b")),
        object("pods", pod("shop", "api", "api", "10.1.0.10", 8080)),
        object("pods", pod("shop", "db", "db", "10.1.0.11", 5432)),
        object("pods", replica("shop", "shopfront", "7c9f", "10.1.0.12")),
        object("pods", pod("web", "frontend", "frontend", "10.1.1.10", 80)),
        object(
            "networkpolicies",
            ingress_policy("shop", "db-from-api", "db", "api", 5432),
        ),
        object(
            "networkpolicies",
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny", "namespace": "web"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
        ),
        object(
            "virtualmachines",
            json!({"apiVersion": DECKHOUSE_VM, "kind": "VirtualMachine",
                "metadata": {"name": "vm-a", "namespace": "shop", "labels": {"vm": "a"}},
                "spec": {"runPolicy": "AlwaysOn", "virtualMachineClassName": "generic"},
                "status": {"ipAddress": "10.66.20.70", "nodeName": "n2", "phase": "Running"}}),
        ),
        object(
            "clusternetworkpolicies",
            json!({"apiVersion": POLICY_V2, "kind": "ClusterNetworkPolicy",
                "metadata": {"name": "team-b-never-reaches-shop"},
                "spec": {"tier": "Admin", "priority": 10,
                    "subject": {"namespaces": {"matchLabels": {"team": "a"}}},
                    "ingress": [{"name": "deny-team-b", "action": "Deny",
                        "from": [{"namespaces": {"matchLabels": {"team": "b"}}}]}]}}),
        ),
        object(
            "nodes",
            json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
                "status": {"addresses": [{"type": "InternalIP", "address": "10.66.10.11"},
                    {"type": "Hostname", "address": "n1"}]}}),
        ),
        object(
            "deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "shopfront", "namespace": "shop"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "shopfront"}},
                    "template": {"metadata": {"labels": {"app": "shopfront"}},
                        "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]}}}}),
        ),
        object(
            "replicasets",
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": "shopfront-7c9f", "namespace": "shop",
                    "labels": {"app": "shopfront", "pod-template-hash": "7c9f"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                        "name": "shopfront", "uid": "u-1", "controller": true}]},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "shopfront"}},
                    "template": {"metadata": {"labels": {"app": "shopfront", "pod-template-hash": "7c9f"}},
                        "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]}}}}),
        ),
    ]
}

/// A Pod of the Deployment `deployment` (through its ReplicaSet `deployment-hash`).
fn replica(ns: &str, deployment: &str, hash: &str, ip: &str) -> Value {
    let mut p = pod(
        ns,
        &format!("{deployment}-{hash}-x2x7q"),
        deployment,
        ip,
        8080,
    );
    p["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": format!("{deployment}-{hash}"), "uid": "u-2", "controller": true}]);
    p
}

/// The fake API server (on its own runtime), a kubeconfig for it, and the objects as files.
struct Fixture {
    _runtime: tokio::runtime::Runtime,
    fake: FakeApi,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    /// The object files, relative to `dir`, in the order the live read loads them.
    files: Vec<String>,
}

fn start(objects: &[Object]) -> (tokio::runtime::Runtime, FakeApi) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeApi::start());
    fake.serve_group(DECKHOUSE_VM, "virtualmachines", "VirtualMachine");
    fake.serve_group(POLICY_V2, "clusternetworkpolicies", "ClusterNetworkPolicy");
    for o in objects {
        fake.apply(o.plural, o.value.clone());
    }
    (runtime, fake)
}

/// `contexts`: (name, server, namespace of the context).
fn write_kubeconfig(path: &Path, contexts: &[(&str, &str, Option<&str>)], current: &str) {
    let clusters: Vec<Value> = contexts
        .iter()
        .map(|(name, server, _)| json!({"name": name, "cluster": {"server": server}}))
        .collect();
    let named: Vec<Value> = contexts
        .iter()
        .map(|(name, _, ns)| {
            let mut context = json!({"cluster": name, "user": "tester"});
            if let Some(ns) = ns {
                context["namespace"] = json!(ns);
            }
            json!({"name": name, "context": context})
        })
        .collect();
    let config = json!({"apiVersion": "v1", "kind": "Config", "clusters": clusters,
        "contexts": named, "users": [{"name": "tester", "user": {"token": "t"}}],
        "current-context": current});
    std::fs::write(path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

/// `Kind/namespace/name` (`Kind/name` when cluster-scoped), the live read's name of `value`.
fn live_name(value: &Value) -> String {
    let meta = &value["metadata"];
    let name = meta["name"].as_str().unwrap();
    let kind = value["kind"].as_str().unwrap();
    match meta["namespace"].as_str() {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

fn write_files(dir: &Path, objects: &[Object]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            let name = live_name(&o.value);
            let path = dir.join(&name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, o.value.to_string()).unwrap();
            name
        })
        .collect()
}

fn fixture_of(objects: Vec<Object>) -> Fixture {
    let (runtime, fake) = start(&objects);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    write_kubeconfig(&kubeconfig, &[("fake", &fake.url(), None)], "fake");
    let files = write_files(dir.path(), &objects);
    Fixture {
        _runtime: runtime,
        fake,
        dir,
        kubeconfig,
        files,
    }
}

fn fixture() -> Fixture {
    fixture_of(small_cluster())
}

/// netpol in the fixture's directory, with no kubeconfig but the ones the test names (HOME and
/// KUBECONFIG point nowhere).
fn netpol(fx: &Fixture, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netpol"))
        .current_dir(fx.dir.path())
        .env_remove("KUBECONFIG")
        .env("HOME", fx.dir.path().join("no-home"))
        .args(args)
        .output()
        .expect("netpol runs")
}

/// `args` against the live cluster (the fixture's kubeconfig).
fn live(fx: &Fixture, args: &[&str]) -> Output {
    let kubeconfig = fx.kubeconfig.display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--kubeconfig", &kubeconfig]);
    netpol(fx, &all)
}

/// `args` with the object files as PATHs.
fn files(fx: &Fixture, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(fx.files.iter().map(String::as_str));
    netpol(fx, &all)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    common::stdout(out)
}

/// The same command live (every namespace) and on the files: same exit code, same stdout.
fn assert_same_answer(fx: &Fixture, args: &[&str]) -> String {
    let mut live_args = args.to_vec();
    live_args.push("-A");
    let (from_live, from_files) = (live(fx, &live_args), files(fx, args));
    assert_eq!(
        stdout(&from_live),
        stdout(&from_files),
        "{args:?}: live and files differ\nlive stderr: {}\nfiles stderr: {}",
        stderr(&from_live),
        stderr(&from_files)
    );
    assert_eq!(
        from_live.status.code(),
        from_files.status.code(),
        "{args:?}\nlive stderr: {}\nfiles stderr: {}",
        stderr(&from_live),
        stderr(&from_files)
    );
    assert!(!stdout(&from_live).is_empty(), "{args:?}: no answer");
    stdout(&from_live)
}

#[test]
fn check_on_the_live_cluster_answers_as_on_the_same_objects_as_files() {
    let fx = fixture();
    let allowed = [
        "check", "--from", "shop/api", "--to", "shop/db", "--port", "5432",
    ];
    assert!(assert_same_answer(&fx, &allowed).contains("ALLOWED"));
    // Denied by the ClusterNetworkPolicy, read from its CRD.
    let denied = [
        "check",
        "--from",
        "web/frontend",
        "--to",
        "shop/db",
        "--port",
        "5432",
    ];
    let text = assert_same_answer(&fx, &denied);
    assert!(text.contains("team-b-never-reaches-shop"), "{text}");
    let vm = [
        "check",
        "--from",
        "shop/vm-a",
        "--to",
        "shop/db",
        "--port",
        "5432",
        "-o",
        "json",
    ];
    assert_same_answer(&fx, &vm);
}

#[test]
fn matrix_get_lint_exposure_and_report_on_the_live_cluster_answer_as_on_files() {
    let fx = fixture();
    let text = assert_same_answer(&fx, &["matrix", "--port", "5432"]);
    assert!(text.contains("vm-a"), "the VM is read: {text}");
    assert_same_answer(&fx, &["matrix", "-o", "json"]);
    let text = assert_same_answer(&fx, &["get", "workloads"]);
    assert!(text.contains("frontend"), "{text}");
    let text = assert_same_answer(&fx, &["get", "policies"]);
    assert!(text.contains("team-b-never-reaches-shop"), "{text}");
    assert_same_answer(&fx, &["lint", "-o", "json"]);
    assert_same_answer(&fx, &["exposure", "--all"]);
    assert_same_answer(&fx, &["report", "-o", "json"]);
}

#[test]
fn the_context_flag_picks_its_server_out_of_a_kubeconfig_with_two_and_an_unknown_one_is_an_error() {
    let fx = fixture();
    let other = vec![
        object("namespaces", namespace("elsewhere", "c")),
        object("pods", pod("elsewhere", "lonely", "lonely", "10.9.0.1", 80)),
    ];
    let (_runtime, other_fake) = start(&other);
    let two = fx.dir.path().join("two-contexts");
    write_kubeconfig(
        &two,
        &[
            ("main", &fx.fake.url(), None),
            ("other", &other_fake.url(), None),
        ],
        "main",
    );
    let two = two.display().to_string();
    let get = |context: Option<&str>| {
        let mut args = vec!["get", "pods", "-A", "--kubeconfig", &two];
        if let Some(c) = context {
            args.extend(["--context", c]);
        }
        netpol(&fx, &args)
    };
    let current = stdout(&get(None));
    assert!(
        current.contains("frontend") && !current.contains("lonely"),
        "{current}"
    );
    let picked = get(Some("other"));
    assert_eq!(common::code(&picked), 0, "{}", stderr(&picked));
    let text = stdout(&picked);
    assert!(
        text.contains("lonely") && !text.contains("frontend"),
        "{text}"
    );

    let unknown = get(Some("prod"));
    assert_eq!(common::code(&unknown), 2);
    let err = stderr(&unknown);
    assert!(err.contains("\"prod\""), "{err}");
    assert!(
        err.contains("main, other"),
        "the contexts that exist: {err}"
    );
}

#[test]
fn one_namespace_is_read_with_n_or_the_contexts_namespace_and_every_one_with_a() {
    let fx = fixture();
    let in_shop = live(&fx, &["get", "workloads", "-n", "shop"]);
    assert_eq!(common::code(&in_shop), 0, "{}", stderr(&in_shop));
    let text = stdout(&in_shop);
    assert!(text.contains("api") && text.contains("vm-a"), "{text}");
    assert!(!text.contains("frontend"), "web is not read: {text}");
    assert!(
        stderr(&in_shop).contains("only namespace shop was read"),
        "{}",
        stderr(&in_shop)
    );
    // The namespaced lists asked the namespace's path: web's pods never left the server.
    let matrix = live(&fx, &["matrix", "--port", "80", "-n", "shop", "-o", "json"]);
    assert!(!stdout(&matrix).contains("frontend"), "{}", stdout(&matrix));

    // The context's namespace is the default, as kubectl.
    let with_ns = fx.dir.path().join("with-namespace");
    write_kubeconfig(&with_ns, &[("fake", &fx.fake.url(), Some("web"))], "fake");
    let with_ns = with_ns.display().to_string();
    let default = netpol(&fx, &["get", "workloads", "--kubeconfig", &with_ns]);
    let text = stdout(&default);
    assert!(text.contains("frontend") && !text.contains("api"), "{text}");
    let err = stderr(&default);
    assert!(
        err.contains("only namespace web was read (the context's namespace"),
        "{err}"
    );

    let every = live(&fx, &["get", "workloads", "-A"]);
    let text = stdout(&every);
    assert!(text.contains("frontend") && text.contains("api"), "{text}");
    assert!(
        !stderr(&every).contains("only namespace"),
        "{}",
        stderr(&every)
    );
}

#[test]
fn a_kind_rbac_forbids_exits_2_names_the_kind_and_the_rest_still_answers() {
    let fx = fixture();
    fx.fake.set_faults(|f| {
        f.forbidden
            .insert(("networkpolicies".to_string(), "list".to_string()));
    });
    let out = live(&fx, &["matrix", "--port", "5432", "-A"]);
    assert_eq!(common::code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("cannot read networkpolicies"), "{err}");
    assert!(
        err.contains("`list` on `networkpolicies.networking.k8s.io`"),
        "{err}"
    );
    // The answer is the files' answer without the NetworkPolicies.
    let without: Vec<String> = fx
        .files
        .iter()
        .filter(|f| !f.starts_with("NetworkPolicy/"))
        .cloned()
        .collect();
    let mut args = vec!["matrix", "--port", "5432"];
    args.extend(without.iter().map(String::as_str));
    let expected = netpol(&fx, &args);
    assert_eq!(stdout(&out), stdout(&expected));
    assert!(stdout(&out).contains("frontend"));
}

#[test]
fn a_list_paged_by_the_server_loses_nothing() {
    let fx = fixture();
    fx.fake.set_paging(1, std::time::Duration::ZERO);
    assert_same_answer(&fx, &["get", "workloads"]);
    assert_same_answer(&fx, &["matrix", "-o", "json"]);
    // Three pods, one a page: at least three pages each time the pods were listed.
    assert!(
        fx.fake.lists_for("pods") >= 6,
        "{}",
        fx.fake.lists_for("pods")
    );
}

/// The NetworkPolicies of the fixture as manifests in `dir`, with `db-from-api` on `port`.
fn write_manifests(dir: &Path, port: u16) {
    std::fs::create_dir_all(dir).unwrap();
    let db = ingress_policy("shop", "db-from-api", "db", "api", port);
    std::fs::write(dir.join("db.json"), db.to_string()).unwrap();
}

#[test]
fn diff_live_exits_0_when_the_manifests_change_nothing_and_1_naming_the_pair_when_they_do() {
    let fx = fixture();
    let manifests = fx.dir.path().join("manifests");
    write_manifests(&manifests, 5432);
    let path = manifests.display().to_string();
    let same = live(&fx, &["diff", "--live", "-A", &path]);
    assert_eq!(common::code(&same), 0, "{}{}", stdout(&same), stderr(&same));

    write_manifests(&manifests, 5433);
    let changed = live(&fx, &["diff", "--live", "-A", &path]);
    assert_eq!(common::code(&changed), 1, "{}", stderr(&changed));
    let text = stdout(&changed);
    assert!(text.contains("shop/api -> shop/db"), "{text}");
    assert!(
        text.contains("shop/db-from-api"),
        "the policy that explains it: {text}"
    );
    // Everything else of the cluster stays: no endpoint is removed, one object changed.
    assert!(text.contains("endpoints: 0 added, 0 removed"), "{text}");
    assert!(text.contains("objects (1):"), "{text}");

    // With one namespace read, manifests of another are refused, not compared against nothing.
    let elsewhere = fx.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let web = ingress_policy("web", "frontend-from-api", "frontend", "api", 80);
    std::fs::write(elsewhere.join("web.json"), web.to_string()).unwrap();
    let elsewhere = elsewhere.display().to_string();
    let refused = live(&fx, &["diff", "--live", "-n", "shop", &elsewhere]);
    assert_eq!(common::code(&refused), 2);
    assert!(
        stderr(&refused).contains("web/frontend-from-api"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn diff_live_puts_a_manifest_without_a_namespace_in_the_namespace_of_dash_n_as_kubectl_apply() {
    let fx = fixture();
    let manifests = fx.dir.path().join("no-namespace");
    std::fs::create_dir_all(&manifests).unwrap();
    let write = |port: u16| {
        let mut db = ingress_policy("shop", "db-from-api", "db", "api", port);
        db["metadata"].as_object_mut().unwrap().remove("namespace");
        std::fs::write(manifests.join("db.json"), db.to_string()).unwrap();
    };
    let path = manifests.display().to_string();
    // The live shop/db-from-api, unchanged: nothing to report.
    write(5432);
    let same = live(&fx, &["diff", "--live", "-n", "shop", &path]);
    assert_eq!(common::code(&same), 0, "{}{}", stdout(&same), stderr(&same));
    // The same manifest with another port changes shop's policy, not one in `default`.
    write(5433);
    let changed = live(&fx, &["diff", "--live", "-n", "shop", &path]);
    assert_eq!(common::code(&changed), 1, "{}", stderr(&changed));
    let text = stdout(&changed);
    assert!(text.contains("shop/api -> shop/db"), "{text}");
    assert!(text.contains("shop/db-from-api"), "{text}");
    assert!(!text.contains("default/db-from-api"), "{text}");
}

#[test]
fn paths_together_with_live_cluster_flags_are_an_error_naming_the_flags() {
    let fx = fixture();
    let kubeconfig = fx.kubeconfig.display().to_string();
    let mut args = vec!["matrix", "--port", "80", "--kubeconfig", &kubeconfig];
    args.extend(fx.files.iter().map(String::as_str));
    let out = netpol(&fx, &args);
    assert_eq!(common::code(&out), 2);
    assert!(
        stderr(&out).contains("--kubeconfig read a live cluster"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    // get takes -n with PATHs: it filters the listing.
    let mut args = vec!["get", "workloads", "-n", "web"];
    args.extend(fx.files.iter().map(String::as_str));
    let out = netpol(&fx, &args);
    assert_eq!(common::code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("frontend") && !stdout(&out).contains("api"));
    // diff's cluster flags need --live.
    let out = netpol(&fx, &["diff", "--context", "x", "a", "b"]);
    assert_eq!(common::code(&out), 2);
    assert!(stderr(&out).contains("--live"), "{}", stderr(&out));
}

#[test]
fn no_kubeconfig_anywhere_is_an_error_that_says_what_to_give() {
    let fx = fixture();
    let out = netpol(&fx, &["matrix", "--port", "80"]);
    assert_eq!(common::code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("--kubeconfig") && err.contains("PATHs"),
        "{err}"
    );
}

#[test]
fn an_unreachable_server_is_one_error_not_one_per_kind() {
    let fx = fixture();
    let gone = fx.dir.path().join("gone");
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    write_kubeconfig(
        &gone,
        &[("gone", &format!("http://127.0.0.1:{port}"), None)],
        "gone",
    );
    let out = netpol(
        &fx,
        &[
            "get",
            "pods",
            "-A",
            "--kubeconfig",
            &gone.display().to_string(),
        ],
    );
    assert_eq!(common::code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("refused the connection"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn completions_offer_the_live_cluster_flags() {
    let fx = fixture();
    let out = netpol(&fx, &["completions", "bash"]);
    let script = stdout(&out);
    for flag in ["--kubeconfig", "--context", "--all-namespaces", "--live"] {
        assert!(script.contains(flag), "{flag} missing");
    }
}

#[test]
fn without_kubeconfig_the_files_of_the_kubeconfig_variable_are_read_merged_as_kubectl_merges_them()
{
    let fx = fixture();
    // The first file has the contexts, the second the current-context: kubectl merges both.
    let first = fx.dir.path().join("first");
    write_kubeconfig(&first, &[("fake", &fx.fake.url(), Some("web"))], "fake");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&first).unwrap()).unwrap();
    config.as_object_mut().unwrap().remove("current-context");
    std::fs::write(&first, config.to_string()).unwrap();
    let second = fx.dir.path().join("second");
    std::fs::write(
        &second,
        json!({"apiVersion": "v1", "kind": "Config", "current-context": "fake"}).to_string(),
    )
    .unwrap();
    let list = std::env::join_paths([&first, &second]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netpol"))
        .current_dir(fx.dir.path())
        .env("KUBECONFIG", list)
        .env("HOME", fx.dir.path().join("no-home"))
        .args(["get", "workloads"])
        .output()
        .unwrap();
    assert_eq!(common::code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("frontend") && !text.contains("api"), "{text}");
}

#[test]
fn compile_needs_every_namespace_of_a_live_cluster_and_then_prints_the_files_ruleset() {
    let fx = fixture();
    let one = live(&fx, &["compile", "--node", "n1"]);
    assert_eq!(common::code(&one), 2);
    assert!(
        stdout(&one).is_empty(),
        "no partial ruleset: {}",
        stdout(&one)
    );
    assert!(
        stderr(&one).contains("-A reads every namespace"),
        "{}",
        stderr(&one)
    );
    let text = assert_same_answer(&fx, &["compile", "--node", "n1"]);
    assert!(text.contains("table inet netpol"), "{text}");
}
