#!/usr/bin/env bash
# Renders both kustomize overlays (deploy/k8s/overlays/{cpu,gpu}) with
# tools/deploy/kustomize.mjs and validates every object against the
# Kubernetes schemas (+ Prometheus Operator CRDs), for unknown fields and for
# mmfuse's deployment contract (tools/deploy/validate_k8s.mjs). Where
# `kubectl kustomize` (kustomize v5) exists, the rendering must equal it.
# Also: the generated PrometheusRule is in sync with deploy/prometheus/rules,
# and a broken copy of the manifests is rejected (the checks are not vacuous).
#
#   tests/deploy/k8s_manifests_test.sh [build dir, unused]
source "$(dirname "$0")/lib.sh"
ensure_commands flock:util-linux
ensure_node_modules
cd "$ROOT"

OVERLAYS=(deploy/k8s/overlays/cpu deploy/k8s/overlays/gpu)
KUBECTL=()
if command -v kubectl >/dev/null && kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v[5-9]'; then
  KUBECTL=(--kubectl)
else
  echo "note: no kubectl with kustomize v5+; rendering with tools/deploy/kustomize.mjs only"
fi
node tools/deploy/validate_k8s.mjs "${KUBECTL[@]}" "${OVERLAYS[@]}" || die "manifests invalid"
node tools/deploy/gen_prometheus_rule.mjs --check || die "deploy/k8s/monitoring/prometheus-rule.yaml is stale"

# Negative control: typos and a broken drain budget must be caught.
T=$(mktemp -d "${TMPDIR:-/tmp}/mmfuse-k8s.XXXXXX")
trap 'rm -rf "$T"' EXIT
cp -r deploy/k8s "$T/k8s"
sed -i 's/terminationGracePeriodSeconds: 45/terminationGracePeriodSeconds: 20/; s/readOnly: true/readonly: true/; s/revisionHistoryLimit: 5/revisionHistoryLimit: "5"/' \
  "$T/k8s/base/deployment.yaml"
sed -i 's/scrapeTimeout:/scrapeTimeot:/' "$T/k8s/monitoring/podmonitor.yaml"
sed -i '/nvidia.com\/gpu: "1"/d' "$T/k8s/overlays/gpu/deployment-gpu.yaml"
if node tools/deploy/validate_k8s.mjs "$T/k8s/overlays/cpu" "$T/k8s/overlays/gpu" >"$T/out" 2>&1; then
  cat "$T/out"; die "validate_k8s.mjs accepted broken manifests"
fi
for want in 'spec/revisionHistoryLimit must be integer' 'unknown field "readonly"' 'unknown field "scrapeTimeot"' \
            'terminationGracePeriodSeconds=20 must exceed' 'needs an nvidia.com/gpu limit'; do
  grep -qF "$want" "$T/out" || { cat "$T/out"; die "broken manifests: expected \"$want\""; }
done
echo "PASS"
