#!/usr/bin/env node
// Evaluates every PromQL query mmfuse ships (Grafana panels and variables,
// recording and alert rules, Prometheus Adapter rules) against a live
// Prometheus that scrapes a live mmfuse-server, through /api/v1/query.
//
// Each query must parse. Queries must return data, unless they read a metric
// named by --planned (not exported yet) or --known-empty (exported but never
// observed: a server bug to fix). Alert expressions are checked for parsing
// and for data in every metric they read (a healthy server fires no alert).
// Every metric named by --exported must have series, and Prometheus must
// report every loaded rule healthy. Retries until --wait seconds pass, so the
// caller need not guess how long scrapes and rule evaluations take.
//
//   node tools/deploy/check_queries.mjs --prometheus http://127.0.0.1:PORT \
//     --exported a,b --planned c,d [--known-empty e] --wait 45
// Needs `npm ci` in tools/deploy (for the yaml package).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const list = (s) => (s ? s.split(",").map((x) => x.trim()).filter(Boolean) : []);
const prometheus = arg("prometheus");
const exported = list(arg("exported"));
const planned = list(arg("planned"));
const knownEmpty = list(arg("known-empty"));
const waitSeconds = Number(arg("wait", "45"));
const dashboards = list(arg("dashboards", "deploy/grafana/dashboards/mmfuse.json"));
const rulesDir = arg("rules", "deploy/prometheus/rules");
const adapter = arg("adapter", "deploy/prometheus/adapter-rules.yaml");
if (!prometheus || !exported.length) {
  console.error("usage: check_queries.mjs --prometheus URL --exported m1,m2 [--planned ...] [--known-empty ...] [--wait s]");
  process.exit(2);
}

// Grafana's variables, as the dashboard would expand them with "All" picked.
const GRAFANA_VARS = {
  __rate_interval: "15s", __interval: "5s", __range: "1m",
  job: ".+", instance: ".+", model: ".+",
};
function expandGrafana(expr) {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (m, a, b, c) => {
    const name = a ?? b ?? c;
    if (!(name in GRAFANA_VARS)) throw new Error(`unknown dashboard variable $${name} in: ${expr}`);
    return GRAFANA_VARS[name];
  });
}

const mentions = (expr, metric) =>
  new RegExp(`(^|[^\\w:])${metric}(_bucket|_sum|_count)?($|[^\\w:])`).test(expr);

// ---- the queries ---------------------------------------------------------------
const checks = []; // {what, expr, mode: "data"|"alert", metrics}

for (const file of dashboards) {
  const dash = JSON.parse(fs.readFileSync(path.resolve(root, file), "utf8"));
  const walk = (panels) => {
    for (const p of panels ?? []) {
      walk(p.panels);
      for (const t of p.targets ?? []) {
        checks.push({ what: `panel "${p.title}" ${t.refId}`, expr: expandGrafana(t.expr), mode: "data" });
      }
    }
  };
  walk(dash.panels);
  for (const v of dash.templating?.list ?? []) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : v.query.query;
    const m = q.match(/^label_values\((.*),\s*(\w+)\)$/s);
    if (!m) throw new Error(`variable ${v.name}: only label_values(expr, label) is checked, got ${q}`);
    checks.push({ what: `variable $${v.name}`, expr: `count by (${m[2]}) (${expandGrafana(m[1])})`, mode: "data" });
  }
}

const recorded = new Map(); // recording rule name -> its expression
for (const name of fs.readdirSync(path.resolve(root, rulesDir)).filter((f) => /\.ya?ml$/.test(f)).sort()) {
  const doc = YAML.parse(fs.readFileSync(path.resolve(root, rulesDir, name), "utf8"));
  for (const g of doc.groups) {
    for (const r of g.rules) {
      if (r.record) {
        recorded.set(r.record, r.expr);
        checks.push({ what: `rule ${r.record} (expr)`, expr: r.expr, mode: "data" });
        checks.push({ what: `rule ${r.record} (recorded series)`, expr: r.record, mode: "data" });
      } else {
        checks.push({ what: `alert ${r.alert}`, expr: r.expr, mode: "alert" });
      }
    }
  }
}

