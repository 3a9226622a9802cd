import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TensorMap } from '../engine/tensor';
import { AuditLog } from '../provenance/audit-log';
import type { ProvenanceBundle } from '../provenance/bundle';
import { KeySigner } from '../provenance/keys';
import { decodeRecord } from '../provenance/record';
import { verifyBundle } from '../provenance/verifier';
import { SYSTEM_CLOCK } from '../util/clock';
import { type PipelineItem, ProvenancePipeline } from './pipeline';
import { DigestWorker } from './sign-worker';

let dir: string;
let log: AuditLog;
let worker: DigestWorker;
const signer = KeySigner.generate();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ew-pipe-'));
  log = await AuditLog.open(dir, { durability: 'none' });
  worker = new DigestWorker({});
});
afterEach(async () => {
  await worker.close();
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

const pipeline = (
  extra: {
    maxBacklogBytes?: number;
    mode?: 'batched' | 'per-output';
    worker?: DigestWorker;
    log?: AuditLog;
    checkpointEvery?: number;
  } = {},
) =>
  new ProvenancePipeline({
    mode: 'batched',
    log,
    signer,
    worker,
    clock: SYSTEM_CLOCK,
    bootId: new Uint8Array(16),
    clockSynced: () => false,
    salted: false,
    checkpointEvery: 1000,
    checkpointMs: 60_000,
    ...extra,
  });

const item = (inputs: TensorMap, outputs: TensorMap): PipelineItem => ({
  modelName: 'm',
  modelDigest: new Uint8Array(32),
  executionProvider: 'cpu',
  runtimeVersion: 'test',
  policyDigest: new Uint8Array(0),
  decision: { outcome: 'allowed', ruleId: '', authority: '' },
  timeUnixMs: 1,
  monotonicNs: 1n,
  labels: {},
  inputs,
  outputs,
});

describe('ProvenancePipeline', () => {
  it('copies the tensors at submit: changing them afterwards does not change the record', async () => {
    const p = pipeline();
    const data = new Float32Array([1, 2, 3]);
    const outputs: TensorMap = { y: { type: 'float32', dims: [3], data: new Float32Array([4, 5, 6]) } };
    const bundle = p.submit(item({ x: { type: 'float32', dims: [3], data } }, outputs));
    data[0] = 99; // the application reuses its buffer at once
    await p.flush();
    const v = verifyBundle(await bundle, outputs, {
      trust: [signer.publicKey],
      inputs: { x: { type: 'float32', dims: [3], data: new Float32Array([1, 2, 3]) } },
    });
    expect(v.ok).toBe(true);
  });

  it('tensors larger than a pooled chunk buffer travel in a buffer of their own', async () => {
    const p = pipeline();
    const big: TensorMap = { x: { type: 'uint8', dims: [5 << 20], data: new Uint8Array(5 << 20).fill(3) } };
    const small: TensorMap = { y: { type: 'uint8', dims: [1], data: new Uint8Array([1]) } };
    const a = p.submit(item(small, small));
    const b = p.submit(item(big, small));
    await p.flush();
    expect(verifyBundle(await a, small, { trust: [signer.publicKey], inputs: small }).ok).toBe(true);
    expect(verifyBundle(await b, small, { trust: [signer.publicKey], inputs: big }).ok).toBe(true);
  });

  it('signals backpressure while more than maxBacklogBytes wait for digests, and room once they are done', async () => {
    const p = pipeline({ maxBacklogBytes: 10 });
    const t: TensorMap = { x: { type: 'uint8', dims: [64], data: new Uint8Array(64) } };
    const bundle = p.submit(item(t, t));
    expect(p.congested).toBe(true);
    await p.room();
    expect(p.congested).toBe(false);
    await p.flush();
    expect((await bundle).mode).toBe('batched');
  });

  it('queues one cut at a time while a checkpoint waits to be durable, however many records pass the threshold', async () => {
    const groupDir = await mkdtemp(join(tmpdir(), 'ew-pipe-group-'));
    // A long group-commit interval: the first cut waits for it while ~3,000 records arrive.
    const groupLog = await AuditLog.open(groupDir, { durability: 'group', groupMs: 300 });
    try {
      const p = pipeline({ log: groupLog, checkpointEvery: 10 });
      let cuts = 0;
      const cut = p.cut.bind(p);
      p.cut = () => {
        cuts++;
        return cut();
      };
      let checkpoints = 0;
      const appendCheckpoint = groupLog.appendCheckpoint.bind(groupLog);
      groupLog.appendCheckpoint = (env) => {
        checkpoints++;
        return appendCheckpoint(env);
      };
      const t: TensorMap = { x: { type: 'int32', dims: [1], data: new Int32Array([7]) } };
      const bundles: Promise<ProvenanceBundle>[] = [];
      for (let i = 0; i < 3000; i++) {
        bundles.push(p.submit(item(t, t)));
        if (i % 100 === 99) await p.drain();
      }
      await p.drain();
      expect(groupLog.size).toBe(3000);
      // One running and at most one waiting, whatever the timing: every cut but the last two has
      // signed its checkpoint. Before the fix every append past the threshold queued its own cut
      // (~3,000 here, against a handful of checkpoints).
      expect(checkpoints).toBeGreaterThan(0);
      expect(cuts).toBeLessThanOrEqual(checkpoints + 2);
      await p.flush();
      const all = await Promise.all(bundles);
      expect(verifyBundle(all[2999] as ProvenanceBundle, t, { trust: [signer.publicKey] }).ok).toBe(true);
    } finally {
      await groupLog.close();
      await rm(groupDir, { recursive: true, force: true });
    }
  });
});

describe('ProvenancePipeline records', () => {
  const t = (v: number): TensorMap => ({ x: { type: 'int32', dims: [1], data: new Int32Array([v]) } });
  const trust = { trust: [signer.publicKey] };

  it('a record over the bounds fails alone; the chain goes on without it', async () => {
    const p = pipeline();
    const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    const huge = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v'.repeat(1024)]));
    const a = p.submit(item(t(1), t(1)));
    const bad = p.submit({ ...item(t(2), t(2)), labels: tooMany });
    const big = p.submit({ ...item(t(3), t(3)), labels: huge }); // 64 labels of 1 KiB each: encodes past 64 KiB
    const c = p.submit(item(t(4), t(4)));
    const refused = [bad, big].map((r) => expect(r).rejects.toMatchObject({ code: 'EW_PROVENANCE_MALFORMED' }));
    await p.flush();
    await Promise.all(refused);
    const [ra, rc] = [verifyBundle(await a, t(1), trust), verifyBundle(await c, t(4), trust)];
    expect(ra.ok && rc.ok).toBe(true);
    if (ra.ok && rc.ok) expect([ra.record.index, rc.record.index]).toEqual([0, 1]);
    expect(log.size).toBe(2);
  });

  it('per-output: every record signed in the worker, strings and label sets intact across a dictionary reset', async () => {
    const p = pipeline({ mode: 'per-output' });
    const frozen = Object.freeze({ site: 'lab' });
    const bundles: Promise<ProvenanceBundle>[] = [];
    const n = 4500; // past the 4096 dictionary entries: the worker's dictionary is cleared on the way
    for (let i = 0; i < n; i++) {
      bundles.push(
        p.submit({
          ...item(t(i), t(-i)),
          decision: { outcome: i % 3 === 0 ? 'blocked' : 'allowed', ruleId: `rule-${i}`, authority: 'owner' },
          labels: i % 2 === 0 ? frozen : { frame: String(i) },
        }),
      );
    }
    await p.flush();
    const all = await Promise.all(bundles);
    for (let i = 0; i < n; i += 97) {
      const b = all[i] as ProvenanceBundle;
      expect(b.mode).toBe('per-output');
      const v = verifyBundle(b, t(-i), { ...trust, inputs: t(i) });
      expect(v.ok).toBe(true);
      const r = decodeRecord(b.record.payload);
      expect(r.index).toBe(i);
      expect(r.decision).toEqual({
        outcome: i % 3 === 0 ? 'blocked' : 'allowed',
        ruleId: `rule-${i}`,
        authority: 'owner',
      });
      expect({ ...r.labels }).toEqual(i % 2 === 0 ? { site: 'lab' } : { frame: String(i) });
    }
    expect(log.size).toBe(n);
  });

  it('batched: the inclusion proof comes from the log tree, read when first needed, and behaves as a plain property', async () => {
    const p = pipeline();
    const bundles = [0, 1, 2, 3, 4].map((i) => p.submit(item(t(i), t(i))));
    await p.flush();
    const b = (await bundles[3]) as Extract<ProvenanceBundle, { mode: 'batched' }>;
    expect(b.inclusion).toMatchObject({ leafIndex: 3, treeSize: 5 });
    expect(b.inclusion.hashes).toEqual(log.tree.inclusionProof(3, 5));
    expect({ ...b.inclusion }.hashes).toEqual(log.tree.inclusionProof(3, 5));
    expect(JSON.parse(JSON.stringify(b.inclusion)).hashes).toHaveLength(3);
    expect(verifyBundle(b, t(3), trust).ok).toBe(true);
    b.inclusion.hashes = [];
    expect(verifyBundle(b, t(3), trust)).toMatchObject({ ok: false, code: 'EW_PROVENANCE_INCLUSION' });
  });

  it('continues a log that already holds records: the tree the worker hashes is the one the log rebuilds', async () => {
    const t = (v: number): TensorMap => ({ x: { type: 'float32', dims: [1], data: new Float32Array([v]) } });
    // 37 records first (a frontier with several levels), then 300 more in chunks through a new pipeline.
    const first = pipeline();
    const early = Array.from({ length: 37 }, (_, i) => first.submit(item(t(i), t(i))));
    await first.flush();
    await Promise.all(early);
    first.stop();
    await worker.close();
    worker = new DigestWorker({});
    const second = pipeline();
    const bundles = Array.from({ length: 300 }, (_, i) => second.submit(item(t(i), t(i))));
    await second.flush();
    second.stop();
    const all = await Promise.all(bundles);
    expect(log.size).toBe(337);
    const root = log.tree.root();
    await log.close();
    // Reopening rebuilds the tree from the records alone: the same root, no damage.
    log = await AuditLog.open(dir, { durability: 'none' });
    expect(log.damage).toBeUndefined();
    expect(Buffer.from(log.tree.root()).equals(Buffer.from(root))).toBe(true);
    for (const i of [0, 1, 150, 299]) {
      const b = all[i] as ProvenanceBundle;
      expect(verifyBundle(b, t(i), { trust: [signer.publicKey] })).toMatchObject({ ok: true });
    }
  });

  it('answers on this thread until the worker thread is up, then hands the chain over: the same records as a thread from the start', async () => {
    const pem = signer.privateKeyPem();
    const t = (v: number): TensorMap => ({ x: { type: 'float32', dims: [2], data: new Float32Array([v, -v]) } });
    // Several models and label sets, so that dictionary entries made before the hand-over are used after it.
    const at = (i: number): PipelineItem => ({
      ...item(t(i), t(i * 2)),
      modelName: `m${i % 3}`,
      labels: i % 2 ? { site: `s${i % 5}` } : {},
      timeUnixMs: 1000 + i,
      monotonicNs: BigInt(i),
    });
    // The hand-over run decides the batches (until its thread is up, then three more); the
    // reference replays them on a worker whose thread ran from the start.
    const run = async (w: DigestWorker, into: AuditLog, plan?: number[]) => {
      const p = pipeline({ mode: 'per-output', worker: w, log: into });
      const bundles: ProvenanceBundle[] = [];
      const where: string[] = [];
      const sizes: number[] = [];
      let i = 0;
      const batch = async (n: number) => {
        const b = Array.from({ length: n }, () => p.submit(at(i++)));
        await p.flush();
        bundles.push(...(await Promise.all(b)));
        sizes.push(n);
        where.push((w as unknown as { threadUp: boolean }).threadUp ? 'thread' : 'here');
      };
      if (plan) {
        for (const n of plan) await batch(n);
      } else {
        await batch(1);
        let ready = false;
        const up = w.threadReady().then(() => {
          ready = true;
        });
        while (!ready && i < 5000) await batch(3);
        await up;
        for (let k = 0; k < 3; k++) await batch(5);
      }
      p.stop();
      return { bundles, where, sizes };
    };
    const handedOver = new DigestWorker({ privateKeyPem: pem, signSync: (d) => signer.signSync(d) });
    const got = await run(handedOver, log);
    await handedOver.close();
    const fromStart = new DigestWorker({ privateKeyPem: pem, threadAtStart: true });
    const other = await AuditLog.open(join(dir, 'other'), { durability: 'none' });
    const reference = await run(fromStart, other, got.sizes);
    await fromStart.close();
    expect(reference.where.every((x) => x === 'thread')).toBe(true);
    expect(got.where.filter((x) => x === 'here').length).toBeGreaterThanOrEqual(2);
    expect(got.where.slice(-3)).toEqual(['thread', 'thread', 'thread']);
    // Same records, chain and signatures (Ed25519 is deterministic) on both; every bundle verifies.
    expect(got.bundles.length).toBe(reference.bundles.length);
    expect(Buffer.from(log.tree.root()).equals(Buffer.from(other.tree.root()))).toBe(true);
    got.bundles.forEach((b, k) => {
      const r = reference.bundles[k] as ProvenanceBundle;
      expect(Buffer.from(b.record.payload).equals(Buffer.from(r.record.payload))).toBe(true);
      expect(Buffer.from(b.record.signatures[0]!.sig).equals(Buffer.from(r.record.signatures[0]!.sig))).toBe(true);
      expect(verifyBundle(b, t(k * 2), { trust: [signer.publicKey] })).toMatchObject({ ok: true });
    });
    expect(decodeRecord(got.bundles.at(-1)!.record.payload).index).toBe(got.bundles.length - 1);
    await other.close();
  });

  it('a wrong leaf hash from the worker fails the pipeline before the record is appended', async () => {
    // The first record of each answer is checked in full: its leaf is recomputed and compared.
    const real = worker;
    const lying = Object.create(real) as DigestWorker;
    lying.chunk = async (req) => {
      const res = await real.chunk(req);
      const len = new DataView(res.out.buffer, res.out.byteOffset).getUint32(1, true);
      (res.out as Uint8Array)[5 + len + 1] ^= 1; // first byte of the first record's leaf hash
      return res;
    };
    const p = pipeline({ worker: lying });
    const t = { x: { type: 'float32' as const, dims: [1], data: new Float32Array([1]) } };
    await expect(p.submit(item(t, t))).rejects.toMatchObject({ code: 'EW_WARDEN_PIPELINE' });
    expect(log.size).toBe(1); // appended by the full check, then refused: nothing after it
    expect(p.error?.message).toMatch(/leaf hash/);
    await expect(p.submit(item(t, t))).rejects.toMatchObject({ code: 'EW_WARDEN_PIPELINE' });
    p.stop();
  });

  it('a worker that dies fails its pending requests, and the pipeline refuses every later record', async () => {
    const p = pipeline({ mode: 'per-output' });
    const first = p.submit(item(t(1), t(1)));
    await p.flush();
    expect((await first).mode).toBe('per-output');
    // A request still in the worker thread when it dies (64 MiB to hash keeps it busy), then the crash.
    await worker.threadReady();
    const busy = worker.digest(new ArrayBuffer(64 << 20), [0, 64 << 20]);
    const rejected = expect(busy).rejects.toMatchObject({ code: 'EW_WARDEN_PIPELINE' });
    await (worker as unknown as { thread: { terminate(): Promise<number> } }).thread.terminate();
    await rejected;
    expect(p.error).toMatchObject({ code: 'EW_WARDEN_PIPELINE' });
    await expect(p.submit(item(t(3), t(3)))).rejects.toMatchObject({ code: 'EW_WARDEN_PIPELINE' });
    expect(log.size).toBe(1);
  });
});
