//! `netpol report -o html` in a real headless browser (Debian's `chromium`, which `.ci/run`
//! installs): the page loads from `file://` with no console error, draws the counts and rows the
//! manifests imply, applies its filters and selection, and a screenshot is written.
//!
//! A missing `chromium` fails these tests (CI installs it); nothing is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{root, run, stdout};

/// Writes the report of `input` into `dir` and returns the page's path.
fn write_report(dir: &Path, input: &str) -> PathBuf {
    write_report_of(dir, &root().join(input))
}

fn write_report_of(dir: &Path, input: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_netpol"))
        .current_dir(root())
        .arg("report")
        .arg(input)
        .args(["-o", "html"])
        .output()
        .expect("netpol runs");
    assert!(
        out.status.success(),
        "netpol report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = dir.join("report.html");
    std::fs::write(&page, &out.stdout).unwrap();
    page
}

/// What the browser made of a page: the DOM after the page's script ran, and its console lines.
struct Rendered {
    dom: String,
    console: Vec<String>,
}

impl Rendered {
    /// The value of a `data-NAME` attribute of `<body>` (the page's script sets them).
    fn body_data(&self, name: &str) -> Option<String> {
        let needle = format!("data-{name}=\"");
        let start = self.dom.find("<body")?;
        let body_tag = &self.dom[start..start + self.dom[start..].find('>')?];
        let at = body_tag.find(&needle)? + needle.len();
        Some(body_tag[at..at + body_tag[at..].find('"')?].to_string())
    }

    /// The text of the element with this id (no nested elements).
    fn text_of(&self, id: &str) -> Option<String> {
        let needle = format!("id=\"{id}\">");
        let at = self.dom.find(&needle)? + needle.len();
        Some(self.dom[at..at + self.dom[at..].find('<')?].to_string())
    }

    fn count(&self, needle: &str) -> usize {
        self.dom.matches(needle).count()
    }
}

fn chromium(args: &[&str]) -> std::process::Output {
    Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .args(args)
        .output()
        .expect("chromium is installed (apt-get install -y chromium); .ci/run installs it")
}

fn render(page: &Path, fragment: &str) -> Rendered {
    let url = format!("file://{}{fragment}", page.display());
    let out = chromium(&["--enable-logging=stderr", "--v=0", "--dump-dom", &url]);
    assert!(out.status.success(), "chromium failed: {out:?}");
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_string)
        .collect();
    Rendered {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console,
    }
}

// The bundled example (the user's page): vm-a is isolated both ways; its ingress admits vm-b and
// the namespace another-project (vm-c); its egress admits only addresses outside the cluster.
// vm-b and vm-c are selected by no policy. So the allowed ordered pairs of distinct workloads are
// vm-b -> vm-c, vm-c -> vm-b, vm-b -> vm-a and vm-c -> vm-a: 4; vm-a reaches no workload.
const EXAMPLE: &str = "examples/test-project";

#[test]
fn the_report_loads_without_console_errors_and_shows_the_counts_the_manifests_imply() {
    let dir = tempfile::tempdir().unwrap();
    let page = write_report(dir.path(), EXAMPLE);
    let r = render(&page, "");
    assert_eq!(r.console, Vec::<String>::new(), "console output");
    assert_eq!(
        r.body_data("ready").as_deref(),
        Some("1"),
        "the script ran to the end"
    );
    assert_eq!(r.body_data("errors"), None);
    assert_eq!(r.text_of("count-namespaces").as_deref(), Some("2"));
    assert_eq!(r.text_of("count-workloads").as_deref(), Some("3"));
    assert_eq!(r.text_of("count-vms").as_deref(), Some("3"));
    assert_eq!(r.text_of("count-connections").as_deref(), Some("4"));
    assert_eq!(r.text_of("count-ingress").as_deref(), Some("1"));
    assert_eq!(r.text_of("count-egress").as_deref(), Some("1"));
    // One table row and one dot per workload, one circle per namespace.
    assert_eq!(r.count("<tr data-index="), 3);
    assert_eq!(r.count("class=\"wl vm\""), 3);
    assert_eq!(r.count("class=\"ns-circle\""), 2);
    assert_eq!(r.body_data("shown").as_deref(), Some("3"));
    // The lint and exposure sections hold what the two commands print.
    let findings = stdout(&run(&["lint", EXAMPLE, "-o", "json"]));
    let findings: serde_json::Value = serde_json::from_str(&findings).unwrap();
    let findings = findings["findings"].as_array().unwrap().len();
    assert!(
        findings > 0,
        "vm-a's egress isolation without DNS is a finding"
    );
    assert_eq!(r.text_of("count-findings"), Some(findings.to_string()));
    let exposure = stdout(&run(&["exposure", EXAMPLE])).lines().count();
    assert!(exposure > 0, "vm-b and vm-c are open to everything");
    assert_eq!(r.text_of("count-exposure"), Some(exposure.to_string()));
    assert_eq!(r.count("<td class=\"sev-"), findings);
}

