#!/usr/bin/env node
// Renders kustomize overlays and validates every object:
//   1. against the Kubernetes OpenAPI schemas (npm kubernetes-models; the
//      Prometheus Operator CRDs through @kubernetes-models/prometheus-operator):
//      types, required fields, enums, formats;
//   2. for unknown fields (what `kubectl apply --validate=strict` rejects; the
//      schemas above allow them), read from the packages' type declarations;
//   3. for mmfuse's own deployment contract (probes, drain timing, security,
//      selectors that match, the GPU overlay's GPU).
// Optionally compares the rendering with real kustomize (--kubectl).
//
//   node tools/deploy/validate_k8s.mjs [--kubectl] <overlay dir>...
// Needs `npm ci` in tools/deploy first (tests/deploy/k8s_manifests_test.sh does it).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { build } from "./kustomize.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const errors = [];
const report = (where, message) => errors.push(`${where}: ${message}`);

// ---- 1. schema validation ----------------------------------------------------

function modelModule(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com") {
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  }
  const dir = group === "" ? version : `${group}/${version}`;
  return `kubernetes-models/${dir}/${kind}`;
}

async function schemaValidate(where, obj) {
  const mod = modelModule(obj.apiVersion, obj.kind);
  let exported;
  try {
    exported = await import(mod);
  } catch {
    report(where, `no schema for ${obj.apiVersion} ${obj.kind} (${mod})`);
    return null;
  }
  const Model = exported[obj.kind];
  try {
    new Model(obj).validate();
  } catch (e) {
    report(where, `schema: ${e.message}`);
  }
  return path.join(here, "node_modules", `${mod}.d.ts`);
}

// ---- 2. unknown fields -------------------------------------------------------
// A small parser for the TypeScript declarations kubernetes-models generates
// from the OpenAPI schemas: interfaces of quoted properties whose types are
// primitives, literal unions, Array<T>, { [key: string]: T }, inline object
// types (CRDs) or references to interfaces/aliases imported from other files.

function tokenize(text) {
  const tokens = [];
  const re = /\s+|\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:[^"\\]|\\.)*"|[A-Za-z_$][\w$]*|-?\d+(?:\.\d+)?|[{}\[\]<>();:?|,=]/g;
  let m;
  while ((m = re.exec(text))) {
    const t = m[0];
    if (/^\s/.test(t) || t.startsWith("/*") || t.startsWith("//")) continue;
    tokens.push(t);
  }
  return tokens;
}

// Type nodes: {t:"any"} | {t:"prim"} | {t:"obj", props, index} |
// {t:"arr", of} | {t:"ref", name, file} | {t:"union", of}

// Members of an object type, up to and including its closing brace.
function parseMembers(tok, file) {
  const props = new Map();
  let index = null;
  while (tok.length && tok[0] !== "}") {
    if (tok[0] === "[") { // [key: string]: T
      while (tok.shift() !== "]");
      tok.shift();
      index = parseType(tok, file);
    } else {
      let name = tok.shift();
      if (name.startsWith('"')) name = JSON.parse(name);
      if (tok[0] === "?") tok.shift();
      tok.shift(); // :
      props.set(name, parseType(tok, file));
    }
    if (tok[0] === ";" || tok[0] === ",") tok.shift();
  }
  tok.shift();
  return { t: "obj", props, index };
}

function parseType(tok, file) {
  const alts = [];
  do {
    if (tok[0] === "|") tok.shift();
    const t = tok.shift();
    if (t === "{") alts.push(parseMembers(tok, file));
    else if (t === "Array") {
      tok.shift();
      const of = parseType(tok, file);
      tok.shift();
      alts.push({ t: "arr", of });
    } else if (t.startsWith('"') || /^-?\d/.test(t) ||
               ["string", "number", "boolean", "null", "true", "false"].includes(t)) {
      alts.push({ t: "prim" });
    } else if (["any", "unknown", "object"].includes(t)) {
      alts.push({ t: "any" });
    } else {
      alts.push({ t: "ref", name: t, file });
    }
  } while (tok[0] === "|");
  return alts.length === 1 ? alts[0] : { t: "union", of: alts };
}

const declCache = new Map();

// Reads one .d.ts: its imports and its interface/type declarations.
function declarations(file) {
  if (declCache.has(file)) return declCache.get(file);
  const text = fs.readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
    for (const part of m[1].split(",")) {
      const [orig, alias] = part.trim().split(/\s+as\s+/);
      if (orig) imports.set(alias ?? orig, { name: orig, from: m[2] });
    }
  }
  const aliases = new Map();
  for (const m of text.matchAll(/export\s*\{([^}]*)\}/g)) {
    for (const part of m[1].split(",")) {
      const [orig, alias] = part.trim().split(/\s+as\s+/);
      if (alias) aliases.set(alias, orig);
    }
  }
  const decls = new Map();
  const tok = tokenize(text);
  for (let i = 0; i < tok.length; i++) {
    if (tok[i] === "interface") {
      const name = tok[i + 1];
      let j = i + 2;
      while (tok[j] !== "{") j++;
      const rest = tok.slice(j + 1);
      const before = rest.length;
      decls.set(name, parseMembers(rest, file));
      i = j + (before - rest.length);
    } else if (tok[i] === "type" && tok[i + 2] === "=") {
      const rest = tok.slice(i + 3);
      decls.set(tok[i + 1], parseType(rest, file));
    }
  }
  const result = { imports, aliases, decls };
  declCache.set(file, result);
  return result;
}

