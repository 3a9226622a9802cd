import { describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import type { TensorMeta } from './backend';
import type { TensorInput } from './tensor';
import { validateInputs } from './validate';

// Silero VAD's inputs as onnxruntime-node 1.30 reports them.
const VAD: TensorMeta[] = [
  { name: 'input', dtype: 'float32', dims: ['batch', 'sequence'] },
  { name: 'sr', dtype: 'int64', dims: [] },
  { name: 'h', dtype: 'float32', dims: [2, 'batch', 64] },
  { name: 'c', dtype: 'float32', dims: [2, 'batch', 64] },
];
const good = (): Record<string, TensorInput> => ({
  input: { dtype: 'float32', dims: [1, 512], data: new Float32Array(512) },
  sr: { dtype: 'int64', dims: [], data: [16000] },
  h: { dtype: 'float32', dims: [2, 1, 64], data: new Float32Array(128) },
  c: { dtype: 'float32', dims: [2, 1, 64], data: new Float32Array(128) },
});

function rejection(meta: readonly TensorMeta[], inputs: unknown): Record<string, unknown> {
  try {
    validateInputs(meta, inputs as Record<string, TensorInput>);
  } catch (err) {
    if (isEdgewardenError(err, 'EW_ENGINE_INPUT')) return { ...err.details, message: err.message };
    throw err;
  }
  throw new Error('expected EW_ENGINE_INPUT');
}

describe('validateInputs', () => {
  it('accepts matching inputs, in model order, with an int64 scalar', () => {
    const inputs = good();
    const out = validateInputs(VAD, { c: inputs.c!, h: inputs.h!, sr: inputs.sr!, input: inputs.input! });
    expect(Object.keys(out)).toEqual(['input', 'sr', 'h', 'c']);
    expect(out.sr).toEqual({ type: 'int64', dims: [], data: BigInt64Array.from([16000n]) });
  });

  it('symbolic dims take any size ≥ 0, including 0', () => {
    const inputs = good();
    inputs.input = { dtype: 'float32', dims: [1, 0], data: new Float32Array(0) };
    expect(() => validateInputs(VAD, inputs)).not.toThrow();
    const batch0 = good();
    batch0.input = { dtype: 'float32', dims: [0, 9], data: [] };
    batch0.h = { dtype: 'float32', dims: [2, 0, 64], data: new Float32Array(0) };
    batch0.c = { dtype: 'float32', dims: [2, 0, 64], data: new Float32Array(0) };
    expect(() => validateInputs(VAD, batch0)).not.toThrow();
  });

  it('names the input in every rejection', () => {
    const missing = good();
    delete missing.h;
    expect(rejection(VAD, missing)).toMatchObject({ input: 'h', reason: 'missing' });
    expect(rejection(VAD, { ...good(), state: good().h })).toMatchObject({ input: 'state', reason: 'unknown' });
    expect(rejection(VAD, { ...good(), sr: { dtype: 'float32', dims: [], data: [16000] } })).toMatchObject({
      input: 'sr',
      reason: 'dtype',
      expected: 'int64',
      actual: 'float32',
    });
    expect(rejection(VAD, { ...good(), sr: { dtype: 'int64', dims: [1], data: [16000] } })).toMatchObject({
      input: 'sr',
      reason: 'rank',
    });
    expect(
      rejection(VAD, { ...good(), h: { dtype: 'float32', dims: [3, 1, 64], data: new Float32Array(192) } }),
    ).toMatchObject({ input: 'h', reason: 'dim', axis: 0 });
    expect(
      rejection(VAD, { ...good(), input: { dtype: 'float32', dims: [1, 512], data: new Float32Array(511) } }),
    ).toMatchObject({ input: 'input', reason: 'length' });
    expect(rejection(VAD, { ...good(), c: { dtype: 'float32', dims: [2, 1, 64], data: 'x' } })).toMatchObject({
      input: 'c',
      reason: 'data',
    });
    const msg = rejection(VAD, { ...good(), sr: { dtype: 'float32', dims: [], data: [1] } }).message;
    expect(msg).toContain('"sr"');
  });

  it('one named symbolic dim has one size across inputs', () => {
    const r = rejection(VAD, { ...good(), h: { dtype: 'float32', dims: [2, 2, 64], data: new Float32Array(256) } });
    expect(r).toMatchObject({ input: 'h', reason: 'dim', expected: 1, actual: 2 });
  });

  it('skips checks the runtime gave no metadata for', () => {
    const meta: TensorMeta[] = [{ name: 'x' }, { name: 'y', dtype: 'uint8' }];
    const out = validateInputs(meta, {
      x: { dtype: 'int16', dims: [3, 3, 3], data: new Int16Array(27) },
      y: { dtype: 'uint8', dims: [7], data: new Uint8Array(7) },
    });
    expect(Object.keys(out)).toEqual(['x', 'y']);
  });

  it('rejects non-objects and prototype tricks without touching Object.prototype', () => {
    expect(rejection(VAD, null)).toMatchObject({ reason: 'shape' });
    expect(rejection(VAD, [])).toMatchObject({ reason: 'shape' });
    const hostile = JSON.parse('{"__proto__": {"polluted": 1}}');
    expect(rejection(VAD, { ...good(), ...hostile })).toMatchObject({ input: '__proto__', reason: 'unknown' });
    // An inherited property is not an input.
    const inherited = Object.create(good());
    expect(rejection(VAD, inherited)).toMatchObject({ input: 'input', reason: 'missing' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('returns a frozen map; the map it returned last is trusted once for the same metadata', () => {
    const out = validateInputs(VAD, good());
    expect(Object.isFrozen(out)).toBe(true);
    expect(validateInputs(VAD, out)).toBe(out);
    // Once: checked again, it is checked in full (and rebuilt).
    expect(validateInputs(VAD, out)).not.toBe(out);
    // Against other metadata it is checked in full (and here rejected).
    const other: TensorMeta[] = [{ name: 'input', dtype: 'float64', dims: ['batch', 'sequence'] }];
    const last = validateInputs(VAD, good());
    expect(rejection(other, last)).toMatchObject({ input: 'sr', reason: 'unknown' });
    // A copy of it is not trusted, nor an object that inherits from it.
    const again = validateInputs(VAD, good());
    expect(validateInputs(VAD, { ...again })).not.toBe(again);
    validateInputs(VAD, good());
    expect(rejection(VAD, Object.create(again))).toMatchObject({ input: 'input', reason: 'missing' });
  });

  it("an input named '__proto__' is a plain entry of the result, not its prototype", () => {
    const meta: TensorMeta[] = [{ name: '__proto__', dtype: 'uint8', dims: [1] }];
    const out = validateInputs(meta, JSON.parse('{"__proto__": {"dtype": "uint8", "dims": [1], "data": [7]}}'));
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).data).toBeUndefined();
  });
});
