//! Traffic between two replicas of one controller is a real pair (issue #11): pod api-1 to pod
//! api-2 of one Deployment must be allowed by the egress of the one and the ingress of the
//! other, and the admin tiers apply; only an instance reaching its own address is exempt.
//!
//! Every case is a manifest set written to a temporary directory and answered by the `netpol`
//! binary (`check`, `matrix`), so loading (`spec.replicas`, folded Pods), the evaluator and the
//! analyzer are all on the path. The expected answers are the NetworkPolicy API's: a
//! `default-deny` in the namespace denies replica to replica; a policy selecting `app=api` from
//! `app=api` allows it; an Admin Deny from the namespace to itself denies it whatever the
//! NetworkPolicies say.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{code, run, stdout};

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";

/// The Deployment `shop/api` (pods `app=api`, named port `http` = 8080) with `replicas`
/// (`None`: the field left out, the API's default of 1).
fn deployment(replicas: Option<u32>) -> String {
    let replicas = replicas.map_or(String::new(), |n| format!("  replicas: {n}\n"));
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: api, namespace: shop}}\nspec:\n{replicas}  selector: {{matchLabels: {{app: api}}}}\n  template:\n    metadata: {{labels: {{app: api}}}}\n    spec:\n      containers:\n        - name: api\n          image: api:1\n          ports: [{{name: http, containerPort: 8080}}]\n"
    )
}

/// A live Pod of the Deployment (through its ReplicaSet `api-7c9d`), with address `ip`.
fn replica(name: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: shop\n  labels: {{app: api, pod-template-hash: 7c9d}}\n  ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: api-7c9d, uid: u1, controller: true}}]\nspec:\n  nodeName: n1\n  containers: [{{name: api, image: api:1, ports: [{{name: http, containerPort: 8080}}]}}]\nstatus: {{phase: Running, podIP: {ip}}}\n"
    )
}

/// A single Pod `shop/cache` (`app=cache`) at `10.0.0.9`.
const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: cache, namespace: shop, labels: {app: cache}}\nspec:\n  nodeName: n1\n  containers: [{name: c, image: c:1}]\nstatus: {phase: Running, podIP: 10.0.0.9}\n";

const DEFAULT_DENY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny, namespace: shop}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n";

/// Lets `app=api` reach `app=api` on the named port `http`, both ways a pair needs.
const API_FROM_API: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: api-from-api, namespace: shop}\nspec:\n  podSelector: {matchLabels: {app: api}}\n  policyTypes: [Ingress, Egress]\n  ingress:\n    - from: [{podSelector: {matchLabels: {app: api}}}]\n      ports: [{port: http}]\n  egress:\n    - to: [{podSelector: {matchLabels: {app: api}}}]\n      ports: [{port: http}]\n";

/// Admin tier: everything in `shop` is denied ingress from `shop` itself.
const ADMIN_DENY: &str = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: shop-isolated}\nspec:\n  tier: Admin\n  priority: 5\n  subject:\n    namespaces: {matchLabels: {kubernetes.io/metadata.name: shop}}\n  ingress:\n    - name: not-from-shop\n      action: Deny\n      from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: shop}}}]\n";

/// The manifests as files of one fresh directory (removed when dropped).
struct Manifests {
    dir: PathBuf,
}