function resolveModule(from, spec) {
  const base = spec.startsWith(".") ? path.resolve(path.dirname(from), spec)
    : path.join(here, "node_modules", spec);
  return `${base}.d.ts`;
}

function resolveRef(node, depth = 0) {
  if (depth > 20) return { t: "any" };
  const { imports, aliases, decls } = declarations(node.file);
  const local = aliases.get(node.name) ?? node.name;
  if (decls.has(local)) {
    const d = decls.get(local);
    return d.t === "ref" ? resolveRef(d, depth + 1) : d;
  }
  const imp = imports.get(node.name);
  if (imp) return resolveRef({ t: "ref", name: imp.name, file: resolveModule(node.file, imp.from) }, depth + 1);
  return { t: "any" }; // e.g. ModelData: nothing to check
}

function unknownFields(where, value, type) {
  if (value === null || value === undefined) return;
  if (type.t === "ref") type = resolveRef(type);
  if (type.t === "union") {
    const objs = type.of.map((x) => (x.t === "ref" ? resolveRef(x) : x));
    const pick = Array.isArray(value) ? objs.find((x) => x.t === "arr")
      : typeof value === "object" ? objs.find((x) => x.t === "obj") : null;
    if (pick) unknownFields(where, value, pick);
    return;
  }
  if (type.t === "arr" && Array.isArray(value)) {
    value.forEach((v, i) => unknownFields(`${where}[${i}]`, v, type.of));
  } else if (type.t === "obj" && value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (type.props.has(k)) unknownFields(`${where}.${k}`, v, type.props.get(k));
      else if (type.index) unknownFields(`${where}.${k}`, v, type.index);
      else report(where, `unknown field "${k}"`);
    }
  }
}

function checkUnknownFields(where, obj, dtsFile) {
  const { decls } = declarations(dtsFile);
  const root = decls.get(`I${obj.kind}`);
  if (!root) {
    report(where, `no type declaration I${obj.kind} in ${dtsFile}`);
    return;
  }
  unknownFields(where, obj, root);
}

// ---- 3. mmfuse's contract ------------------------------------------------------

