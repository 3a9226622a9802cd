#!/usr/bin/env node
// Provenance benchmark: prints JSON. Each measurement runs against a bare baseline in the same
// process, alternating rounds, and reports the best round of each and their ratio.
//   node bench/provenance.mjs            (uses dist/ when it exports the provenance API, else bundles
//                                          sdk/provenance with esbuild into a temp folder first)
// Options: --quick (smaller counts), --rounds N.
import { createHash, generateKeyPairSync, hash as oneShot, sign, verify } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const rounds = Number(args[args.indexOf('--rounds') + 1]) || 4;
const work = mkdtempSync(join(tmpdir(), 'ew-bench-prov-'));

async function loadApi() {
  try {
    const dist = await import(pathToFileURL(join(root, 'dist', 'index.js')).href);
    if (dist.AuditLog && dist.verifyBundle && dist.tensorDigest) return { api: dist, source: 'dist' };
  } catch {}
  const { build } = await import('esbuild');
  // Inside the project so the bundle's bare imports (protobufjs) resolve from its node_modules.
  const out = join(root, 'node_modules', '.cache', 'edgewarden-bench', 'provenance.mjs');
  await build({
    entryPoints: [join(root, 'sdk', 'provenance', 'index.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: out,
    packages: 'external',
    logLevel: 'warning',
  });
  return { api: await import(pathToFileURL(out).href), source: 'sdk/provenance bundled with esbuild' };
}

const { api, source } = await loadApi();
const {
  AuditLog,
  KeySigner,
  TrustStore,
  PAYLOAD_TYPES,
  encodeRecord,
  encodeEnvelope,
  signEnvelopeSync,
  signCheckpointSync,
  tensorDigest,
  verifyBundle,
  leafHash,
  MerkleTree,
} = api;

const signer = KeySigner.generate();
const outputs = { y: { type: 'float32', dims: [1, 2], data: new Float32Array([0.25, 0.75]) } };
const outputDigest = tensorDigest(outputs);

function fields(index, prev) {
  return {
    version: 1,
    deviceKeyid: signer.keyId,
    index,
    timeUnixMs: 1_790_000_000_000 + index,
    bootId: new Uint8Array(16),
    monotonicNs: index * 1000,
    clockSynced: true,
    modelDigest: new Uint8Array(32).fill(1),
    modelName: 'cls',
    policyDigest: new Uint8Array(32).fill(2),
    decision: { outcome: 'allowed', ruleId: '', authority: '' },
    inputDigest: outputDigest,
    outputDigest,
    executionProvider: 'cpu',
    runtimeVersion: '1.30.0',
    sdkVersion: '0.1.0',
    prevLeafHash: prev,
    labels: {},
    salted: false,
  };
}

const per = (n, ms) => Math.round((n / ms) * 1000);
let dirNo = 0;

/** Records encoded, hashed into the tree and appended, `batch` per tick; waits until the last is durable. */
async function appendRecords(durability, n, batch, signed) {
  const log = await AuditLog.open(join(work, `log${dirNo++}`), { durability, groupMs: 100 });
  const t0 = performance.now();
  let last;
  for (let i = 0; i < n; ) {
    for (let j = 0; j < batch && i < n; j++, i++) {
      const bytes = encodeRecord(fields(log.size, log.lastLeafHash));
      const env = signed ? encodeEnvelope(signEnvelopeSync(signer, PAYLOAD_TYPES.record, bytes)) : undefined;
      last = log.appendRecord(bytes, env).durable;
    }
    if (durability === 'always')
      await last; // concurrent appends share one fsync
    else if (i % 8192 < batch) await new Promise((r) => setImmediate(r));
  }
  await last;
  const ms = performance.now() - t0;
  await log.close();
  return per(n, ms);
}

/** Baseline: SHA-256 of the same record bytes and a buffered write to a file, nothing else. */
async function bareAppend(n) {
  const bytes = encodeRecord(fields(0, new Uint8Array(32)));
  const fd = openSync(join(work, `bare${dirNo++}`), 'a');
  const chunk = Buffer.alloc(256 * 1024);
  let used = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    oneShot('sha256', bytes, 'buffer');
    if (used + bytes.length > chunk.length) {
      writeSync(fd, chunk, 0, used);
      used = 0;
    }
    chunk.set(bytes, used);
    used += bytes.length;
  }
  writeSync(fd, chunk, 0, used);
  const ms = performance.now() - t0;
  closeSync(fd);
  return per(n, ms);
}

function bareSign(n) {
  const { privateKey } = generateKeyPairSync('ed25519');
  const bytes = encodeRecord(fields(0, new Uint8Array(32)));
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sign(null, bytes, privateKey);
  return per(n, performance.now() - t0);
}

function makeBundles(count) {
  const tree = new MerkleTree();
  const payloads = [];
  let prev = new Uint8Array(0);
  for (let i = 0; i < count; i++) {
    const p = encodeRecord(fields(i, prev));
    payloads.push(p);
    prev = leafHash(p);
    tree.append(prev);
  }
  const checkpoint = signCheckpointSync(signer, {
    deviceKeyid: signer.keyId,
    treeSize: count,
    rootHash: tree.root(),
    timeUnixMs: 1,
    bootId: new Uint8Array(16),
  });
  const perOutput = payloads.map((p) => ({
    mode: 'per-output',
    record: signEnvelopeSync(signer, PAYLOAD_TYPES.record, p),
  }));
  const batched = payloads.map((p, i) => ({
    mode: 'batched',
    record: { payload: p, payloadType: PAYLOAD_TYPES.record, signatures: [] },
    inclusion: { leafIndex: i, treeSize: count, hashes: tree.inclusionProof(i) },
    checkpoint,
  }));
  return { perOutput, batched };
}

function verifyMany(bundles, n, trust) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const v = verifyBundle(bundles[i % bundles.length], outputs, { trust });
    if (!v.ok) throw new Error(`bench bundle did not verify: ${v.code}`);
  }
  return per(n, performance.now() - t0);
}

