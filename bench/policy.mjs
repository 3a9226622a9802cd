#!/usr/bin/env node
// Policy benchmarks (JSON on stdout):
//  1. gate cost per inference with 100 rules, against a no-op gate in the same process, alternating;
//  2. verification + composition of 5 authorities' signed policies (+ building the gate), against
//     the bare Ed25519 verifications they contain.
// The sources are bundled on the fly with esbuild (no build step needed): node bench/policy.mjs
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { stringify } from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'node_modules', '.cache', 'edgewarden-bench');
mkdirSync(outDir, { recursive: true });
const entry = join(outDir, 'policy-entry.ts');
const { writeFileSync } = await import('node:fs');
writeFileSync(
  entry,
  `export * from ${JSON.stringify(join(root, 'sdk/policy/index.ts'))};\n` +
    `export { KeySigner } from ${JSON.stringify(join(root, 'sdk/provenance/keys.ts'))};\n` +
    `export { pae } from ${JSON.stringify(join(root, 'sdk/provenance/dsse.ts'))};\n`,
);
const outfile = join(outDir, 'policy.mjs');
await build({
  entryPoints: [entry],
  bundle: true,
  platform: 'node',
  format: 'esm',
  packages: 'external',
  outfile,
  logLevel: 'error',
});
const P = await import(pathToFileURL(outfile).href);

const NOW = Date.parse('2026-11-28T00:00:00Z');
const hex = (i) => i.toString(16).padStart(64, '0');
const CLASSES = 10;

function rule(id, model, output, i) {
  return {
    id,
    model,
    output,
    labels: Array.from({ length: CLASSES }, (_, k) => `c${k}`),
    blockedClasses: [`c${(i % (CLASSES - 1)) + 1}`],
    minConfidence: 0.05,
    ratePerMinute: 4_000_000_000,
  };
}

async function effective(outputs, models = 25) {
  const owner = P.KeySigner.generate();
  const trust = new P.TrustConfig([{ name: 'owner', key: owner.publicKey }]);
  const d = {
    apiVersion: 'edgewarden/v1',
    kind: 'Policy',
    authority: 'owner',
    version: 1,
    models: {
      unlisted: 'refuse',
      allow: Array.from({ length: models }, (_, i) => ({ name: `m${i}`, digest: `sha256:${hex(i)}` })),
    },
    outputs,
  };
  const v = P.verifyPolicyEnvelope(await P.signPolicyYaml(owner, stringify(d)), trust, { now: NOW });
  if (!v.ok) throw new Error(v.message);
  return P.composePolicies([v], trust, NOW);
}

function tensor() {
  // Class 0 wins with 0.6: not blocked, above the floor, so every check runs to the end.
  const data = new Float32Array(CLASSES).fill(0.04);
  data[0] = 0.6;
  return { type: 'float32', dims: [1, CLASSES], data };
}

function measureGate(gate, model, outputs, n) {
  let t = NOW;
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const d = gate.checkOutputs(model, outputs, t++);
    sink += d.outcome.length;
  }
  const ns = Number(process.hrtime.bigint() - start) / n;
  if (sink === 0) throw new Error('unreachable');
  return ns;
}

async function gateScenario(name, outputs, modelOutputs) {
  const eff = await effective(outputs);
  const gate = new P.PolicyGate(eff);
  const model = { name: 'm0', digest: Buffer.from(hex(0), 'hex') };
  if (!gate.checkLoad({ ...model, dir: root }).allowed) throw new Error('model should be allowed');
  const outs = Object.fromEntries(modelOutputs.map((o) => [o, tensor()]));
  const first = gate.checkOutputs(model, outs, NOW);
  if (first.outcome !== 'allowed') throw new Error(`${name}: expected allowed, got ${JSON.stringify(first)}`);
  const n = 200_000;
  const rounds = 7;
  const open = [];
  const pol = [];
  for (let r = 0; r < rounds + 1; r++) {
    const a = measureGate(P.OPEN_GATE, model, outs, n);
    const b = measureGate(gate, model, outs, n);
    if (r > 0) {
      open.push(a);
      pol.push(b);
    }
  }
  const med = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
  const o = med(open);
  const p = med(pol);
  return {
    scenario: name,
    rules: eff.outputRules.length,
    checkedOutputs: modelOutputs.length,
    noopGateNs: Math.round(o),
    policyGateNs: Math.round(p),
    addedNsPerInference: Math.round(p - o),
    ratioToNoop: Number((p / o).toFixed(2)),
    targetAddedNs: 2000,
  };
}