impl Manifests {
    fn new(name: &str, docs: &[&str]) -> Manifests {
        let dir =
            std::env::temp_dir().join(format!("netpol-replicas-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("all.yaml"), docs.join("---\n")).unwrap();
        Manifests { dir }
    }

    fn path(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    fn check(&self, from: &str, to: &str, port: &str) -> Output {
        run(&[
            "check",
            &self.path(),
            "--from",
            from,
            "--to",
            to,
            "--port",
            port,
        ])
    }

    fn matrix(&self, args: &[&str]) -> Output {
        let path = self.path();
        let mut all = vec!["matrix", path.as_str()];
        all.extend(args);
        run(&all)
    }
}

impl Drop for Manifests {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const API: &str = "deployment/shop/api";

/// `check` between two replicas of the api: (exit code, text).
fn replicas_check(m: &Manifests, port: &str) -> (i32, String) {
    let out = m.check(API, API, port);
    (code(&out), stdout(&out))
}

#[test]
fn a_default_deny_in_the_namespace_denies_one_replica_reaching_another() {
    let m = Manifests::new("deny", &[NAMESPACE, &deployment(Some(3)), DEFAULT_DENY]);
    let (code, text) = replicas_check(&m, "8080");
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with(
            "DENIED  shop/api -> shop/api  TCP/8080, between two replicas of deployment/shop/api\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("egress from one replica of shop/api: denied"),
        "{text}"
    );
    assert!(
        text.contains("ingress to another replica of shop/api: denied"),
        "{text}"
    );
    assert!(text.contains("shop/default-deny"), "{text}");
}

#[test]
fn a_policy_selecting_app_api_from_app_api_allows_replicas_on_its_named_port_only() {
    let m = Manifests::new(
        "allow",
        &[NAMESPACE, &deployment(Some(3)), DEFAULT_DENY, API_FROM_API],
    );
    let (code, text) = replicas_check(&m, "8080");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with("ALLOWED  shop/api -> shop/api  TCP/8080, between two replicas"),
        "{text}"
    );
    assert!(text.contains("allowed by shop/api-from-api"), "{text}");
    // The named port resolves on the api itself: 8080 is http, 9090 is nothing.
    let (code, text) = replicas_check(&m, "9090");
    assert_eq!(code, 1, "{text}");
}

#[test]
fn an_admin_deny_from_the_namespace_to_itself_denies_replicas_that_networkpolicy_allows() {
    let m = Manifests::new(
        "admin",
        &[NAMESPACE, &deployment(Some(2)), API_FROM_API, ADMIN_DENY],
    );
    let (code, text) = replicas_check(&m, "8080");
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("Admin tier: denied by cnp/shop-isolated"),
        "{text}"
    );
}

#[test]
fn a_pod_reaching_its_own_address_stays_allowed_under_every_tier() {
    let m = Manifests::new("pod", &[NAMESPACE, POD, DEFAULT_DENY, ADMIN_DENY]);
    let out = m.check("shop/cache", "shop/cache", "80");
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.contains("traffic from a workload to itself is always allowed"),
        "{text}"
    );
    assert!(!text.contains("replica"), "{text}");
}

#[test]
fn a_deployment_of_one_replica_keeps_reaching_itself() {
    for replicas in [Some(1), None] {
        let m = Manifests::new("one", &[NAMESPACE, &deployment(replicas), DEFAULT_DENY]);
        let (code, text) = replicas_check(&m, "8080");
        assert_eq!(code, 0, "replicas {replicas:?}: {text}");
        assert!(text.contains("always allowed"), "{text}");
    }
}

#[test]
fn folded_pods_make_replicas_of_a_deployment_of_one_and_their_addresses_tell_self_from_pair() {
    let pods = [
        replica("api-7c9d-a", "10.0.0.1"),
        replica("api-7c9d-b", "10.0.0.2"),
    ];
    let m = Manifests::new(
        "folded",
        &[
            NAMESPACE,
            &deployment(Some(1)),
            &pods[0],
            &pods[1],
            DEFAULT_DENY,
        ],
    );
    // Two Pods run: two replicas, and the default deny holds between them.
    let (exit, text) = replicas_check(&m, "8080");
    assert_eq!(exit, 1, "{text}");
    assert!(
        text.contains("between two replicas of deployment/shop/api"),
        "{text}"
    );
    // One replica's address to the other's is the pair; an address to itself is not.
    let out = m.check("10.0.0.1", "10.0.0.2", "8080");
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("addresses: 10.0.0.1 -> 10.0.0.2"), "{text}");
    let out = m.check("10.0.0.2", "10.0.0.2", "8080");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn the_matrix_diagonal_of_a_deployment_with_replicas_is_their_pair() {
    let m = Manifests::new(
        "matrix",
        &[
            NAMESPACE,
            &deployment(Some(3)),
            POD,
            DEFAULT_DENY,
            API_FROM_API,
        ],
    );
    let out = m.matrix(&["--port", "8080", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let allowed = &json["allowed"];
    assert_eq!(allowed["shop/api"]["shop/api"], true, "{json}");
    // The single Pod reaches its own address, whatever the default deny says.
    assert_eq!(allowed["shop/cache"]["shop/cache"], true, "{json}");
    assert_eq!(allowed["shop/api"]["shop/cache"], false, "{json}");
    let out = m.matrix(&["--port", "9090", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["allowed"]["shop/api"]["shop/api"], false, "{json}");
    // The map lists the replicas' own pair with its ports, and no line for the Pod's own.
    let out = m.matrix(&[]);
    let text = stdout(&out);
    assert!(text.contains("shop/api -> shop/api  TCP 8080\n"), "{text}");
    assert!(!text.contains("shop/cache -> shop/cache"), "{text}");
    // The graph has a loop for it.
    let out = m.matrix(&["-o", "dot"]);
    let dot = stdout(&out);
    let lines: Vec<&str> = dot.lines().filter(|l| l.contains("->")).collect();
    assert_eq!(lines.len(), 1, "{dot}");
    assert!(lines[0].contains("TCP 8080"), "{dot}");
}

#[test]
fn scaling_a_deployment_up_under_a_default_deny_is_a_lost_pair_that_its_instances_explain() {
    let old = Manifests::new(
        "scale-old",
        &[NAMESPACE, &deployment(Some(1)), DEFAULT_DENY],
    );
    let new = Manifests::new(
        "scale-new",
        &[NAMESPACE, &deployment(Some(3)), DEFAULT_DENY],
    );
    let out = run(&["diff", &old.path(), &new.path()]);
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(
        text.contains("  - shop/api -> shop/api  lost TCP 1-65535, UDP 1-65535, SCTP 1-65535  [Workload deployment/shop/api (changed)]\n"),
        "{text}"
    );
    assert!(
        text.contains("Workload deployment/shop/api changed: instances: 1 -> 3\n"),
        "{text}"
    );
    // Scaling within one instance or within several changes no pair.
    let same = Manifests::new(
        "scale-same",
        &[NAMESPACE, &deployment(Some(5)), DEFAULT_DENY],
    );
    let out = run(&["diff", &new.path(), &same.path()]);
    assert!(
        stdout(&out).starts_with("no change in connectivity"),
        "{}",
        stdout(&out)
    );
}
