// ONNX Runtime (onnxruntime-node, one intra-op thread, sequential, every
// graph optimisation) running a model exported by bench/onnx/export_peer.py:
// the generic runtime mmfuse's raw forward is compared with, at the same
// shapes (bench/onnx/compare.sh).
//
//   node bench/onnx/ort_bench.mjs --model /tmp/default.onnx --check
//   node bench/onnx/ort_bench.mjs --model /tmp/default.onnx \
//       --frames audio=40,video=20,text=14 --batch_sizes 1,16 --seconds 3
//
// --check compares the probabilities with the PyTorch ones written beside
// the model (<model>.check.json) and fails beyond --tolerance. Otherwise
// prints one JSON line per batch size: samples/s and microseconds per batch,
// with every sample at the given frames (each modality's feature dim is read
// from <model>.check.json).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const args = { batch_sizes: '1,16', seconds: '3', tolerance: '1e-5', frames: '' };
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument "${arg}"`);
    const [key, inline] = arg.slice(2).split('=', 2);
    if (key === 'check') { args.check = true; continue; }
    const value = inline !== undefined ? inline : argv[++i];
    if (value === undefined) throw new Error(`--${key} needs a value`);
    args[key] = value;
  }
  if (!args.model) throw new Error('--model is required');
  return args;
}

async function openSession(path) {
  return ort.InferenceSession.create(path, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

function readReference(args) {
  return JSON.parse(readFileSync(`${args.model}.check.json`, 'utf8'));
}

async function check(session, args) {
  const reference = readReference(args);
  const feeds = {};
  for (const [name, input] of Object.entries(reference.inputs)) {
    feeds[name] = name.endsWith('_lengths')
      ? new ort.Tensor('int64', BigInt64Array.from(input.data.map((v) => BigInt(v))), input.shape)
      : new ort.Tensor('float32', Float32Array.from(input.data), input.shape);
  }
  const out = (await session.run(feeds)).probabilities.data;
  let worst = 0;
  reference.probabilities.forEach((p, i) => { worst = Math.max(worst, Math.abs(p - out[i])); });
  const ok = worst <= Number(args.tolerance);
  console.log(JSON.stringify({ check: ok ? 'ok' : 'failed', max_abs_diff: worst,
                               tolerance: Number(args.tolerance) }));
  if (!ok) process.exit(1);
}

// "audio=40,video=20" -> [{name, frames, dim}], dims from the reference
// inputs ([B, T, dim]). The exported graph needs every modality.
function parseShape(text, reference) {
  const shape = text.split(',').filter(Boolean).map((item) => {
    const match = /^([A-Za-z0-9_]+)=(\d+)$/.exec(item);
    if (!match || !reference.inputs[match[1]]) {
      throw new Error(`--frames has "${item}"; give name=FRAMES for each modality of the model`);
    }
    return { name: match[1], frames: Number(match[2]), dim: reference.inputs[match[1]].shape[2] };
  });
  const modalities = Object.keys(reference.inputs).filter((n) => !n.endsWith('_lengths'));
  if (shape.length !== modalities.length) {
    throw new Error(`--frames must name every modality: ${modalities.join(', ')}`);
  }
  return shape;
}

function randomFeeds(shape, batch) {
  const feeds = {};
  let seed = 12345;
  const next = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 - 0.5; };
  for (const { name, frames, dim } of shape) {
    const values = new Float32Array(batch * frames * dim);
    for (let i = 0; i < values.length; ++i) values[i] = next();
    feeds[name] = new ort.Tensor('float32', values, [batch, frames, dim]);
    feeds[`${name}_lengths`] = new ort.Tensor('int64', new BigInt64Array(batch).fill(BigInt(frames)), [batch]);
  }
  return feeds;
}

async function bench(session, args) {
  const shape = parseShape(args.frames, readReference(args));
  const seconds = Number(args.seconds);
  for (const batch of args.batch_sizes.split(',').map(Number)) {
    const feeds = randomFeeds(shape, batch);
    const warmEnd = performance.now() + 300;
    while (performance.now() < warmEnd) await session.run(feeds);
    let runs = 0;
    const start = performance.now();
    const end = start + seconds * 1000;
    let now = start;
    while (now < end) {
      await session.run(feeds);
      ++runs;
      now = performance.now();
    }
    const elapsed = (now - start) / 1000;
    console.log(JSON.stringify({ runtime: 'onnxruntime-node', batch, samples_per_s: (runs * batch) / elapsed,
                                 us_per_batch: (elapsed * 1e6) / runs, frames: args.frames }));
  }
}

const args = parseArgs(process.argv.slice(2));
const session = await openSession(args.model);
if (args.check) await check(session, args); else await bench(session, args);
