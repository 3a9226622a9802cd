import { appendFileSync, readdirSync, utimesSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { InferenceBackend } from '../engine/backend';
import type { TensorMap } from '../engine/tensor';
import { EdgewardenError } from '../errors';
import type { InferenceGate } from '../policy/gate';
import { AuditLog } from '../provenance/audit-log';
import { chain, checkpointOf } from '../provenance/audit-test-helpers';
import { verifyAuditLog } from '../provenance/audit-verify';
import type { ProvenanceBundle } from '../provenance/bundle';
import { decodeCheckpoint } from '../provenance/checkpoint';
import { KeySigner, TrustStore, writeKeyPair } from '../provenance/keys';
import { leafHash, verifyConsistency } from '../provenance/merkle';
import { decodeRecord } from '../provenance/record';
import { verifyBundle } from '../provenance/verifier';
import { FakeBackend } from '../testing/fake-backend';
import { createWarden } from './create';
import type { InferResult, Warden } from './types';

// FakeBackend never runs the model, but loading still digests and scans a real ONNX file.
const MODEL = new URL('../engine/fixtures/add.onnx', import.meta.url).pathname;
const x = (v: number): TensorMap => ({ x: { type: 'float32', dims: [1, 4], data: new Float32Array([v, 1, 2, 3]) } });

let home: string;
let wardens: Warden[] = [];
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'ew-warden-'));
});
afterEach(async () => {
  for (const w of wardens) await w.close().catch(() => {});
  wardens = [];
  await rm(home, { recursive: true, force: true });
});

async function open(opts: Partial<Parameters<typeof createWarden>[0]> = {}): Promise<Warden> {
  const w = await createWarden({ home, backend: new FakeBackend(), ...opts });
  wardens.push(w);
  return w;
}

/** Resolves to 'pending' if the promise has not settled by the time the event loop has turned once. */
async function state(p: Promise<unknown>): Promise<'pending' | 'settled'> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise((r) => setImmediate(r));
  return settled ? 'settled' : 'pending';
}

