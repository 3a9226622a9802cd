import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DType, TensorInput } from '../engine/tensor';
import { tensorDigest } from './tensor-digest';

interface Vector {
  name: string;
  tensors: Record<string, { dtype: DType; dims: number[]; data: unknown[] }>;
  bytesHex: string;
  sha256: string;
  hmacSha256: string;
}
const vectors = JSON.parse(readFileSync(new URL('./fixtures/tensor-digest-vectors.json', import.meta.url), 'utf8')) as {
  saltHex: string;
  cases: Vector[];
};
const salt = new Uint8Array(Buffer.from(vectors.saltHex, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The vector's plain JSON as the typed arrays onnxruntime-node would hand over. */
function typed(t: Vector['tensors'][string]): TensorInput {
  const d = t.data;
  const arr = (() => {
    switch (t.dtype) {
      case 'float32':
        return Float32Array.from(d as number[]);
      case 'float64':
        return Float64Array.from(d as number[]);
      case 'int64':
        return BigInt64Array.from((d as string[]).map(BigInt));
      case 'uint64':
        return BigUint64Array.from((d as string[]).map(BigInt));
      case 'int32':
        return Int32Array.from(d as number[]);
      case 'uint32':
        return Uint32Array.from(d as number[]);
      case 'int16':
        return Int16Array.from(d as number[]);
      case 'uint16':
      case 'float16':
        return Uint16Array.from(d as number[]);
      case 'int8':
        return Int8Array.from(d as number[]);
      case 'bool':
        return Uint8Array.from((d as boolean[]).map((b) => (b ? 1 : 0)));
      case 'string':
        return d as string[];
      default:
        return Uint8Array.from(d as number[]);
    }
  })();
  return { type: t.dtype, dims: t.dims, data: arr };
}

describe('tensorDigest', () => {
  for (const v of vectors.cases) {
    it(`matches the committed vector: ${v.name}`, () => {
      // The vector's bytes hash to its digests, so another language can check against bytesHex.
      expect(createHash('sha256').update(Buffer.from(v.bytesHex, 'hex')).digest('hex')).toBe(v.sha256);
      const tensors = Object.fromEntries(Object.entries(v.tensors).map(([k, t]) => [k, typed(t)]));
      expect(hex(tensorDigest(tensors))).toBe(v.sha256);
      expect(hex(tensorDigest(tensors, salt))).toBe(v.hmacSha256);
    });
  }

  it('gives the same digest for plain arrays, typed arrays and views with offsets', () => {
    const backing = new Float32Array([9, 1, 2, 3, 4, 9]);
    const view = { type: 'float32' as const, dims: [2, 2], data: backing.subarray(1, 5) };
    const plain = { dtype: 'float32' as const, dims: [2, 2], data: [1, 2, 3, 4] };
    expect(hex(tensorDigest({ x: view }))).toBe(hex(tensorDigest({ x: plain })));
    const big = { dtype: 'int64' as const, dims: [2], data: [1, -2] };
    const bigTyped = { type: 'int64' as const, dims: [2], data: BigInt64Array.from([1n, -2n]) };
    expect(hex(tensorDigest({ y: big }))).toBe(hex(tensorDigest({ y: bigTyped })));
  });

  it('hashes small streams in one call and large ones piecewise to the same canonical digest', () => {
    // Either side of the one-shot limit (64 KiB of stream), two tensors each, unsalted and salted:
    // the digest is SHA-256 (or HMAC) of the canonical bytes written out by hand.
    for (const n of [16_000, 16_500]) {
      const a = new Float32Array(n).map((_, i) => Math.sin(i));
      const b = new Uint8Array(7).fill(3);
      const head = (name: string, type: number, dims: number[], len: number) => {
        const h = Buffer.alloc(4 + name.length + 1 + 4 + 8 * dims.length + 8);
        let o = h.writeUInt32LE(name.length, 0);
        o += h.write(name, o, 'utf8');
        o = h.writeUInt8(type, o);
        o = h.writeUInt32LE(dims.length, o);
        for (const d of dims) o = h.writeBigUInt64LE(BigInt(d), o);
        h.writeBigUInt64LE(BigInt(len), o);
        return h;
      };
      const stream = Buffer.concat([
        head('a', 1, [n], a.byteLength),
        Buffer.from(a.buffer),
        head('b', 2, [7], 7),
        Buffer.from(b),
      ]);
      const tensors = {
        b: { type: 'uint8' as const, dims: [7], data: b },
        a: { type: 'float32' as const, dims: [n], data: a },
      };
      expect(hex(tensorDigest(tensors))).toBe(createHash('sha256').update(stream).digest('hex'));
      expect(hex(tensorDigest(tensors, salt))).toBe(createHmac('sha256', salt).update(stream).digest('hex'));
    }
  });

  it('changes with any change of name, dtype, dims, data or salt', () => {
    const base = { x: { type: 'float32' as const, dims: [2], data: new Float32Array([1, 2]) } };
    const d = hex(tensorDigest(base));
    expect(hex(tensorDigest({ y: base.x }))).not.toBe(d);
    expect(hex(tensorDigest({ x: { ...base.x, dims: [1, 2] } }))).not.toBe(d);
    expect(
      hex(tensorDigest({ x: { type: 'int32', dims: [2], data: new Int32Array(new Float32Array([1, 2]).buffer) } })),
    ).not.toBe(d);
    expect(hex(tensorDigest({ x: { ...base.x, data: new Float32Array([1, 2.0000002]) } }))).not.toBe(d);
    expect(hex(tensorDigest(base, new Uint8Array([1])))).not.toBe(hex(tensorDigest(base, new Uint8Array([2]))));
  });

  it('refuses malformed tensors with EW_PROVENANCE_TENSOR', () => {
    const bad: unknown[] = [
      { dtype: 'float32', dims: [3], data: [1, 2] },
      { dtype: 'complex64', dims: [1], data: [1] },
      { dtype: 'float32', dims: [-1], data: [] },
      { dtype: 'float32', dims: [1.5], data: [1] },
      { type: 'float32', dims: [2], data: new Int32Array(2) },
      { dtype: 'string', dims: [1], data: [3] },
      { dtype: 'int64', dims: [1], data: [0.5] },
      { dtype: 'float32', dims: 'x', data: [] },
      null,
      { dtype: 'uint8', dims: [1], data: 'a' },
    ];
    expect(() => tensorDigest(null as never)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_TENSOR' }));
    expect(() => tensorDigest([] as never)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_TENSOR' }));
    for (const t of bad) {
      expect(() => tensorDigest({ t } as never)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_TENSOR' }));
    }
  });
});