function matches(selector, labels) {
  return selector && Object.keys(selector).length > 0 &&
    Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function parseFlags(text) {
  const flags = new Map();
  for (const line of text.split("\n")) {
    const m = line.trim().match(/^--([a-z_]+)=(.*)$/);
    if (m) flags.set(m[1], m[2]);
  }
  return flags;
}

function checkContract(overlay, objects) {
  const w = (o) => `${overlay}: ${o.kind}/${o.metadata.name}`;
  const byKind = (k) => objects.filter((o) => o.kind === k);
  const [deploy] = byKind("Deployment");
  if (!deploy || byKind("Deployment").length !== 1) {
    report(overlay, "expected exactly one Deployment");
    return;
  }
  const where = w(deploy);
  const pod = deploy.spec.template;
  const podLabels = pod.metadata?.labels ?? {};
  if (!matches(deploy.spec.selector.matchLabels, podLabels)) report(where, "selector does not match the pod labels");
  const c = pod.spec.containers.find((x) => x.name === "mmfuse-server");
  if (!c) {
    report(where, "no container mmfuse-server");
    return;
  }
  for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"]) {
    if (c[probe]?.grpc?.port !== 50051) report(where, `${probe} must be a grpc probe on port 50051`);
  }
  for (const k of ["cpu", "memory"]) {
    if (!c.resources?.requests?.[k] || !c.resources?.limits?.[k]) report(where, `resources need requests and limits for ${k}`);
  }
  const podSec = pod.spec.securityContext ?? {};
  if (podSec.runAsNonRoot !== true && c.securityContext?.runAsNonRoot !== true) report(where, "runAsNonRoot must be true");
  if (c.securityContext?.readOnlyRootFilesystem !== true) report(where, "readOnlyRootFilesystem must be true");
  const tmp = (c.volumeMounts ?? []).find((m) => m.mountPath === "/tmp");
  const tmpVol = tmp && pod.spec.volumes.find((v) => v.name === tmp.name);
  if (!tmpVol?.emptyDir) report(where, "/tmp must be an emptyDir");
  const ports = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));
  if (ports.get("grpc") !== 50051 || ports.get("metrics") !== 9464) report(where, "ports grpc=50051 and metrics=9464 expected");
  const ann = pod.metadata?.annotations ?? {};
  if (ann["prometheus.io/scrape"] !== "true" || ann["prometheus.io/port"] !== "9464") report(where, "prometheus.io/scrape and prometheus.io/port=9464 annotations expected");

  // Flags: the ConfigMap the pod mounts, read through --flagfile.
  const flagfileArg = (c.args ?? []).find((a) => a.startsWith("--flagfile="));
  const flagsMount = flagfileArg && (c.volumeMounts ?? []).find((m) => flagfileArg.slice(11).startsWith(`${m.mountPath}/`));
  const flagsVol = flagsMount && pod.spec.volumes.find((v) => v.name === flagsMount.name);
  const cm = flagsVol?.configMap && objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === flagsVol.configMap.name);
  if (!cm) {
    report(where, "--flagfile must point into a mounted ConfigMap that the overlay renders");
    return;
  }
  const flags = parseFlags(cm.data[path.basename(flagfileArg.slice(11))] ?? "");
  const drain = Number(flags.get("drain_timeout_s") ?? 30);
  const preStop = c.lifecycle?.preStop?.exec?.command;
  const sleep = preStop?.[0] === "sleep" ? Number(preStop[1]) : 0;
  if (!preStop) report(where, "a preStop hook is expected");
  const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
  if (!(grace > sleep + drain)) {
    report(where, `terminationGracePeriodSeconds=${grace} must exceed preStop sleep ${sleep}s + --drain_timeout_s=${drain}`);
  }

  const services = byKind("Service");
  const headless = services.filter((s) => s.spec.clusterIP === "None");
  const clusterIp = services.filter((s) => s.spec.clusterIP !== "None" && (s.spec.type ?? "ClusterIP") === "ClusterIP");
  if (headless.length !== 1 || clusterIp.length !== 1) report(overlay, "expected one headless and one ClusterIP Service");
  for (const s of services) {
    if (!matches(s.spec.selector, podLabels)) report(w(s), "selector does not match the pod labels");
    for (const p of s.spec.ports) {
      if (typeof p.targetPort === "string" && !ports.has(p.targetPort)) report(w(s), `targetPort ${p.targetPort} is no container port`);
    }
  }
  for (const pdb of byKind("PodDisruptionBudget")) {
    if (!matches(pdb.spec.selector.matchLabels, podLabels)) report(w(pdb), "selector does not match the pod labels");
  }
  const hpas = byKind("HorizontalPodAutoscaler");
  if (hpas.length !== 1) report(overlay, "expected one HorizontalPodAutoscaler");
  for (const hpa of hpas) {
    const ref = hpa.spec.scaleTargetRef;
    if (ref.kind !== "Deployment" || ref.name !== deploy.metadata.name) report(w(hpa), "scaleTargetRef is not the Deployment");
    const types = hpa.spec.metrics.map((m) => m.type);
    if (!types.includes("Pods") || !hpa.spec.metrics.some((m) => m.type === "Resource" && m.resource.name === "cpu")) {
      report(w(hpa), "expected a Pods metric and a cpu Resource metric");
    }
    if (!(hpa.spec.minReplicas >= 1 && hpa.spec.maxReplicas >= hpa.spec.minReplicas)) {
      report(w(hpa), "need 1 <= minReplicas <= maxReplicas");
    }
  }
  for (const pm of byKind("PodMonitor")) {
    if (!matches(pm.spec.selector.matchLabels, podLabels)) report(w(pm), "selector does not match the pod labels");
    for (const ep of pm.spec.podMetricsEndpoints) {
      if (!ports.has(ep.port)) report(w(pm), `port ${ep.port} is no container port`);
    }
  }
  for (const o of objects) {
    if (!o.metadata.namespace && o.kind !== "Namespace") report(w(o), "no namespace");
  }
  return { deploy, c, pod };
}