describe('createWarden', () => {
  it('fails with EW_PROVENANCE_KEY_FILE before any inference when the key is missing', async () => {
    await expect(createWarden({ home, backend: new FakeBackend() })).rejects.toMatchObject({
      code: 'EW_PROVENANCE_KEY_FILE',
    });
  });

  it('refuses a key file readable by others (mode 0644)', async () => {
    await writeKeyPair(join(home, 'keys'), 'device');
    await chmod(join(home, 'keys', 'device.key'), 0o644);
    await expect(createWarden({ home, backend: new FakeBackend() })).rejects.toMatchObject({
      code: 'EW_PROVENANCE_KEY_FILE',
    });
  });

  it('uses the key file of the home: device id and public key match device.key', async () => {
    const signer = await writeKeyPair(join(home, 'keys'), 'device');
    const w = await open();
    expect(w.deviceId).toBe(signer.deviceId);
    expect(Buffer.from(w.publicKey)).toEqual(Buffer.from(signer.publicKey));
    expect(w.mode).toBe('batched');
  });

  it('reports the model digest progress to load(), ending at the model size', async () => {
    const w = await open({ signer: KeySigner.generate() });
    const steps: [number, number][] = [];
    await w.load(MODEL, { onProgress: (done, total) => steps.push([done, total]) });
    const size = (await import('node:fs')).statSync(MODEL).size;
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.at(-1)).toEqual([size, size]);
  });

  it('rejects bad options with EW_WARDEN_OPTIONS', async () => {
    const signer = KeySigner.generate();
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong at runtime
    await expect(createWarden({ home, signer, mode: 'sometimes' as any })).rejects.toMatchObject({
      code: 'EW_WARDEN_OPTIONS',
    });
    await expect(createWarden({ home, signer, checkpointEvery: 0 })).rejects.toMatchObject({
      code: 'EW_WARDEN_OPTIONS',
    });
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong at runtime
    await expect(createWarden({ home, signer, startWorker: 'later' as any })).rejects.toMatchObject({
      code: 'EW_WARDEN_OPTIONS',
      details: { option: 'startWorker' },
    });
    await expect(createWarden({ home, signer, retainDays: 0 })).rejects.toMatchObject({
      code: 'EW_WARDEN_OPTIONS',
      details: { option: 'retainDays' },
    });
  });

  it('retainDays: a log whose old segments were removed goes on, and what it signs verifies', async () => {
    const signer = KeySigner.generate();
    const dir = join(home, 'audit');
    // A history on small segments, all of it written 40 days ago.
    const log = await AuditLog.open(dir, { durability: 'none', segmentBytes: 2048 });
    for (const r of chain(signer, 150)) log.appendRecord(r);
    await log.appendCheckpoint(checkpointOf(signer, log.tree));
    await log.close();
    const old = Date.now() / 1000 - 40 * 86_400;
    for (const n of readdirSync(dir)) utimesSync(join(dir, n), old, old);
    const w = await open({ signer, retainDays: 30 });
    expect(w.auditBase).toBeGreaterThan(0);
    expect(w.treeSize).toBe(150);
    const m = await w.load(MODEL, { name: 'fake' });
    const r = await m.infer(x(1));
    const bundle = await r.provenance;
    expect(bundle.mode === 'batched' && bundle.inclusion.leafIndex).toBe(150);
    expect(verifyBundle(bundle, r.outputs, { trust: [signer.publicKey] })).toMatchObject({ ok: true });
    const size = w.treeSize;
    expect(() => w.consistencyProof(w.auditBase - 1, size)).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_PRUNED' }),
    );
    await w.close();
    expect(await verifyAuditLog(dir, { trust: new TrustStore([signer.publicKey]) })).toMatchObject({
      ok: true,
      size: 151,
      base: w.auditBase,
    });
  });

  it.each(['on-demand', 'at-create'] as const)('startWorker %s: the same verified records', async (startWorker) => {
    const signer = KeySigner.generate();
    const w = await open({ mode: 'per-output', signer, startWorker });
    const m = await w.load(MODEL, { name: 'fake' });
    const results: InferResult[] = [];
    for (let i = 0; i < 40; i++) results.push(await m.infer(x(i)));
    const bundles = await Promise.all(results.map((r) => r.provenance));
    bundles.forEach((b, i) => {
      expect(verifyBundle(b, results[i]!.outputs, { trust: [signer.publicKey] })).toMatchObject({ ok: true });
    });
    await w.close();
  });
});

