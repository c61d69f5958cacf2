#!/usr/bin/env node
// Static checks of the Grafana dashboard and provisioning files (no Grafana
// needed; the queries themselves are run against a live Prometheus by
// tests/deploy/monitoring_live_test.sh):
//   - the JSON parses and has what Grafana's provisioning needs (uid, title,
//     schemaVersion); panel ids are unique; panels fit the 24-column grid
//     and do not overlap;
//   - every query panel uses the $datasource variable and has targets with
//     unique refIds and an expression; every $variable used is defined;
//   - the dashboard covers what operators need to watch (see REQUIRED).
//
//   node tools/deploy/check_dashboard.mjs [dashboard.json]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const file = process.argv[2] ?? path.join(root, "deploy/grafana/dashboards/mmfuse.json");
const errors = [];
const fail = (m) => errors.push(m);

// Metric (or PromQL fragment) -> what a panel reading it shows.
const REQUIRED = {
  "mmfuse_requests_total": "requests by code",
  "mmfuse_rejected_total": "rejected requests",
  "histogram_quantile(0.5, sum by (le) (rate(mmfuse_request_duration_seconds_bucket": "end-to-end p50",
  "histogram_quantile(0.99, sum by (le) (rate(mmfuse_request_duration_seconds_bucket": "end-to-end p99",
  "histogram_quantile(0.5, sum by (le) (rate(mmfuse_queue_duration_seconds_bucket": "queue p50",
  "histogram_quantile(0.99, sum by (le) (rate(mmfuse_queue_duration_seconds_bucket": "queue p99",
  "histogram_quantile(0.5, sum by (le) (rate(mmfuse_compute_duration_seconds_bucket": "compute p50",
  "histogram_quantile(0.99, sum by (le) (rate(mmfuse_compute_duration_seconds_bucket": "compute p99",
  "mmfuse_batch_size": "batch size",
  "mmfuse_queue_depth": "queue depth",
  "mmfuse_branch_selected_total": "branch mix",
  "mmfuse_modality_skipped_total": "modality skip rate",
  "mmfuse_gflops_saved_total": "GFLOPs saved",
  "mmfuse_gflops_total": "GFLOPs spent",
  "process_cpu_seconds_total": "CPU",
  "process_resident_memory_bytes": "RSS",
  "mmfuse_gpu_memory_used_bytes": "GPU memory",
  "mmfuse_gpu_utilization_ratio": "GPU utilization",
  "mmfuse_inflight_requests": "requests in flight",
  "mmfuse_model_loaded": "model loaded",
};

let dash;
try {
  dash = JSON.parse(fs.readFileSync(file, "utf8"));
} catch (e) {
  console.error(`FAIL ${file}: ${e.message}`);
  process.exit(1);
}
for (const k of ["uid", "title", "schemaVersion", "panels", "templating"]) {
  if (dash[k] === undefined) fail(`dashboard has no ${k}`);
}

const vars = new Map((dash.templating?.list ?? []).map((v) => [v.name, v]));
if (vars.get("datasource")?.type !== "datasource" || vars.get("datasource")?.query !== "prometheus") {
  fail("a datasource variable of type datasource (query prometheus) is expected");
}
const usedVars = (s) => [...s.matchAll(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g)].map((m) => m[1] ?? m[2] ?? m[3]);
for (const v of vars.values()) {
  const q = typeof v.query === "string" ? v.query : v.query?.query ?? "";
  for (const u of usedVars(q)) if (!vars.has(u)) fail(`variable ${v.name} uses undefined $${u}`);
}

const ids = new Set();
const boxes = [];
const exprs = [];
const all = [];
const walk = (panels) => {
  for (const p of panels ?? []) {
    all.push(p);
    walk(p.panels);
  }
};
walk(dash.panels);
for (const p of all) {
  const where = `panel ${p.id} "${p.title}"`;
  if (typeof p.id !== "number" || ids.has(p.id)) fail(`${where}: id missing or duplicate`);
  ids.add(p.id);
  const g = p.gridPos;
  if (!g || !(g.w > 0) || !(g.h > 0) || g.x < 0 || g.y < 0 || g.x + g.w > 24) {
    fail(`${where}: bad gridPos ${JSON.stringify(g)}`);
  } else {
    for (const b of boxes) {
      if (g.x < b.x + b.w && b.x < g.x + g.w && g.y < b.y + b.h && b.y < g.y + g.h) {
        fail(`${where}: overlaps panel ${b.id}`);
      }
    }
    boxes.push({ ...g, id: p.id });
  }
  if (p.type === "row") continue;
  if (!p.title) fail(`${where}: no title`);
  if (p.datasource?.uid !== "${datasource}") fail(`${where}: datasource must be \${datasource}`);
  if (!p.targets?.length) fail(`${where}: no targets`);
  const refs = new Set();
  for (const t of p.targets ?? []) {
    if (!t.refId || refs.has(t.refId)) fail(`${where}: target refId missing or duplicate`);
    refs.add(t.refId);
    if (!t.expr?.trim()) fail(`${where} ${t.refId}: no expr`);
    for (const u of usedVars(t.expr ?? "")) {
      if (!u.startsWith("__") && !vars.has(u)) fail(`${where} ${t.refId}: undefined variable $${u}`);
    }
    exprs.push(t.expr ?? "");
  }
}
for (const [needle, what] of Object.entries(REQUIRED)) {
  if (!exprs.some((e) => e.includes(needle))) fail(`no panel shows ${what} (${needle})`);
}

for (const p of ["deploy/grafana/provisioning/datasources/mmfuse-prometheus.yml",
  "deploy/grafana/provisioning/dashboards/mmfuse.yml"]) {
  const text = fs.existsSync(path.join(root, p)) ? fs.readFileSync(path.join(root, p), "utf8") : "";
  if (!/^apiVersion: 1$/m.test(text)) fail(`${p}: missing or not a Grafana provisioning file`);
}

if (errors.length) {
  for (const e of errors) console.error(`FAIL ${e}`);
  process.exit(1);
}
console.log(`${path.relative(root, file)}: ${all.length} panels, ${exprs.length} queries, layout and variables ok`);
