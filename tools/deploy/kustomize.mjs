#!/usr/bin/env node
// The subset of kustomize (v5 semantics) that deploy/k8s uses, so the
// manifests can be rendered and checked where no kustomize/kubectl exists.
// Users run the real thing:  kubectl kustomize deploy/k8s/overlays/cpu
//
//   node tools/deploy/kustomize.mjs <kustomization dir>    prints the YAML stream
//
// Supported kustomization fields: resources (files and directories),
// namespace, labels (pairs, includeTemplates), images (name, newName, newTag,
// digest), patches (strategic merge, from `path` or inline `patch`, matched
// by the patch's kind and name), configMapGenerator (files, literals,
// behavior create|replace|merge; name suffixed with kustomize's content hash
// and references in pod templates updated). Anything else is an error, never
// silently ignored: extend this file (and its test) before using more.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const SUPPORTED_FIELDS = new Set([
  "apiVersion", "kind", "resources", "namespace", "labels", "images", "patches",
  "configMapGenerator",
]);

// Kinds that live outside namespaces; the namespace transformer skips them.
const CLUSTER_SCOPED = new Set([
  "Namespace", "Node", "PersistentVolume", "StorageClass", "CustomResourceDefinition",
  "ClusterRole", "ClusterRoleBinding", "PriorityClass", "RuntimeClass", "IngressClass",
  "APIService", "CSIDriver", "CSINode", "VolumeAttachment", "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration", "PodSecurityPolicy",
]);

// kustomize's "legacy" output order (api/resource/resource.go); others go
// between the two lists, then everything by kind and name.
const ORDER_FIRST = [
  "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
  "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap",
  "Secret", "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume",
  "PersistentVolumeClaim", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget",
];
const ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"];

// Workload kinds whose pod template sits at spec.template.
const TEMPLATE_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);

class KustomizeError extends Error {}

function fail(dir, message) {
  throw new KustomizeError(`${dir}: ${message}`);
}

function readYamlStream(file) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  const objects = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new KustomizeError(`${file}: ${doc.errors[0].message}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) objects.push(value);
  }
  return objects;
}

function kustomizationFile(dir) {
  for (const name of ["kustomization.yaml", "kustomization.yml", "Kustomization"]) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  return null;
}

function id(obj) {
  return `${obj.kind}/${obj.metadata?.name}`;
}

// ---- strategic merge -------------------------------------------------------

// Merge key of a list field, as the Kubernetes API declares it
// (patchMergeKey); lists without one are atomic and replaced whole.
function mergeKey(field, items) {
  const first = items.find((x) => x && typeof x === "object");
  if (!first) return null;
  switch (field) {
    case "containers":
    case "initContainers":
    case "ephemeralContainers":
    case "volumes":
    case "env":
    case "imagePullSecrets":
      return "name";
    case "volumeMounts":
      return "mountPath";
    case "ports":
      return "containerPort" in first ? "containerPort" : "port";
    default:
      return null;
  }
}

function strategicMerge(target, patch, where) {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  if (target === null || typeof target !== "object" || Array.isArray(target)) target = {};
  const out = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith("$")) throw new KustomizeError(`${where}: directive ${key} is not supported`);
    if (value === null) {
      delete out[key];
    } else if (Array.isArray(value)) {
      const mk = mergeKey(key, value);
      if (mk && Array.isArray(out[key])) {
        // As kustomize orders them: the patch's items first (merged into
        // their namesakes), then the target's items the patch did not name.
        const merged = value.map((item) => {
          const old = out[key].find((x) => x && x[mk] === item[mk]);
          return old ? strategicMerge(old, item, `${where}.${key}`) : item;
        });
        const named = new Set(value.map((item) => item[mk]));
        out[key] = [...merged, ...out[key].filter((x) => !(x && named.has(x[mk])))];
      } else {
        out[key] = value;
      }
    } else if (typeof value === "object") {
      out[key] = strategicMerge(out[key], value, `${where}.${key}`);
    } else {
      out[key] = value;
    }
  }
  return out;
}

// ---- generators ------------------------------------------------------------

// kustomize's hash suffix (api/hasher/hasher.go): sha256 of the JSON of
// kind, name and data (keys sorted, as Go's encoding/json writes maps), first
// 10 hex digits with the characters that could spell words swapped out.
function goJson(value) {
  if (value === null || typeof value !== "object") {
    // Go escapes <, > and & in strings.
    return JSON.stringify(value).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
  }
  if (Array.isArray(value)) return `[${value.map(goJson).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${goJson(k)}:${goJson(value[k])}`).join(",")}}`;
}

function configMapHash(cm) {
  // The name is always "": kustomize looks it up with yaml.Lookup("metadata/name"),
  // one field literally named so, which never exists. Hashes must match.
  const encoded = { kind: "ConfigMap", name: "", data: cm.data ?? {} };
  if (cm.binaryData && Object.keys(cm.binaryData).length) encoded.binaryData = cm.binaryData;
  const hex = crypto.createHash("sha256").update(goJson(encoded)).digest("hex");
  const swap = { 0: "g", 1: "h", 3: "k", a: "m", e: "t" };
  return [...hex.slice(0, 10)].map((c) => swap[c] ?? c).join("");
}

function generateConfigMap(dir, spec) {
  const known = new Set(["name", "behavior", "files", "literals"]);
  for (const key of Object.keys(spec)) {
    if (!known.has(key)) fail(dir, `configMapGenerator field "${key}" is not supported`);
  }
  const data = {};
  for (const entry of spec.files ?? []) {
    const [key, file] = entry.includes("=") ? entry.split(/=(.*)/s, 2) : [path.basename(entry), entry];
    data[key] = fs.readFileSync(path.join(dir, file), "utf8");
  }
  for (const literal of spec.literals ?? []) {
    const [key, value] = literal.split(/=(.*)/s, 2);
    data[key] = value;
  }
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: spec.name },
    data,
    // Not output: marks objects whose name gets the hash suffix.
    [GENERATED]: true,
  };
}