describe.each(['batched', 'per-output'] as const)('%s mode', (mode) => {
  it('returns outputs whose bundle verifies; the records chain in the audit log', async () => {
    const signer = KeySigner.generate();
    const w = await open({ mode, signer, checkpointEvery: 3, labels: { site: 'lab' } });
    const m = await w.load(MODEL, { name: 'fake' });
    const results: InferResult[] = [];
    for (let i = 0; i < 5; i++) results.push(await m.infer(x(i), { labels: { frame: String(i) } }));
    const bundles = await Promise.all(results.map((r) => r.provenance));
    const prev: Uint8Array[] = [];
    bundles.forEach((b, i) => {
      const r = results[i] as InferResult;
      expect(b.mode).toBe(mode);
      const v = verifyBundle(b, r.outputs, { trust: [signer.publicKey], inputs: x(i) });
      expect(v).toMatchObject({ ok: true });
      if (!v.ok) return;
      expect(v.record.index).toBe(i);
      expect(v.record.modelName).toBe('fake');
      expect(v.record.labels).toEqual({ site: 'lab', frame: String(i) });
      expect(v.record.decision.outcome).toBe('allowed');
      expect(v.record.runtimeVersion).toContain('fake');
      expect(v.record.bootId.length).toBe(16);
      expect(Buffer.from(v.record.prevLeafHash)).toEqual(Buffer.from(prev[i - 1] ?? new Uint8Array(0)));
      prev.push(leafHash(b.record.payload));
      // The wrong outputs do not verify.
      expect(verifyBundle(b, x(99), { trust: [signer.publicKey] })).toMatchObject({
        ok: false,
        code: 'EW_PROVENANCE_OUTPUT_DIGEST',
      });
    });
    expect(w.treeSize).toBe(5);
    expect(w.stats()).toEqual([expect.objectContaining({ name: 'fake', inferences: 5, blocked: 0, errors: 0 })]);
    expect(w.stats()[0]?.p99Us).toBeGreaterThan(0);
    await w.close();
    const report = await verifyAuditLog(join(home, 'audit'), { trust: new TrustStore([signer.publicKey]) });
    expect(report).toMatchObject({ ok: true, size: 5 });
  });

  it('returns the outputs before the bundle resolves', async () => {
    const w = await open({ mode, signer: KeySigner.generate(), checkpointEvery: 1000, checkpointMs: 60_000 });
    const m = await w.load(MODEL);
    const r = await m.infer(x(1));
    expect(r.outputs.y?.data).toEqual(new Float32Array([1, 1, 2, 3]));
    // Nothing has had the chance to digest, sign or checkpoint yet.
    expect(await state(r.provenance)).toBe('pending');
    await w.close();
    expect((await r.provenance).mode).toBe(mode);
  });

  it('close() resolves every pending bundle and cuts a final checkpoint', async () => {
    const signer = KeySigner.generate();
    const w = await open({ mode, signer, checkpointEvery: 10_000, checkpointMs: 60_000 });
    const m = await w.load(MODEL);
    const pending: { outputs: TensorMap; provenance: Promise<ProvenanceBundle> }[] = [];
    for (let i = 0; i < 50; i++) pending.push(await m.infer(x(i)));
    await w.close();
    const settled = await Promise.all(pending.map((p) => state(p.provenance)));
    expect(settled.every((s) => s === 'settled')).toBe(true);
    for (const p of pending) {
      expect(verifyBundle(await p.provenance, p.outputs, { trust: [signer.publicKey] }).ok).toBe(true);
    }
    const cp = w.latestCheckpoint();
    expect(cp && decodeCheckpoint(cp.payload).treeSize).toBe(50);
    await expect(m.infer(x(1))).rejects.toMatchObject({ code: 'EW_WARDEN_CLOSED' });
  });
});

describe('inference errors', () => {
  it('a wrong input dtype is EW_ENGINE_INPUT, counted, and leaves no record', async () => {
    const w = await open({ signer: KeySigner.generate() });
    const m = await w.load(MODEL);
    await expect(m.infer({ x: { dtype: 'int32', dims: [1, 4], data: [1, 2, 3, 4] } })).rejects.toMatchObject({
      code: 'EW_ENGINE_INPUT',
      details: expect.objectContaining({ input: 'x' }),
    });
    await expect(m.infer({ y: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } })).rejects.toMatchObject({
      code: 'EW_ENGINE_INPUT',
    });
    expect(w.stats()[0]).toMatchObject({ inferences: 0, errors: 2 });
    await w.close();
    expect(w.treeSize).toBe(0);
  });

  it('a runtime failure propagates and is counted', async () => {
    const backend = new FakeBackend();
    const w = await open({ signer: KeySigner.generate(), backend });
    const m = await w.load(MODEL);
    backend.failNextRun(new EdgewardenError('EW_ENGINE_RUN', 'boom'));
    await expect(m.infer(x(1))).rejects.toMatchObject({ code: 'EW_ENGINE_RUN' });
    expect(w.stats()[0]?.errors).toBe(1);
  });
});