#[test]
fn filters_and_selection_from_the_address_bar_apply_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let page = write_report(dir.path(), EXAMPLE);
    // vm-c's address matches vm-c alone.
    let r = render(&page, "#q=10.66.20.72");
    assert_eq!(r.body_data("shown").as_deref(), Some("1"));
    // Two workloads live in test-project; one workload is isolated at all.
    let r = render(&page, "#ns=test-project");
    assert_eq!(r.body_data("shown").as_deref(), Some("2"));
    let r = render(&page, "#isolated=1");
    assert_eq!(r.body_data("shown").as_deref(), Some("1"));
    // vm-a is reached by vm-b and vm-c and reaches no workload.
    let r = render(&page, "#select=test-project/vm-a");
    assert_eq!(r.console, Vec::<String>::new(), "console output");
    assert_eq!(
        r.body_data("selected").as_deref(),
        Some("test-project/vm-a")
    );
    assert!(
        r.dom.contains("data-count=\"0\">May reach (0)"),
        "{}",
        r.dom
    );
    assert!(r.dom.contains("data-count=\"2\">Reached by (2)"));
    assert!(r.dom.contains("test-project/vm-b: all ports"));
}

#[test]
fn a_screenshot_of_the_report_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let page = write_report(dir.path(), EXAMPLE);
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("netpol-report.png");
    let _ = std::fs::remove_file(&shot);
    let url = format!("file://{}#select=test-project/vm-a", page.display());
    let arg = format!("--screenshot={}", shot.display());
    let out = chromium(&[&arg, "--window-size=1400,1800", &url]);
    assert!(out.status.success(), "chromium failed: {out:?}");
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "a blank page compresses to less: {} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn a_cluster_with_too_many_connections_to_embed_shows_namespaces_and_counts_only() {
    // 600 pods in 3 namespaces and no policy: every ordered pair of distinct pods may talk,
    // 600 * 599 = 359,400 pairs, over the page's limit of 250,000; between two namespaces of 200
    // pods each, 2 * 200 * 200 = 80,000 ordered pairs.
    let dir = tempfile::tempdir().unwrap();
    let mut manifests = String::new();
    for i in 0..600 {
        manifests.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: ns{}}}\n\
             spec: {{nodeName: n1, containers: [{{name: c, image: i}}]}}\n\
             status: {{phase: Running, podIP: 10.1.{}.{}}}\n",
            i % 3,
            i / 200,
            i % 200 + 1
        ));
    }
    let input = dir.path().join("many.yaml");
    std::fs::write(&input, manifests).unwrap();
    let page = write_report_of(dir.path(), &input);
    let size = std::fs::metadata(&page).unwrap().len();
    assert!(
        size < 2_000_000,
        "the page embeds no pair list: {size} bytes"
    );
    let r = render(&page, "#select=ns0/p0");
    assert_eq!(r.console, Vec::<String>::new(), "console output");
    assert_eq!(r.body_data("ready").as_deref(), Some("1"));
    assert_eq!(r.text_of("count-connections").as_deref(), Some("359400"));
    assert_eq!(r.count("class=\"ns-edge\""), 3);
    assert!(
        r.dom.contains("80000 allowed ordered pairs"),
        "namespace edge titles"
    );
    assert!(r.dom.contains("May reach 599 and reached by 599 workloads"));
}

#[test]
fn a_selected_deployment_with_replicas_shows_what_one_replica_may_reach_another_on() {
    // A default deny in shop, and the api's replicas let each other in on 8080 alone; the cache
    // Pod is one instance, with no such line.
    let dir = tempfile::tempdir().unwrap();
    let manifests = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
        apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\n\
        spec:\n  replicas: 3\n  template:\n    metadata: {labels: {app: api}}\n\
        ---\napiVersion: v1\nkind: Pod\nmetadata: {name: cache, namespace: shop}\n\
        spec: {nodeName: n1, containers: [{name: c, image: i}]}\n\
        status: {phase: Running, podIP: 10.0.0.9}\n\
        ---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
        metadata: {name: api, namespace: shop}\nspec:\n  podSelector: {}\n  ingress:\n\
        \x20   - from: [{podSelector: {matchLabels: {app: api}}}]\n      ports: [{port: 8080}]\n";
    let input = dir.path().join("replicas.yaml");
    std::fs::write(&input, manifests).unwrap();
    let page = write_report_of(dir.path(), &input);
    let r = render(&page, "#select=shop/api");
    assert_eq!(r.console, Vec::<String>::new(), "console output");
    assert_eq!(
        r.text_of("details-replicas").as_deref(),
        Some("Between two of its replicas (3): TCP 8080"),
        "{}",
        r.dom
    );
    let r = render(&page, "#select=shop/cache");
    assert_eq!(r.text_of("details-replicas"), None, "{}", r.dom);
}
