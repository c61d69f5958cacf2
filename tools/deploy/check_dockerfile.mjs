#!/usr/bin/env node
// Checks the Dockerfile without a Docker engine (Debian 12 host with the
// project built; no npm packages needed):
//   1. every file the build stages COPY from the build context exists and is
//      not excluded by .dockerignore; every subdirectory the top-level
//      CMakeLists.txt adds (tests aside) is copied;
//   2. the build stages install scripts/setup.sh's packages (minus the
//      test-only ones);
//   3. the runtime stages' apt packages provide every shared library of
//      mmfuse-server and mmfuse: ldd -> dpkg -S -> package, which must be
//      listed, pulled in by a listed package's Depends (first alternatives,
//      as apt picks them, from this machine's dpkg database), or part of
//      debian:12-slim (DEBIAN_12_SLIM below);
//   4. ENTRYPOINT, HEALTHCHECK and the Kubernetes flag files use only flags
//      the binaries define (`--helpfull`), and the image's contract holds:
//      non-root USER, EXPOSE 50051 9464, the default model package copied.
// Only the default (cpu) variant is resolved; the cuda stages are parsed but
// cannot be checked here (no CUDA LibTorch).
//
//   node tools/deploy/check_dockerfile.mjs [--context DIR] <build dir>
// (--context: another build context holding Dockerfile and .dockerignore;
// default the repository root.)
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const argv = process.argv.slice(2);
const ctxAt = argv.indexOf("--context");
const root = ctxAt >= 0 ? path.resolve(argv.splice(ctxAt, 2)[1])
  : path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const build = path.resolve(argv[0] ?? path.join(root, "build"));
const errors = [];
const fail = (m) => errors.push(m);
const note = (m) => console.log(m);

// Packages of the debian:12-slim image (bookworm) that can provide shared
// libraries, as `dpkg-query -W` lists them in the image. Only consulted for
// libraries no listed package depends on (in practice libc6, libstdc++6,
// libgcc-s1 and the like); deliberately conservative.
const DEBIAN_12_SLIM = new Set([
  "libc6", "libgcc-s1", "libstdc++6", "gcc-12-base", "zlib1g", "libzstd1", "liblzma5",
  "libbz2-1.0", "liblz4-1", "libselinux1", "libpcre2-8-0", "libudev1", "libsystemd0",
  "libuuid1", "libblkid1", "libmount1", "libsmartcols1", "libgcrypt20", "libgpg-error0",
  "libgnutls30", "libnettle8", "libhogweed6", "libgmp10", "libidn2-0", "libunistring2",
  "libtasn1-6", "libp11-kit0", "libffi8", "libmd0", "libcrypt1", "libacl1", "libattr1",
  "libcap2", "libcap-ng0", "libaudit1", "libaudit-common", "libtinfo6", "libxxhash0",
  "libseccomp2", "libdb5.3", "libpam0g", "libsemanage2", "libsepol2",
]);
// scripts/setup.sh packages the image build does not need: it builds with
// MMFUSE_BUILD_TESTS=OFF, and runs neither the benchmarks (the Python peer,
// plots, AVD-10's media preparation) nor the TLS tests' certificate making.
const TEST_ONLY = new Set([
  "googletest", "libgtest-dev", "libgmock-dev", "libbenchmark-dev", "clang", "libclang-rt-14-dev",
  "openssl", "jq", "python3-soundfile",
  "python3-torch", "python3-grpcio", "python3-protobuf", "python3-numpy", "python3-matplotlib",
]);

// ---- Dockerfile parsing --------------------------------------------------------

