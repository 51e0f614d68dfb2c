#!/usr/bin/env bash
# Checks the deploy manifests offline against the Kubernetes schemas shipped inside the
# kubernetes-validate package (no network at check time). Install once: pip install kubernetes-validate
set -euo pipefail
cd "$(dirname "$0")"
version="${K8S_VERSION:-1.30.0}"
python3 -m kubernetes_validate --strict --kubernetes-version "$version" daemonset.yaml rbac.yaml
# The ClusterRole grants only reads.
if grep -E '^\s+verbs:' rbac.yaml | grep -vE '\["get", "list", "watch"\]'; then
  echo "rbac.yaml grants more than get/list/watch" >&2
  exit 1
fi
echo "deploy manifests: ok (kubernetes $version schemas, strict)"