async function composeScenario() {
  const signers = Array.from({ length: 5 }, () => P.KeySigner.generate());
  const names = ['owner', 'fleet', 'community', 'auditor', 'insurer'];
  const trust = new P.TrustConfig(names.map((name, i) => ({ name, key: signers[i].publicKey })));
  const envs = [];
  for (let i = 0; i < 5; i++) {
    const d = {
      apiVersion: 'edgewarden/v1',
      kind: 'Policy',
      authority: names[i],
      version: 1,
      models: {
        unlisted: i === 0 ? 'flag' : 'refuse',
        allow: Array.from({ length: 20 }, (_, k) => ({ name: `m${k}`, digest: `sha256:${hex(k + i)}` })),
      },
      outputs: Array.from({ length: 20 }, (_, k) => rule(`r${k}`, `m${k % 5}`, `o${k % 4}`, k + i)),
      provenance: { mode: i % 2 ? 'per-output' : 'batched', checkpointEvery: 100 * (i + 1) },
      audit: { durability: 'group', retainDays: 30 * (i + 1) },
      telemetry: { heartbeatSeconds: 10 + i, brokers: [{ url: `mqtt://b${i}.example:1883`, share: 'summary' }] },
    };
    envs.push(await P.signPolicyYaml(signers[i], stringify(d)));
  }
  const keys = signers.map((s) =>
    createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), s.publicKey]),
      format: 'der',
      type: 'spki',
    }),
  );
  const msgs = envs.map((e) => P.pae(e.payloadType, e.payload));
  const full = () => {
    const verified = envs.map((e) => {
      const v = P.verifyPolicyEnvelope(e, trust, { now: NOW });
      if (!v.ok) throw new Error(v.message);
      return v;
    });
    const eff = P.composePolicies(verified, trust, NOW);
    return new P.PolicyGate(eff);
  };
  const bare = () => {
    for (let i = 0; i < 5; i++)
      if (!cryptoVerify(null, msgs[i], keys[i], envs[i].signatures[0].sig)) throw new Error('bad');
  };
  const time = (fn, n) => {
    const s = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    return Number(process.hrtime.bigint() - s) / n / 1e6;
  };
  for (let i = 0; i < 20; i++) {
    full();
    bare();
  }
  const a = [];
  const b = [];
  for (let r = 0; r < 7; r++) {
    b.push(time(bare, 50));
    a.push(time(full, 50));
  }
  const med = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
  const f = med(a);
  const bb = med(b);
  return {
    scenario: 'verify + compose 5 authorities (20 rules and 20 allowed digests each) + build gate',
    ms: Number(f.toFixed(3)),
    bareEd25519VerifyMs: Number(bb.toFixed(3)),
    ratioToBareVerify: Number((f / bb).toFixed(2)),
    targetMs: 5,
  };
}

const spread = Array.from({ length: 100 }, (_, i) => rule(`r${i}`, `m${i % 25}`, `o${Math.floor(i / 25)}`, i));
const oneOutput = Array.from({ length: 100 }, (_, i) => rule(`r${i}`, 'm0', 'o0', i));
const manyOutputs = Array.from({ length: 100 }, (_, i) => rule(`r${i}`, 'm0', `o${i}`, i));

const results = {
  bench: 'policy',
  node: process.version,
  arch: process.arch,
  gate: [
    await gateScenario('100 rules over 25 models x 4 outputs; inferred model has 4 outputs of 10 classes', spread, [
      'o0',
      'o1',
      'o2',
      'o3',
    ]),
    await gateScenario('100 rules on one output of the inferred model (merged at construction)', oneOutput, ['o0']),
    await gateScenario(
      'worst case: 100 rules on 100 distinct outputs of the inferred model, all checked',
      manyOutputs,
      Array.from({ length: 100 }, (_, i) => `o${i}`),
    ),
  ],
  compose: await composeScenario(),
};
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