function bareVerify(n) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const msg = encodeRecord(fields(0, new Uint8Array(32)));
  const sig = sign(null, msg, privateKey);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) verify(null, msg, publicKey, sig);
  return per(n, performance.now() - t0);
}

// PaddleOCR classifier input: 1x3x48x192 float32, 110,592 bytes.
const ocrData = new Float32Array(3 * 48 * 192).map((_, i) => (i % 255) / 255);
function digestMany(n) {
  const input = { x: { type: 'float32', dims: [1, 3, 48, 192], data: ocrData } };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) tensorDigest(input);
  return per(n, performance.now() - t0);
}
function bareDigest(n) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) createHash('sha256').update(ocrData).digest();
  return per(n, performance.now() - t0);
}

/** Alternates subject and baseline for `rounds` rounds; best of each. */
async function alternate(subject, baseline) {
  let best = 0;
  let bestBase = 0;
  for (let r = 0; r < rounds; r++) {
    best = Math.max(best, await subject());
    bestBase = Math.max(bestBase, await baseline());
  }
  return { perSecond: best, baselinePerSecond: bestBase, ratio: +(best / bestBase).toFixed(3) };
}

const N = quick ? 20_000 : 200_000;
const NS = quick ? 5_000 : 30_000;
const NV = quick ? 3_000 : 20_000;
const trust = new TrustStore([signer.publicKey]);
const bundles = makeBundles(1024);

const result = {
  benchmark: 'provenance',
  apiSource: source,
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  },
  rounds,
  recordsPerSecond: {
    note: 'encode record + leaf hash + Merkle append + CRC-framed append; durable awaited; one core',
    group: await alternate(
      () => appendRecords('group', N, 1024, false),
      () => bareAppend(N),
    ),
    none: await alternate(
      () => appendRecords('none', N, 1024, false),
      () => bareAppend(N),
    ),
    always: await alternate(
      () => appendRecords('always', quick ? 5_000 : 50_000, 256, false),
      () => bareAppend(N),
    ),
  },
  signedRecordsPerSecond: {
    note: 'per-output: encode + Ed25519 DSSE sign (signSync) + envelope encode + append (group); baseline bare crypto.sign',
    group: await alternate(
      () => appendRecords('group', NS, 256, true),
      () => bareSign(NS),
    ),
  },
  verificationsPerSecond: {
    note: 'verifyBundle with output digest; baseline bare Ed25519 verify',
    perOutput: await alternate(
      () => verifyMany(bundles.perOutput, NV, trust),
      () => bareVerify(NV),
    ),
    batched: await alternate(
      () => verifyMany(bundles.batched, NV, trust),
      () => bareVerify(NV),
    ),
  },
  tensorDigestPaddleOcrInput: {
    note: 'canonical digest of a 1x3x48x192 float32 input (110,592 bytes); baseline bare SHA-256 of its bytes',
    ...(await alternate(
      () => digestMany(quick ? 500 : 3000),
      () => bareDigest(quick ? 500 : 3000),
    )),
  },
  targets: { recordsPerSecondGroup: 100_000, signedPerSecond: 20_000, verificationsPerSecond: 10_000 },
};
rmSync(work, { recursive: true, force: true });
console.log(JSON.stringify(result, null, 2));
