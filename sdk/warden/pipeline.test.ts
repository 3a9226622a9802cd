import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TensorMap } from '../engine/tensor';
import { AuditLog } from '../provenance/audit-log';
import { KeySigner } from '../provenance/keys';
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

const pipeline = (extra: { maxBacklogBytes?: number } = {}) =>
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

  it('tensors larger than a shared slot travel in a buffer of their own', async () => {
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
});