if (adapter) {
  const doc = YAML.parse(fs.readFileSync(path.resolve(root, adapter), "utf8"));
  for (const r of doc.rules) {
    const metric = r.seriesQuery.match(/^[a-zA-Z_:][\w:]*/)[0];
    checks.push({ what: `adapter ${metric} (seriesQuery)`, expr: r.seriesQuery, mode: "parse" });
    const expr = r.metricsQuery.replaceAll("<<.Series>>", metric)
      .replaceAll("<<.LabelMatchers>>", 'job="mmfuse"').replaceAll("<<.GroupBy>>", "instance");
    checks.push({ what: `adapter ${metric} (metricsQuery)`, expr, mode: "data" });
  }
}

for (const m of exported) {
  checks.push({ what: `exported metric ${m}`, expr: `count({__name__=~"${m}|${m}_count"})`, mode: "data", metric: m });
}

// Which metrics (and through recording rules, which raw metrics) a query reads.
const rawMetrics = [...exported, ...planned, ...knownEmpty, "up"];
function metricsOf(expr, depth = 0) {
  const found = new Set(rawMetrics.filter((m) => mentions(expr, m)));
  if (depth < 5) {
    for (const [name, e] of recorded) {
      if (mentions(expr, name)) for (const m of metricsOf(e, depth + 1)) found.add(m);
    }
  }
  return found;
}
for (const c of checks) c.metrics = c.metric ? new Set([c.metric]) : metricsOf(c.expr);

// ---- evaluation -----------------------------------------------------------------
async function query(expr) {
  const res = await fetch(`${prometheus}/api/v1/query`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ query: expr }),
  });
  return res.json();
}

async function evaluate(c) {
  const r = await query(c.expr);
  if (r.status !== "success") return { fail: `does not parse/evaluate: ${r.error}` };
  if (c.mode === "parse") return { ok: "parses" };
  const excused = [...c.metrics].filter((m) => planned.includes(m) || knownEmpty.includes(m));
  if (c.mode === "alert") {
    const missing = [];
    for (const m of c.metrics) {
      if (excused.includes(m)) continue;
      const s = await query(`count({__name__=~"${m}|${m}_count"})`);
      if (s.status !== "success" || !s.data.result.length) missing.push(m);
    }
    for (const name of recorded.keys()) {
      if (!mentions(c.expr, name) || [...metricsOf(name)].some((m) => excused.includes(m))) continue;
      const s = await query(name);
      if (!s.data?.result?.length) missing.push(name);
    }
    if (missing.length) return { fail: `reads series with no data: ${missing.join(", ")}` };
    return { ok: `parses, inputs have data${excused.length ? ` (planned/known-empty: ${excused.join(", ")})` : ""}` };
  }
  if (r.data.result.length) return { ok: `${r.data.result.length} series` };
  if (excused.length) return { ok: `empty, allowed: reads ${excused.join(", ")}` };
  return { fail: "returned no data" };
}

async function rulesHealthy() {
  const r = await (await fetch(`${prometheus}/api/v1/rules`)).json();
  const bad = [];
  let count = 0;
  for (const g of r.data.groups) {
    for (const rule of g.rules) {
      count++;
      if (rule.health !== "ok") bad.push(`${rule.name}: ${rule.health} ${rule.lastError ?? ""}`);
    }
  }
  if (count !== recorded.size + checks.filter((c) => c.mode === "alert").length) {
    bad.push(`Prometheus loaded ${count} rules, the rule files hold ${recorded.size + checks.filter((c) => c.mode === "alert").length}`);
  }
  return bad;
}

const deadline = Date.now() + waitSeconds * 1000;
let results;
let ruleProblems;
for (;;) {
  results = [];
  for (const c of checks) results.push({ c, ...(await evaluate(c)) });
  ruleProblems = await rulesHealthy();
  const failing = results.filter((r) => r.fail).length + ruleProblems.length;
  if (!failing || Date.now() > deadline) break;
  await new Promise((r) => setTimeout(r, 2000));
}

for (const r of results) {
  console.log(`${r.fail ? "FAIL" : "ok  "} ${r.c.what}: ${r.fail ?? r.ok}`);
  if (r.fail) console.log(`       ${r.c.expr.replace(/\s+/g, " ").trim()}`);
}
for (const p of ruleProblems) console.log(`FAIL rule health: ${p}`);
const failed = results.filter((r) => r.fail).length + ruleProblems.length;
console.log(`${checks.length} queries checked, ${failed} failed`);
process.exit(failed ? 1 : 0);
