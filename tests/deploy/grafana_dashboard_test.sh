#!/usr/bin/env bash
# Static checks of the Grafana dashboard and provisioning files
# (tools/deploy/check_dashboard.mjs); monitoring_live_test.sh runs the
# dashboard's queries against a live Prometheus.
#
#   tests/deploy/grafana_dashboard_test.sh [build dir, unused]
source "$(dirname "$0")/lib.sh"
ensure_commands node:nodejs
cd "$ROOT"
node tools/deploy/check_dashboard.mjs deploy/grafana/dashboards/mmfuse.json || die "dashboard checks"
echo "PASS"
