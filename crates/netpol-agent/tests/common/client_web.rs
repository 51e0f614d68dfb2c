//! The lab three kernel tests share: namespace `a` with a client pod and a web pod (listening on
//! TCP 80 and 8080) on node `n1`, at `PREFIX.1` and `PREFIX.2`. Each test passes its own prefix
//! so that tests running at once never share an address.

use netpol_dataplane::{Lab, LabHost, LabSpec};

/// Builds the lab (root needed).
pub fn lab(prefix: &str) -> Lab {
    let host = |name: &str, ip: String, ports: Vec<u16>| LabHost {
        name: name.into(),
        node: Some("n1".into()),
        addresses: vec![ip.parse().unwrap()],
        tcp_ports: ports,
        ..LabHost::default()
    };
    Lab::build(&LabSpec {
        nodes: vec!["n1".into()],
        hosts: vec![
            host("a/client", format!("{prefix}.1"), vec![]),
            host("a/web", format!("{prefix}.2"), vec![80, 8080]),
        ],
    })
    .unwrap()
}

/// The namespace and the two pods as manifests.
pub fn workloads(prefix: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: a}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: a, labels: {{app: client}}}}
spec: {{nodeName: n1, containers: [{{name: c, image: i}}]}}
status: {{phase: Running, podIP: {prefix}.1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: a, labels: {{app: web}}}}
spec: {{nodeName: n1, containers: [{{name: c, image: i}}]}}
status: {{phase: Running, podIP: {prefix}.2}}
"#
    )
}
