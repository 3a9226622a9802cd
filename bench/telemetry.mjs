#!/usr/bin/env node
// Telemetry publish throughput: raw mqtt.js QoS 1 publish (baseline) vs MqttPublisher (sign +
// durable outbox + QoS 1 publish), in the same process, alternating rounds, printing JSON ratios.
// Usage: node bench/telemetry.mjs [--broker mqtt://127.0.0.1:1883] [--n 2000] [--rounds 5]
// Without --broker it starts the embedded aedes broker in this process (both sides pay for it).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import mqtt from 'mqtt';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const N = Number(arg('n', 2000));
const ROUNDS = Number(arg('rounds', 5));
const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'ew-bench-tel-'));

// The SDK sources are TypeScript: bundle the telemetry entry once for this run, next to
// node_modules so that its package imports (mqtt, aedes, protobufjs) resolve.
const cache = join(root, 'node_modules', '.cache', 'edgewarden-bench');
mkdirSync(cache, { recursive: true });
const entry = join(cache, `telemetry-${process.pid}.mjs`);
await build({
  stdin: {
    contents: `export * from './sdk/telemetry/index.ts'; export { KeySigner } from './sdk/provenance/keys.ts';`,
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: entry,
  logLevel: 'silent',
  packages: 'external',
});
const T = await import(pathToFileURL(entry).href);

let broker;
let url = arg('broker');
if (!url) {
  broker = await T.startEmbeddedBroker();
  url = broker.url;
}

const signer = T.KeySigner.generate();
const input = (seq) => ({
  deviceKeyid: new Uint8Array(signer.keyId),
  fleet: 'bench',
  bdSeq: 0,
  seq,
  timeUnixMs: Date.now(),
  bootId: new Uint8Array(16),
  models: [
    {
      digest: new Uint8Array(32).fill(1),
      name: 'vad',
      inferences: seq,
      blocked: 0,
      errors: 0,
      p50Us: 700,
      p99Us: 1400,
      executionProvider: 'cpu',
    },
  ],
  health: {
    throttled: 0,
    memTotalBytes: 4e9,
    memAvailableBytes: 2e9,
    diskFreeBytes: 1e10,
    load1Milli: 300,
    uptimeS: 99,
  },
  compliance: { state: 'compliant', reasons: [] },
  policyDigest: new Uint8Array(32).fill(3),
});
// The raw baseline sends bytes of the same size as a signed heartbeat.
const sample = await T.signHeartbeat(signer, input(1));
const payloadSize = sample.payload.length + 64 + 32 + 60;
const rawPayload = Buffer.alloc(payloadSize, 7);

const raw = await new Promise((resolve, reject) => {
  const c = mqtt.connect(url, { protocolVersion: 4, clientId: `bench-raw-${process.pid}` });
  c.once('connect', () => resolve(c));
  c.once('error', reject);
});

async function rawRound() {
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from(
      { length: N },
      (_, i) =>
        new Promise((resolve, reject) =>
          raw.publish(`ew/v1/bench/raw/hb`, rawPayload, { qos: 1 }, (e) => (e ? reject(e) : resolve(i))),
        ),
    ),
  );
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

let seq = 0;
async function publisherRound(p) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await p.publish(input(++seq));
  while (p.stats().outboxDepth > 0) await new Promise((r) => setImmediate(r));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function makePublisher(durability) {
  const p = await T.MqttPublisher.start({
    url,
    signer,
    fleet: 'bench',
    bootId: new Uint8Array(16),
    dir: join(work, durability),
    receipts: false,
    outbox: { maxEntries: N * 2, durability },
    drain: { ratePerS: 1e9, burst: 1e9 },
    maxInflight: 64,
  });
  await new Promise((r) => (p.stats().connected ? r() : p.once('connect', r)));
  return p;
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const variants = arg('variants', 'none,group,always').split(',');
const pubs = {};
for (const v of variants) pubs[v] = await makePublisher(v);
const times = { raw: [], none: [], group: [], always: [] };
await rawRound();
for (const v of variants) await publisherRound(pubs[v]);
for (let r = 0; r < ROUNDS; r++) {
  times.raw.push(await rawRound());
  for (const v of variants) times[v].push(await publisherRound(pubs[v]));
}
const rate = (k) => Math.round(N / median(times[k]));
const out = {
  bench: 'telemetry',
  broker: broker ? 'embedded aedes (in process)' : url,
  messages: N,
  rounds: ROUNDS,
  payloadBytes: payloadSize,
  rawMsgsPerS: rate('raw'),
  publisherMsgsPerS: Object.fromEntries(variants.map((v) => [v, rate(v)])),
  ratioVsRaw: Object.fromEntries(variants.map((v) => [v, Number((rate(v) / rate('raw')).toFixed(3))])),
  note: 'publisher = reduce + encode + durable outbox append + Ed25519 sign + QoS 1 publish, removed on PUBACK (no receipts); durability none|group|always = no fsync | fsync every 1 s | fsync per append',
};
console.log(JSON.stringify(out, null, 2));
for (const v of variants) await pubs[v].close();
await new Promise((r) => raw.end(false, {}, r));
await broker?.close();
rmSync(work, { recursive: true, force: true });
rmSync(entry, { force: true });