describe('policy gate', () => {
  const blockAll: InferenceGate = {
    policyDigest: new Uint8Array(32).fill(9),
    checkLoad: () => ({ allowed: true }),
    checkOutputs: () => ({ outcome: 'blocked', ruleId: 'kill-switch', authority: 'owner', outputs: undefined }),
  };

  it('a blocked inference returns no outputs, is recorded as blocked with the policy digest, and verifies against {}', async () => {
    const signer = KeySigner.generate();
    const w = await open({ signer, gate: blockAll, mode: 'per-output' });
    const m = await w.load(MODEL);
    const r = await m.infer(x(1));
    expect(r.outputs).toEqual({});
    expect(r.decision).toEqual({ outcome: 'blocked', ruleId: 'kill-switch', authority: 'owner' });
    const v = verifyBundle(await r.provenance, r.outputs, { trust: [signer.publicKey] });
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.record.decision).toEqual({ outcome: 'blocked', ruleId: 'kill-switch', authority: 'owner' });
      expect(Buffer.from(v.record.policyDigest)).toEqual(Buffer.alloc(32, 9));
    }
    expect(w.stats()[0]).toMatchObject({ inferences: 1, blocked: 1 });
  });

  it('a refused model does not load; setGate applies between inferences and can refuse a loaded model', async () => {
    const refuse: InferenceGate = {
      ...blockAll,
      checkLoad: () => ({ allowed: false, reason: 'unlisted', ruleId: 'models' }),
    };
    const w = await open({ signer: KeySigner.generate(), gate: refuse });
    await expect(w.load(MODEL)).rejects.toMatchObject({ code: 'EW_WARDEN_MODEL_REFUSED' });
    w.setGate({
      policyDigest: new Uint8Array(0),
      checkLoad: () => ({ allowed: true }),
      checkOutputs: (_m, outputs) => ({ outcome: 'allowed', ruleId: '', authority: '', outputs }),
    });
    const m = await w.load(MODEL);
    expect((await m.infer(x(1))).decision.outcome).toBe('allowed');
    w.setGate(refuse);
    expect(m.loadDecision.allowed).toBe(false);
    await expect(m.infer(x(1))).rejects.toMatchObject({ code: 'EW_WARDEN_MODEL_REFUSED' });
  });
});

describe('checkpoints', () => {
  it('cuts a checkpoint every N records and after checkpointMs; consistency proofs link them', async () => {
    const signer = KeySigner.generate();
    const w = await open({ signer, checkpointEvery: 4, checkpointMs: 50 });
    const m = await w.load(MODEL);
    const rs = [];
    for (let i = 0; i < 4; i++) rs.push(await m.infer(x(i)));
    const b = await rs[3]?.provenance;
    expect(b?.mode === 'batched' && b.inclusion.treeSize).toBe(4);
    const first = w.latestCheckpoint();
    // One more record: only the timer (checkpointMs) can cover it.
    const late = await m.infer(x(9));
    const lb = await late.provenance;
    expect(lb.mode === 'batched' && lb.inclusion.treeSize).toBe(5);
    const second = w.latestCheckpoint();
    const c1 = decodeCheckpoint(first?.payload as Uint8Array);
    const c2 = decodeCheckpoint(second?.payload as Uint8Array);
    expect(verifyConsistency(c1.treeSize, c2.treeSize, c1.rootHash, c2.rootHash, w.consistencyProof(4, 5))).toBe(true);
    const explicit = await w.checkpoint();
    expect(decodeCheckpoint(explicit.payload).treeSize).toBe(5);
  });

  it('reopening a home continues the chain and the index', async () => {
    const signer = KeySigner.generate();
    const w1 = await open({ signer, checkpointEvery: 1 });
    const m1 = await w1.load(MODEL);
    const b1 = await (await m1.infer(x(1))).provenance.then(async (b) => b);
    await w1.close();
    const w2 = await open({ signer, mode: 'per-output' });
    const m2 = await w2.load(MODEL);
    const r2 = await m2.infer(x(2));
    const rec = decodeRecord((await r2.provenance).record.payload);
    expect(rec.index).toBe(1);
    expect(Buffer.from(rec.prevLeafHash)).toEqual(Buffer.from(leafHash(b1.record.payload)));
    await w2.close();
    expect(await verifyAuditLog(join(home, 'audit'), { trust: new TrustStore([signer.publicKey]) })).toMatchObject({
      ok: true,
      size: 2,
    });
  });

  it('a torn tail left by a crash is recovered and reported in auditAlerts', async () => {
    const signer = KeySigner.generate();
    const w1 = await open({ signer, mode: 'per-output' });
    const m1 = await w1.load(MODEL);
    await (await m1.infer(x(1))).provenance;
    await w1.close();
    const dir = join(home, 'audit');
    const seg = readdirSync(dir).find((f) => f.endsWith('.seg')) as string;
    // Half an entry: a length prefix promising more bytes than follow.
    appendFileSync(join(dir, seg), Buffer.from([0x40, 0, 0, 0, 1, 2, 3]));
    const w2 = await open({ signer, mode: 'per-output' });
    expect(w2.auditAlerts.join('\n')).toMatch(/torn tail/);
    const m2 = await w2.load(MODEL);
    const r = decodeRecord((await (await m2.infer(x(2))).provenance).record.payload);
    expect(r.index).toBe(1);
  });

  it('salted digests: the verifier needs the salt', async () => {
    const signer = KeySigner.generate();
    const salt = new Uint8Array(32).fill(5);
    const w = await open({ signer, salt, mode: 'per-output' });
    const m = await w.load(MODEL);
    const r = await m.infer(x(1));
    const b = await r.provenance;
    expect(verifyBundle(b, r.outputs, { trust: [signer.publicKey], salt }).ok).toBe(true);
    expect(verifyBundle(b, r.outputs, { trust: [signer.publicKey] })).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_SALT_REQUIRED',
    });
  });
});

