#!/usr/bin/env bash
# Checks deploy/prometheus with the Debian prometheus package's promtool:
# rule files (`promtool check rules`), their unit tests (`promtool test
# rules`) and the example configs (`promtool check config`).
#
#   tests/deploy/prometheus_rules_test.sh [build dir, unused]
source "$(dirname "$0")/lib.sh"
ensure_commands promtool:prometheus flock:util-linux
cd "$ROOT/deploy/prometheus"

promtool check rules rules/*.yml || die "promtool check rules"
promtool test rules tests/*.yml || die "promtool test rules"
promtool check config prometheus.yml || die "promtool check config prometheus.yml"

# Debian's prometheus is built without Kubernetes service discovery, so its
# promtool rejects kubernetes_sd_configs: check the rest of the file (relabel
# rules, rule_files) with the discovery block swapped for a static target.
T=$(mktemp -d "${TMPDIR:-/tmp}/mmfuse-prom.XXXXXX")
trap 'rm -rf "$T"' EXIT
cp -r rules "$T/"
awk '
  /^ *kubernetes_sd_configs:/ { indent = match($0, /[^ ]/); print substr($0, 1, indent - 1) "static_configs: [{targets: [\"127.0.0.1:9464\"]}]"; skip = 1; next }
  skip { if (match($0, /[^ ]/) > indent) next; skip = 0 }
  { print }
' prometheus-kubernetes.yml >"$T/prometheus-kubernetes.yml"
grep -q static_configs "$T/prometheus-kubernetes.yml" || die "could not rewrite prometheus-kubernetes.yml"
if ! promtool check config "$T/prometheus-kubernetes.yml" >"$T/out" 2>&1; then
  cat "$T/out"; die "promtool check config prometheus-kubernetes.yml (discovery swapped for a static target)"
fi
echo "PASS"
