import { describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { elementCount, float32ToFloat16Bits, type TensorInput, toTensorView } from './tensor';

const reason = (input: unknown): unknown => {
  try {
    toTensorView(input as TensorInput);
  } catch (err) {
    if (isEdgewardenError(err, 'EW_ENGINE_INPUT')) return err.details.reason;
    throw err;
  }
  return 'accepted';
};

describe('toTensorView', () => {
  it('passes a TensorView (or an onnxruntime Tensor, which has the same shape) through without a copy', () => {
    const view = { type: 'float32' as const, dims: [2], data: new Float32Array([1, 2]) };
    expect(toTensorView(view)).toBe(view);
  });

  it('turns plain arrays into the typed arrays onnxruntime uses', () => {
    expect(toTensorView({ dtype: 'float32', dims: [2], data: [1.5, 2] }).data).toEqual(new Float32Array([1.5, 2]));
    expect(toTensorView({ dtype: 'int64', dims: [], data: [16000] }).data).toEqual(BigInt64Array.from([16000n]));
    expect(toTensorView({ dtype: 'int64', dims: [2], data: [2n ** 62n, -5n] }).data).toEqual(
      BigInt64Array.from([2n ** 62n, -5n]),
    );
    expect(toTensorView({ dtype: 'uint64', dims: [1], data: [2n ** 64n - 1n] }).data).toEqual(
      BigUint64Array.from([2n ** 64n - 1n]),
    );
    expect(toTensorView({ dtype: 'bool', dims: [3], data: [true, false, 1] as never }).data).toEqual(
      new Uint8Array([1, 0, 1]),
    );
    expect(toTensorView({ dtype: 'uint8', dims: [1, 2], data: [0, 255] }).data).toEqual(new Uint8Array([0, 255]));
    expect(toTensorView({ dtype: 'string', dims: [2], data: ['a', 'b'] as never }).data).toEqual(['a', 'b']);
    const half = toTensorView({ dtype: 'float16', dims: [4], data: [1, -2, 0.5, 65504] });
    expect(half.data).toEqual(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff]));
  });

  it('keeps typed arrays of the right class as they are', () => {
    const data = new Int32Array([1, 2, 3, 4]);
    expect(toTensorView({ dtype: 'int32', dims: [2, 2], data }).data).toBe(data);
  });

  it('rejects what cannot be a tensor, with a reason', () => {
    expect(reason(null)).toBe('shape');
    expect(reason({ dtype: 'complex64', dims: [1], data: [1] })).toBe('dtype');
    expect(reason({ dtype: 'float32', dims: [-1], data: [] })).toBe('dims');
    expect(reason({ dtype: 'float32', dims: [1.5], data: [1] })).toBe('dims');
    expect(reason({ dtype: 'float32', dims: 'x', data: [1] })).toBe('dims');
    expect(reason({ dtype: 'float32', dims: [3], data: [1, 2] })).toBe('length');
    expect(reason({ dtype: 'float32', dims: [], data: [] })).toBe('length');
    expect(reason({ dtype: 'float32', dims: [1], data: new Int32Array(1) })).toBe('data');
    expect(reason({ type: 'float32', dims: [1], data: [1] })).toBe('data'); // a view must carry typed data
    expect(reason({ dtype: 'float32', dims: [1], data: ['1'] })).toBe('data');
    expect(reason({ dtype: 'int8', dims: [1], data: [128] })).toBe('data');
    expect(reason({ dtype: 'int32', dims: [1], data: [1.5] })).toBe('data');
    expect(reason({ dtype: 'int64', dims: [1], data: [2 ** 60] })).toBe('data');
    expect(reason({ dtype: 'int64', dims: [1], data: [2n ** 63n] })).toBe('data');
    expect(reason({ dtype: 'bool', dims: [1], data: [2] })).toBe('data');
    expect(reason({ dtype: 'string', dims: [1], data: [1] })).toBe('data');
  });

  it('a scalar has one element', () => {
    expect(elementCount([])).toBe(1);
    expect(elementCount([2, 0, 5])).toBe(0);
  });

  it('float16 conversion rounds to nearest even and handles the edges', () => {
    expect(float32ToFloat16Bits(0)).toBe(0);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float32ToFloat16Bits(Infinity)).toBe(0x7c00);
    expect(float32ToFloat16Bits(1e6)).toBe(0x7c00);
    expect(float32ToFloat16Bits(Number.NaN) & 0x7e00).toBe(0x7e00);
    expect(float32ToFloat16Bits(2 ** -24)).toBe(1); // smallest subnormal
    expect(float32ToFloat16Bits(2 ** -26)).toBe(0);
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
  });
});