const GENERATED = Symbol("generated");

// ---- transformers ----------------------------------------------------------

function podTemplates(obj) {
  const templates = [];
  if (TEMPLATE_KINDS.has(obj.kind) && obj.spec?.template) templates.push(obj.spec.template);
  if (obj.kind === "CronJob" && obj.spec?.jobTemplate?.spec?.template) {
    templates.push(obj.spec.jobTemplate.spec.template);
  }
  if (obj.kind === "Pod") templates.push(obj);
  return templates;
}

function applyLabels(dir, objects, entries) {
  for (const entry of entries) {
    for (const key of Object.keys(entry)) {
      if (!["pairs", "includeTemplates", "includeSelectors"].includes(key)) {
        fail(dir, `labels field "${key}" is not supported`);
      }
    }
    if (entry.includeSelectors) fail(dir, "labels.includeSelectors is not supported");
    for (const obj of objects) {
      obj.metadata.labels = { ...(obj.metadata.labels ?? {}), ...entry.pairs };
      if (entry.includeTemplates) {
        for (const t of podTemplates(obj)) {
          if (t === obj) continue;
          t.metadata = t.metadata ?? {};
          t.metadata.labels = { ...(t.metadata.labels ?? {}), ...entry.pairs };
        }
      }
    }
  }
}

function splitImage(image) {
  let rest = image;
  let digest = "";
  const at = rest.indexOf("@");
  if (at >= 0) [rest, digest] = [rest.slice(0, at), rest.slice(at + 1)];
  let tag = "";
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) [rest, tag] = [rest.slice(0, colon), rest.slice(colon + 1)];
  return { name: rest, tag, digest };
}

function applyImages(dir, objects, images) {
  for (const img of images) {
    for (const key of Object.keys(img)) {
      if (!["name", "newName", "newTag", "digest"].includes(key)) {
        fail(dir, `images field "${key}" is not supported`);
      }
    }
    for (const obj of objects) {
      for (const t of podTemplates(obj)) {
        for (const c of [...(t.spec?.containers ?? []), ...(t.spec?.initContainers ?? [])]) {
          const cur = splitImage(c.image ?? "");
          if (cur.name !== img.name) continue;
          let image = img.newName ?? cur.name;
          if (img.digest) image += `@${img.digest}`;
          else if (img.newTag !== undefined) image += `:${img.newTag}`;
          else if (cur.digest) image += `@${cur.digest}`;
          else if (cur.tag) image += `:${cur.tag}`;
          c.image = image;
        }
      }
    }
  }
}

function applyPatches(dir, objects, patches) {
  for (const entry of patches) {
    for (const key of Object.keys(entry)) {
      if (!["path", "patch"].includes(key)) fail(dir, `patches field "${key}" is not supported`);
    }
    const docs = entry.path
      ? readYamlStream(path.join(dir, entry.path))
      : YAML.parseAllDocuments(entry.patch).map((d) => d.toJS()).filter(Boolean);
    for (const patch of docs) {
      if (Array.isArray(patch)) fail(dir, "JSON 6902 patches are not supported");
      const i = objects.findIndex(
        (o) => o.kind === patch.kind && o.metadata.name === patch.metadata?.name);
      if (i < 0) fail(dir, `patch ${entry.path ?? "(inline)"}: no resource ${id(patch)}`);
      const generated = objects[i][GENERATED];
      objects[i] = strategicMerge(objects[i], patch, id(patch));
      if (generated) objects[i][GENERATED] = true;
    }
  }
}

// ---- build -----------------------------------------------------------------

