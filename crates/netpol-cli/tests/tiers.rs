//! The admin tiers through the binary: `get policies` in decision order, `check` explaining the
//! walk tier by tier, `--resolve` for domainNames, `--via-service` for hairpin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{code, run, stdout};

fn check(args: &[&str]) -> (i32, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let o = run(&all);
    (code(&o), stdout(&o))
}

#[test]
fn get_policies_lists_every_tier_in_the_order_they_decide() {
    let o = run(&["get", "policies", "examples/tiers"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    let order: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let first_np = order.iter().position(|t| *t == "NetworkPolicy").unwrap();
    let last_np = order.iter().rposition(|t| *t == "NetworkPolicy").unwrap();
    assert!(order[..first_np].iter().all(|t| *t == "Admin"), "{text}");
    assert!(
        order[last_np + 1..].iter().all(|t| *t == "Baseline"),
        "{text}"
    );
    let cnp = text.find("cnp/deny-cross-project").unwrap();
    let banp = text.find("banp/default").unwrap();
    assert!(
        cnp < banp,
        "the BANP decides after every v1alpha2 Baseline policy:\n{text}"
    );
    let dns = text
        .lines()
        .find(|l| l.contains("cnp/vms-reach-dns"))
        .unwrap();
    assert!(dns.contains(" 3 "), "three VMs are its subjects: {dns}");
}

#[test]
fn get_workloads_names_the_admin_policies_that_select_each_workload() {
    let text = stdout(&run(&["get", "vms", "-A", "examples/tiers"]));
    let header = text.lines().next().unwrap();
    assert!(header.contains("ADMIN POLICIES"), "{text}");
    let vm_c = text.lines().find(|l| l.contains("vm-c")).unwrap();
    assert!(
        vm_c.contains("cnp/vms-reach-dns,anp/no-smtp,banp/default"),
        "{vm_c}"
    );
    // Without admin policies the table is as it always was.
    let plain = stdout(&run(&["get", "vms", "-A", "examples/test-project"]));
    assert!(!plain.contains("ADMIN POLICIES"));
}

#[test]
fn check_explains_an_admin_pass_and_a_baseline_deny_tier_by_tier() {
    let (code, text) = check(&[
        "examples/tiers",
        "--from",
        "another-project/vm-c",
        "--to",
        "test-project/vm-b",
        "--port",
        "80",
    ]);
    assert_eq!(code, 1, "{text}");
    let ingress = &text[text.find("ingress to test-project/vm-b: denied").unwrap()..];
    let steps: Vec<&str> = ingress
        .lines()
        .map(str::trim)
        .filter(|l| {
            ["Admin tier:", "NetworkPolicy tier:", "Baseline tier:"]
                .iter()
                .any(|t| l.starts_with(t))
        })
        .collect();
    assert!(steps[0].starts_with("Admin tier: passed to the NetworkPolicy tier by cnp/vms-reach-dns (priority 10) (examples/tiers/admin-dns-and-projects.yaml:"), "{text}");
    assert!(steps[1].starts_with("NetworkPolicy tier: open"), "{text}");
    assert!(
        steps[2].starts_with("Baseline tier: denied by cnp/deny-cross-project (priority 100)"),
        "{text}"
    );
    assert!(
        ingress.contains("\"deny-from-another-project\" Deny"),
        "{text}"
    );
}

#[test]
fn a_network_policy_opens_what_the_baseline_denies_but_not_what_the_admin_tier_denies() {
    // The page's policy lets another-project reach vm-a; the baseline's deny does not apply to a
    // workload a NetworkPolicy isolates.
    let (code, text) = check(&[
        "examples/tiers",
        "--from",
        "another-project/vm-c",
        "--to",
        "test-project/vm-a",
        "--port",
        "80",
    ]);
    assert_eq!(code, 0, "{text}");
    let ingress = &text[text.find("ingress to test-project/vm-a").unwrap()..];
    assert!(
        !ingress.contains("Baseline tier:"),
        "the NetworkPolicy decided:\n{text}"
    );
    assert!(text.contains("    NetworkPolicy tier: allowed"), "{text}");
    // The Admin tier's Deny of SMTP decides before any NetworkPolicy could allow it.
    let (code, text) = check(&[
        "examples/tiers",
        "--from",
        "test-project/vm-b",
        "--to",
        "198.51.100.7",
        "--port",
        "25",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("Admin tier: denied by anp/no-smtp (priority 20)"),
        "{text}"
    );
}

const DOMAINS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: app, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: allow-api-only}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress:
  - name: the-api
    action: Accept
    to: [{domainNames: ["*.example.com"]}]
  - name: nothing-else
    action: Deny
    to: [{networks: [0.0.0.0/0]}]
  ingress:
  - name: no-self-through-services
    action: Deny
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}]
    protocols: [{destinationNamedPort: http}]
"#;

#[test]
fn domain_names_match_only_the_addresses_given_with_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("domains.yaml");
    std::fs::write(&file, DOMAINS).unwrap();
    let path = file.to_str().unwrap();
    let base = [
        path,
        "--from",
        "app/web",
        "--to",
        "192.0.2.10",
        "--port",
        "443",
    ];
    let (code, text) = check(&base);
    assert_eq!(
        code, 1,
        "without --resolve the Accept matches nothing:\n{text}"
    );
    assert!(text.contains("\"nothing-else\" Deny"), "{text}");
    let mut resolved = base.to_vec();
    resolved.extend(["--resolve", "api.example.com=192.0.2.10"]);
    let (code, text) = check(&resolved);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("\"the-api\" Accept to domainNames *.example.com"),
        "{text}"
    );
    let mut bad = base.to_vec();
    bad.extend(["--resolve", "api.example.com"]);
    let o = run(&[&["check"][..], &bad].concat());
    assert_eq!(code_of(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected NAME=IP"));
}

fn code_of(o: &std::process::Output) -> i32 {
    code(o)
}

#[test]
fn a_workload_reaching_itself_through_a_service_goes_through_the_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("domains.yaml");
    std::fs::write(&file, DOMAINS).unwrap();
    let path = file.to_str().unwrap();
    let own = ["--from", "app/web", "--to", "app/web", "--port", "8080"];
    let (code, text) = check(&[&[path][..], &own].concat());
    assert_eq!(code, 0, "its own address is always allowed:\n{text}");
    let (code, text) = check(&[&[path][..], &own, &["--via-service"]].concat());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("\"no-self-through-services\" Deny"), "{text}");
    let o = run(&[
        "check",
        path,
        "--from",
        "app/web",
        "--to",
        "192.0.2.1",
        "--port",
        "80",
        "--via-service",
    ]);
    assert_eq!(code_of(&o), 2);
}