function parseDockerfile(text) {
  const lines = text.split("\n");
  const instructions = [];
  let cur = "";
  for (const raw of lines) {
    const line = raw.replace(/\r$/, "");
    if (!cur && (/^\s*#/.test(line) || !line.trim())) continue;
    if (cur && /^\s*#/.test(line)) continue; // comment inside a continuation
    if (/\\\s*$/.test(line)) {
      cur += line.replace(/\\\s*$/, " ");
      continue;
    }
    cur += line;
    const m = cur.trim().match(/^(\w+)\s+([\s\S]*)$/);
    if (m) instructions.push({ op: m[1].toUpperCase(), args: m[2].trim() });
    cur = "";
  }
  return instructions;
}

function words(args) {
  if (args.startsWith("[")) return JSON.parse(args);
  return args.split(/\s+/).filter(Boolean);
}

const text = fs.readFileSync(path.join(root, "Dockerfile"), "utf8");
const instructions = parseDockerfile(text);
const globalArgs = new Map();
const stages = []; // {base, name, ins: []}
for (const ins of instructions) {
  if (ins.op === "FROM") {
    const w = words(ins.args).filter((x) => !x.startsWith("--"));
    stages.push({ base: w[0], name: w[2] ?? String(stages.length), ins: [] });
  } else if (!stages.length) {
    if (ins.op === "ARG") {
      const [k, v] = ins.args.split("=");
      globalArgs.set(k.trim(), (v ?? "").trim());
    }
  } else {
    stages[stages.length - 1].ins.push(ins);
  }
}
const expand = (s) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a, b) => globalArgs.get(a ?? b) ?? m);
const stageByName = new Map(stages.map((s) => [s.name, s]));
if (globalArgs.get("VARIANT") !== "cpu") fail(`ARG VARIANT must default to cpu, not ${globalArgs.get("VARIANT")}`);

// The chain of stages an image stage builds on, for the default variant.
function chain(name) {
  const out = [];
  let s = stageByName.get(name);
  while (s) {
    out.push(s);
    s = stageByName.get(expand(s.base));
  }
  return out;
}
const finalStage = stages[stages.length - 1];
const runtimeChain = chain(finalStage.name);
const runtimeFromRefs = runtimeChain.flatMap((s) => s.ins.filter((i) => i.op === "COPY"))
  .map((i) => (i.args.match(/--from=(\S+)/) ?? [])[1]).filter(Boolean);
const buildName = runtimeFromRefs.find((r) => stageByName.has(r));
if (!buildName) fail("the runtime stages copy from no build stage");
const buildChain = buildName ? chain(buildName) : [];
const baseImage = (c) => expand(c[c.length - 1]?.base ?? "");
if (baseImage(buildChain) !== "debian:12") fail(`build stages must start FROM debian:12, not ${baseImage(buildChain)}`);
if (baseImage(runtimeChain) !== "debian:12-slim") fail(`runtime stages must start FROM debian:12-slim, not ${baseImage(runtimeChain)}`);
note(`stages for VARIANT=cpu: build ${buildChain.map((s) => s.name).reverse().join(" -> ")}; ` +
  `image ${runtimeChain.map((s) => s.name).reverse().join(" -> ")}`);

function aptPackages(chainStages) {
  const pkgs = new Set();
  for (const s of chainStages) {
    for (const i of s.ins.filter((x) => x.op === "RUN")) {
      for (const m of i.args.matchAll(/apt-get install((?:\s+[^&;|]+))/g)) {
        for (const w of m[1].trim().split(/\s+/)) if (!w.startsWith("-")) pkgs.add(w);
      }
    }
  }
  return pkgs;
}

// ---- 1. build context ----------------------------------------------------------

// .dockerignore as Docker's patternmatcher reads it: filepath.Match per path
// element plus "**", leading "/" dropped, "!" re-includes, the last match wins.
const ignorePatterns = fs.readFileSync(path.join(root, ".dockerignore"), "utf8").split("\n")
  .map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
  .map((l) => {
    const negate = l.startsWith("!");
    let p = path.posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+/, "").replace(/\/+$/, "");
    const re = p.split("/").map((seg) => (seg === "**" ? "(?:.*)" :
      seg.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]"))).join("/")
      .replace(/\(\?:\.\*\)\//g, "(?:.*/)?");
    return { negate, re: new RegExp(`^${re}$`) };
  });
function ignored(rel) {
  // A path is excluded if it or one of its parent directories matches.
  const parts = rel.split("/");
  let result = false;
  for (let n = 1; n <= parts.length; n++) {
    const p = parts.slice(0, n).join("/");
    for (const pat of ignorePatterns) if (pat.re.test(p)) result = !pat.negate;
    if (result && n < parts.length) return true;
  }
  return result;
}
function anyIncludedFile(abs, rel) {
  if (!fs.statSync(abs).isDirectory()) return !ignored(rel);
  return fs.readdirSync(abs).some((e) => anyIncludedFile(path.join(abs, e), `${rel}/${e}`));
}

const copied = new Set();
for (const s of stages) {
  for (const i of s.ins.filter((x) => x.op === "COPY" || x.op === "ADD")) {
    const w = words(i.args);
    if (w.some((x) => x.startsWith("--from="))) continue; // another stage or named context
    const srcs = w.filter((x) => !x.startsWith("--")).slice(0, -1);
    for (const src of srcs) {
      const rel = path.posix.normalize(src).replace(/\/+$/, "").replace(/^\.\//, "");
      const abs = path.join(root, rel);
      if (!fs.existsSync(abs)) fail(`${s.name}: COPY ${src}: no such file in the build context`);
      else if (rel !== "." && ignored(rel)) fail(`${s.name}: COPY ${src}: excluded by .dockerignore`);
      else if (!anyIncludedFile(abs, rel)) fail(`${s.name}: COPY ${src}: every file excluded by .dockerignore`);
      copied.add(rel);
    }
  }
}
for (const rel of ["build", "models", "datasets", ".git", "tools/deploy/node_modules"]) {
  if (!ignored(rel)) fail(`.dockerignore must exclude ${rel}`);
}
const buildCopied = new Set(buildChain.flatMap((s) => s.ins.filter((i) => i.op === "COPY" && !/--from=/.test(i.args))
  .flatMap((i) => words(i.args).slice(0, -1).map((x) => x.replace(/\/+$/, "")))));
const cmake = fs.readFileSync(path.join(root, "CMakeLists.txt"), "utf8");
for (const m of cmake.matchAll(/add_subdirectory\((\w+)\)/g)) {
  if (m[1] === "tests") continue;
  if (!buildCopied.has(m[1]) && !buildCopied.has(".")) fail(`the build stage does not COPY ${m[1]}/ (CMakeLists.txt adds it)`);
}
for (const f of ["CMakeLists.txt", "scripts"]) {
  if (!buildCopied.has(f) && !buildCopied.has(".")) fail(`the build stage does not COPY ${f}`);
}
note(`build context: ${copied.size} COPY sources checked against the context and .dockerignore`);

// ---- 2. build packages -----------------------------------------------------------

const setup = fs.readFileSync(path.join(root, "scripts/setup.sh"), "utf8");
const setupPkgs = (setup.match(/PACKAGES=\(([\s\S]*?)\)/)?.[1] ?? "").split(/\s+/).filter(Boolean);
if (!setupPkgs.length) fail("no PACKAGES=( ... ) in scripts/setup.sh");
const buildPkgs = aptPackages(buildChain);
for (const p of setupPkgs) {
  if (!TEST_ONLY.has(p) && !buildPkgs.has(p)) fail(`the build stages do not install ${p} (scripts/setup.sh does)`);
}
note(`build stages install scripts/setup.sh's ${setupPkgs.length - TEST_ONLY.size} non-test packages`);

// ---- 3. runtime libraries ----------------------------------------------------------

const binaries = ["mmfuse-server", "mmfuse"].map((b) => path.join(build, "bin", b));
for (const b of binaries) if (!fs.existsSync(b)) fail(`${b} missing: build it first`);
const runtimePkgs = aptPackages(runtimeChain);
if (binaries.every((b) => fs.existsSync(b))) {
  const libs = new Set();
  for (const b of binaries) {
    const out = execFileSync("ldd", [b], { encoding: "utf8" });
    for (const line of out.split("\n")) {
      const m = line.match(/=>\s*(\/\S+)/);
      if (m) libs.add(fs.realpathSync(m[1]));
      if (/not found/.test(line)) fail(`${b}: ${line.trim()}`);
    }
  }
  // One dpkg -S for all paths (each call reads the whole file database). With
  // merged /usr, dpkg may know a library under /lib or /usr/lib: ask both.
  const variants = (file) => [...new Set([file, file.replace(/^\/usr\/lib\//, "/lib/"),
    file.replace(/^\/lib\//, "/usr/lib/")])];
  const owners = new Map();
  const r = spawnSync("dpkg", ["-S", ...[...libs].flatMap(variants)], { encoding: "utf8", maxBuffer: 1 << 26 });
  for (const line of r.stdout.split("\n")) {
    const m = line.match(/^(.+?): (\/.*)$/);
    if (m) owners.set(m[2], m[1].split(",")[0].split(":")[0].trim());
  }
  const owner = (file) => variants(file).map((v) => owners.get(v)).find(Boolean) ?? null;
  const required = new Map(); // package -> a library it provides
  for (const lib of libs) {
    const pkg = owner(lib);
    if (!pkg) fail(`${lib}: no Debian package owns it (built locally? the image cannot get it from apt)`);
    else if (!required.has(pkg)) required.set(pkg, lib);
  }

  // Depends closure of the runtime list in this machine's dpkg database.
  const db = new Map();
  const provides = new Map();
  const q = execFileSync("dpkg-query", ["-W", "-f", "${Package}\t${Depends}\t${Pre-Depends}\t${Provides}\t${db:Status-Status}\n"], { encoding: "utf8" });
  for (const line of q.split("\n").filter(Boolean)) {
    const [pkg, dep, pre, prov, status] = line.split("\t");
    if (status !== "installed") continue;
    db.set(pkg, [dep, pre].filter(Boolean).join(", "));
    for (const p of (prov ?? "").split(",").map((x) => x.trim().split(/[\s(]/)[0]).filter(Boolean)) {
      if (!provides.has(p)) provides.set(p, []);
      provides.get(p).push(pkg);
    }
  }
  const closure = new Set();
  const visit = (pkg) => {
    if (closure.has(pkg)) return;
    if (!db.has(pkg)) {
      for (const real of provides.get(pkg) ?? []) visit(real);
      return;
    }
    closure.add(pkg);
    for (const group of db.get(pkg).split(",").map((x) => x.trim()).filter(Boolean)) {
      visit(group.split("|")[0].trim().split(/[\s(:]/)[0]);
    }
  };
  for (const p of runtimePkgs) {
    if (!db.has(p)) fail(`runtime package ${p} is not installed here, so its dependencies cannot be checked`);
    visit(p);
  }
  let missing = 0;
  for (const [pkg, lib] of [...required].sort()) {
    if (!closure.has(pkg) && !DEBIAN_12_SLIM.has(pkg)) {
      fail(`runtime stages lack ${pkg} (provides ${lib}); add it to runtime-base's or runtime-cpu's apt-get install`);
      missing++;
    }
  }
  note(`runtime: ${libs.size} shared libraries from ${required.size} packages, covered by ` +
    `[${[...runtimePkgs].join(" ")}] (+${closure.size - runtimePkgs.size} through their dependencies) ` +
    `and debian:12-slim${missing ? `; ${missing} missing` : ""}`);

  // ---- 4. flags ------------------------------------------------------------------
  const definedFlags = (bin) => {
    const r = spawnSync(bin, ["--helpfull"], { encoding: "utf8" });
    return new Set([...`${r.stdout}${r.stderr}`.matchAll(/^\s+--(\w+) \(/gm)].map((m) => m[1]));
  };
  const serverFlags = definedFlags(binaries[0]);
  const cliFlags = definedFlags(binaries[1]);
  for (const f of ["host", "port", "metrics_port", "model_dir", "flagfile"]) {
    if (!serverFlags.has(f)) fail(`mmfuse-server --helpfull does not list --${f}`);
  }
  const flagsIn = (ws) => ws.filter((w) => w.startsWith("--")).map((w) => w.slice(2).split("=")[0]);
  const entry = finalStage.ins.find((i) => i.op === "ENTRYPOINT");
  const health = finalStage.ins.find((i) => i.op === "HEALTHCHECK");
  if (!entry) fail("the image has no ENTRYPOINT");
  else {
    const w = words(entry.args);
    if (w[0] !== "mmfuse-server") fail(`ENTRYPOINT runs ${w[0]}, not mmfuse-server`);
    for (const f of flagsIn(w)) if (!serverFlags.has(f)) fail(`ENTRYPOINT flag --${f}: mmfuse-server has no such flag`);
    const val = (f) => w[w.indexOf(`--${f}`) + 1];
    const want = { host: "0.0.0.0", port: "50051", metrics_port: "9464", model_dir: "/models/default" };
    for (const [f, v] of Object.entries(want)) if (val(f) !== v) fail(`ENTRYPOINT needs --${f} ${v}`);
  }
  if (!health) fail("the image has no HEALTHCHECK");
  else {
    const w = words(health.args.replace(/^.*?\bCMD\s+/, ""));
    if (w[0] !== "mmfuse" || w[1] !== "health") fail("HEALTHCHECK must run `mmfuse health`");
    if (w[w.indexOf("--server") + 1] !== "127.0.0.1:50051") fail("HEALTHCHECK must check --server 127.0.0.1:50051");
    for (const f of flagsIn(w)) if (!cliFlags.has(f)) fail(`HEALTHCHECK flag --${f}: mmfuse has no such flag`);
  }
  for (const file of ["deploy/k8s/base/mmfuse.flags", "deploy/k8s/overlays/gpu/mmfuse.flags"]) {
    const flags = fs.readFileSync(path.join(root, file), "utf8").split("\n").map((l) => l.trim()).filter(Boolean);
    for (const f of flagsIn(flags)) if (!serverFlags.has(f)) fail(`${file}: mmfuse-server has no flag --${f}`);
  }
  note(`flags: ENTRYPOINT, HEALTHCHECK and the Kubernetes flag files use only defined flags`);
}

// ---- image contract --------------------------------------------------------------

const finalIns = runtimeChain.flatMap((s) => s.ins);
const user = finalIns.filter((i) => i.op === "USER").pop()?.args ?? "";
if (!user || /^(root|0)(:|$)/.test(user)) fail(`the image must run as a non-root USER, not "${user}"`);
const exposed = new Set(finalIns.filter((i) => i.op === "EXPOSE").flatMap((i) => words(i.args)));
for (const p of ["50051", "9464"]) if (!exposed.has(p)) fail(`EXPOSE ${p} missing`);
if (!finalIns.some((i) => i.op === "COPY" && /--from=\S+\s+\S*models\/default\/?\s+\/models\/default\/?$/.test(i.args))) {
  fail("the image must COPY the default model package to /models/default");
}
if (!buildChain.some((s) => s.ins.some((i) => i.op === "RUN" && /scripts\/make_default_model\.sh/.test(i.args)))) {
  fail("the build stage must create the default model package with scripts/make_default_model.sh");
}

if (errors.length) {
  for (const e of errors) console.error(`FAIL ${e}`);
  process.exit(1);
}
console.log("Dockerfile ok");