function buildLevel(dir) {
  const file = kustomizationFile(dir);
  if (!file) fail(dir, "no kustomization.yaml");
  const [k] = readYamlStream(file);
  for (const key of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(key)) fail(dir, `field "${key}" is not supported by ${path.basename(fileURLToPath(import.meta.url))}`);
  }
  if (k.kind && k.kind !== "Kustomization") fail(dir, `kind ${k.kind} is not supported`);

  let objects = [];
  for (const res of k.resources ?? []) {
    const p = path.join(dir, res);
    if (!fs.existsSync(p)) fail(dir, `resource ${res} does not exist`);
    const added = fs.statSync(p).isDirectory() ? buildLevel(p) : readYamlStream(p);
    for (const obj of added) {
      if (!obj.metadata?.name) fail(dir, `${res}: object without metadata.name`);
      if (objects.some((o) => id(o) === id(obj))) fail(dir, `${id(obj)} defined twice`);
      objects.push(obj);
    }
  }

  for (const spec of k.configMapGenerator ?? []) {
    const cm = generateConfigMap(dir, spec);
    const i = objects.findIndex((o) => o.kind === "ConfigMap" && o.metadata.name === spec.name);
    const behavior = spec.behavior ?? "create";
    if (behavior === "create") {
      if (i >= 0) fail(dir, `ConfigMap ${spec.name} exists; use behavior: merge or replace`);
      objects.push(cm);
    } else if (behavior === "replace" || behavior === "merge") {
      if (i < 0) fail(dir, `ConfigMap ${spec.name} to ${behavior} does not exist`);
      const old = objects[i];
      cm.metadata = {
        ...old.metadata,
        labels: { ...(old.metadata.labels ?? {}), ...(cm.metadata.labels ?? {}) },
      };
      if (!Object.keys(cm.metadata.labels).length) delete cm.metadata.labels;
      if (behavior === "merge") cm.data = { ...(old.data ?? {}), ...cm.data };
      cm[GENERATED] = old[GENERATED] || cm[GENERATED];
      objects[i] = cm;
    } else {
      fail(dir, `configMapGenerator behavior ${behavior} is not supported`);
    }
  }

  // kustomize's transformer order: patches, namespace, labels, images.
  applyPatches(dir, objects, k.patches ?? []);
  if (k.namespace) {
    for (const obj of objects) {
      if (!CLUSTER_SCOPED.has(obj.kind)) obj.metadata.namespace = k.namespace;
    }
  }
  applyLabels(dir, objects, k.labels ?? []);
  applyImages(dir, objects, k.images ?? []);
  return objects;
}

// Appends the hash to generated ConfigMaps and renames their references in
// pod templates (volumes, envFrom, env valueFrom), as kustomize's name
// reference transformer does.
function finishNames(objects) {
  const renamed = new Map();
  for (const obj of objects) {
    if (!obj[GENERATED]) continue;
    const name = obj.metadata.name;
    obj.metadata.name = `${name}-${configMapHash(obj)}`;
    renamed.set(`${obj.metadata.namespace ?? ""}/${name}`, obj.metadata.name);
  }
  const lookup = (ns, name) => renamed.get(`${ns ?? ""}/${name}`) ?? name;
  for (const obj of objects) {
    for (const t of podTemplates(obj)) {
      const ns = obj.metadata.namespace;
      for (const v of t.spec?.volumes ?? []) {
        if (v.configMap) v.configMap.name = lookup(ns, v.configMap.name);
        for (const s of v.projected?.sources ?? []) {
          if (s.configMap) s.configMap.name = lookup(ns, s.configMap.name);
        }
      }
      for (const c of [...(t.spec?.containers ?? []), ...(t.spec?.initContainers ?? [])]) {
        for (const e of c.envFrom ?? []) {
          if (e.configMapRef) e.configMapRef.name = lookup(ns, e.configMapRef.name);
        }
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.configMapKeyRef;
          if (ref) ref.name = lookup(ns, ref.name);
        }
      }
    }
  }
}

function rank(kind) {
  const first = ORDER_FIRST.indexOf(kind);
  if (first >= 0) return first;
  const last = ORDER_LAST.indexOf(kind);
  return last >= 0 ? ORDER_FIRST.length + 1 + last : ORDER_FIRST.length;
}

function gvkString(obj) {
  const [group, version] = obj.apiVersion.includes("/")
    ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  return `${group === "" ? "~G" : group}_${version}_${obj.kind}`;
}

// Renders the kustomization in `dir`: the list of objects, in kustomize's
// legacy output order.
export function build(dir) {
  const objects = buildLevel(dir);
  finishNames(objects);
  const out = objects.map((o) => JSON.parse(JSON.stringify(o)));
  out.sort((a, b) => rank(a.kind) - rank(b.kind) ||
    gvkString(a).localeCompare(gvkString(b)) ||
    (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "") ||
    a.metadata.name.localeCompare(b.metadata.name));
  return out;
}

export function toYaml(objects) {
  return objects
    .map((o) => YAML.stringify(o, { sortMapEntries: true, lineWidth: 0, indentSeq: false }))
    .join("---\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  if (process.argv.length !== 3) {
    console.error("usage: node tools/deploy/kustomize.mjs <kustomization dir>");
    process.exit(2);
  }
  try {
    process.stdout.write(toYaml(build(process.argv[2])));
  } catch (e) {
    if (!(e instanceof KustomizeError)) throw e;
    console.error(`kustomize.mjs: ${e.message}`);
    process.exit(1);
  }
}