describe('signers without an exportable key', () => {
  it('per-output mode signs on the main thread through Signer.sign', async () => {
    const inner = KeySigner.generate();
    let calls = 0;
    const signer = {
      keyId: inner.keyId,
      publicKey: inner.publicKey,
      sign: (d: Uint8Array) => {
        calls++;
        return inner.sign(d);
      },
    };
    const w = await open({ signer, mode: 'per-output' });
    const m = await w.load(MODEL);
    const r = await m.infer(x(3));
    expect(verifyBundle(await r.provenance, r.outputs, { trust: [inner.publicKey] }).ok).toBe(true);
    expect(calls).toBeGreaterThan(0);
  });
});

describe('closing during an inference', () => {
  it('an inference that finishes after close() began returns no outputs (EW_WARDEN_CLOSED)', async () => {
    const fake = new FakeBackend();
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let started: () => void = () => {};
    const running = new Promise<void>((r) => {
      started = r;
    });
    // A backend whose run waits until the test lets it finish.
    const backend: InferenceBackend = {
      name: 'held',
      runtimeVersion: '1',
      availableProviders: () => ['cpu'],
      load: async (path, o) => {
        const s = await fake.load(path, o);
        return {
          ...s,
          run: async (feeds) => {
            started();
            await held;
            return s.run(feeds);
          },
        };
      },
    };
    const w = await open({ signer: KeySigner.generate(), backend, mode: 'per-output' });
    const m = await w.load(MODEL);
    const p = m.infer(x(1));
    await running;
    const closing = w.close();
    release();
    await expect(p).rejects.toMatchObject({ code: 'EW_WARDEN_CLOSED' });
    await closing;
  });
});

describe('a failing signer', () => {
  it('rejects the pending bundles and refuses later inferences (EW_WARDEN_PIPELINE): no unsigned outputs', async () => {
    const inner = KeySigner.generate();
    const signer = {
      keyId: inner.keyId,
      publicKey: inner.publicKey,
      sign: async () => {
        throw new Error('token removed');
      },
    };
    const w = await open({ signer, mode: 'per-output' });
    const m = await w.load(MODEL);
    const r = await m.infer(x(1));
    await expect(r.provenance).rejects.toMatchObject({ code: 'EW_WARDEN_PIPELINE' });
    await expect(m.infer(x(2))).rejects.toMatchObject({ code: 'EW_WARDEN_PIPELINE' });
  });
});