function checkVariant(overlay, info) {
  if (!info) return;
  const { c, pod } = info;
  const gpu = path.basename(overlay) === "gpu";
  const where = `${overlay}: Deployment`;
  const hasGpu = c.resources?.limits?.["nvidia.com/gpu"] !== undefined;
  if (gpu) {
    if (!hasGpu) report(where, "the gpu overlay needs an nvidia.com/gpu limit");
    if (!Object.keys(pod.spec.nodeSelector ?? {}).length) report(where, "the gpu overlay needs a nodeSelector");
    if (!(pod.spec.tolerations ?? []).some((t) => t.key === "nvidia.com/gpu")) report(where, "the gpu overlay needs the nvidia.com/gpu toleration");
    if (!/cuda/.test(c.image)) report(where, `the gpu overlay needs the cuda image, not ${c.image}`);
  } else if (hasGpu || /cuda/.test(c.image)) {
    report(where, "a non-gpu overlay asks for a GPU or the cuda image");
  }
}

// ---- comparison with real kustomize -------------------------------------------

function compareWithKubectl(overlay, objects) {
  let text;
  try {
    text = execFileSync("kubectl", ["kustomize", overlay], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    report(overlay, `kubectl kustomize failed: ${e.stderr || e.message}`);
    return;
  }
  const theirs = YAML.parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean);
  const a = JSON.stringify(objects);
  const b = JSON.stringify(theirs);
  if (a !== b) {
    const sortKeys = (v) => (Array.isArray(v) ? v.map(sortKeys)
      : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])])) : v);
    if (JSON.stringify(sortKeys(objects)) !== JSON.stringify(sortKeys(theirs))) {
      const ours = objects.map((o) => `${o.kind}/${o.metadata.name}`).join(" ");
      const real = theirs.map((o) => `${o.kind}/${o.metadata.name}`).join(" ");
      report(overlay, `tools/deploy/kustomize.mjs and kubectl kustomize disagree\n  ours:    ${ours}\n  kubectl: ${real}`);
    }
  }
}

// ---- main ----------------------------------------------------------------------

const args = process.argv.slice(2);
const useKubectl = args.includes("--kubectl");
const overlays = args.filter((a) => !a.startsWith("--"));
if (!overlays.length) {
  console.error("usage: node tools/deploy/validate_k8s.mjs [--kubectl] <overlay dir>...");
  process.exit(2);
}
for (const overlay of overlays) {
  let objects;
  try {
    objects = build(overlay);
  } catch (e) {
    report(overlay, `render: ${e.message}`);
    continue;
  }
  for (const obj of objects) {
    const where = `${overlay}: ${obj.kind}/${obj.metadata.name}`;
    const dts = await schemaValidate(where, obj);
    if (dts) checkUnknownFields(where, obj, dts);
  }
  checkVariant(overlay, checkContract(overlay, objects));
  if (useKubectl) compareWithKubectl(overlay, objects);
  const kinds = objects.map((o) => o.kind).join(", ");
  console.log(`${overlay}: ${objects.length} objects (${kinds})${useKubectl ? ", same as kubectl kustomize" : ""}`);
}
if (errors.length) {
  for (const e of errors) console.error(`FAIL ${e}`);
  process.exit(1);
}
console.log("all objects valid");
