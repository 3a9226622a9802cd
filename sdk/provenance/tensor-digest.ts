import { createHash, createHmac, type Hash, type Hmac, hash } from 'node:crypto';
import { endianness } from 'node:os';
import type { DType, TensorData, TensorInput } from '../engine/tensor';
import { EdgewardenError } from '../errors';

/** ONNX `TensorProto.DataType` number of each element type: the `dtype` byte of the canonical digest. */
export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
};

/** Bytes per element of each fixed-width type (bool is one byte per element). */
const ELEMENT_BYTES: Record<Exclude<DType, 'string'>, number> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  float64: 8,
  uint32: 4,
  uint64: 8,
};

/** The typed-array class that carries each type (onnxruntime-node's choice: bool as Uint8Array, float16 as raw Uint16Array bits). */
const ARRAY_TAG: Record<Exclude<DType, 'string'>, string> = {
  float32: 'Float32Array',
  uint8: 'Uint8Array',
  int8: 'Int8Array',
  uint16: 'Uint16Array',
  int16: 'Int16Array',
  int32: 'Int32Array',
  int64: 'BigInt64Array',
  bool: 'Uint8Array',
  float16: 'Uint16Array',
  float64: 'Float64Array',
  uint32: 'Uint32Array',
  uint64: 'BigUint64Array',
};

const LITTLE_ENDIAN_HOST = endianness() === 'LE';
const MAX_RANK = 64;

function bad(message: string, name?: string): never {
  throw new EdgewardenError('EW_PROVENANCE_TENSOR', message, name === undefined ? {} : { details: { tensor: name } });
}

/** Raw little-endian bytes of a typed array, without a copy on little-endian hosts. */
function leBytes(data: Exclude<TensorData, string[]>, width: number): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN_HOST || width === 1) return view;
  // Big-endian host (rare: s390x, some MIPS): swap each element into a copy.
  const out = new Uint8Array(view.length);
  for (let i = 0; i < view.length; i += width) for (let j = 0; j < width; j++) out[i + j] = view[i + width - 1 - j]!;
  return out;
}

/** Converts plain JS arrays (numbers, bigints, booleans) into the typed array of `dtype`. */
function fromPlain(dtype: Exclude<DType, 'string'>, values: readonly unknown[], name: string): Uint8Array {
  const n = values.length;
  const width = ELEMENT_BYTES[dtype];
  const buf = new ArrayBuffer(n * width);
  const dv = new DataView(buf);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const off = i * width;
    if (dtype === 'int64' || dtype === 'uint64') {
      let b: bigint;
      if (typeof v === 'bigint') b = v;
      else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
      else return bad(`element ${i} of ${dtype} tensor is not an integer`, name);
      if (dtype === 'int64') dv.setBigInt64(off, BigInt.asIntN(64, b), true);
      else dv.setBigUint64(off, BigInt.asUintN(64, b), true);
      continue;
    }
    let x: number;
    if (typeof v === 'number') x = v;
    else if (typeof v === 'boolean') x = v ? 1 : 0;
    else return bad(`element ${i} of ${dtype} tensor is not a number`, name);
    switch (dtype) {
      case 'float32':
        dv.setFloat32(off, x, true);
        break;
      case 'float64':
        dv.setFloat64(off, x, true);
        break;
      case 'float16': // plain numbers for float16 are the raw 16-bit patterns, as onnxruntime-node carries them
      case 'uint16':
        dv.setUint16(off, x, true);
        break;
      case 'int16':
        dv.setInt16(off, x, true);
        break;
      case 'int32':
        dv.setInt32(off, x, true);
        break;
      case 'uint32':
        dv.setUint32(off, x, true);
        break;
      case 'int8':
        dv.setInt8(off, x);
        break;
      case 'bool':
        dv.setUint8(off, x ? 1 : 0);
        break;
      default:
        dv.setUint8(off, x);
    }
  }
  return new Uint8Array(buf);
}

/** Up to this many bytes the stream is copied into one buffer and hashed in one call. */
const ONE_SHOT_MAX = 64 * 1024;

/** Writes a non-negative safe integer as u64 little-endian at `o` (two u32 writes: no BigInt); returns the offset after it. */
export function writeU64(out: Buffer, v: number, o: number): number {
  out.writeUInt32LE(v % 0x1_0000_0000, o);
  return out.writeUInt32LE(Math.floor(v / 0x1_0000_0000), o + 4);
}

function elementCount(dims: readonly unknown[], name: string): number {
  let n = 1;
  for (const d of dims) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) bad(`dimension ${String(d)} is not valid`, name);
    n *= d as number;
    if (!Number.isSafeInteger(n)) bad('element count overflows', name);
  }
  return n;
}

/**
 * Canonical digest of named tensors (DESIGN.md), recomputable in any language:
 * tensors sorted by the UTF-8 bytes of their names; for each,
 * `u32 len(name) ‖ name ‖ u8 onnx_dtype ‖ u32 rank ‖ u64 dims… ‖ u64 len(data) ‖ data`,
 * integers little-endian, data the little-endian element bytes (bool one byte each; strings each
 * `u32 len ‖ UTF-8`, and `len(data)` is the byte length of that concatenation). SHA-256 of the whole,
 * or HMAC-SHA256 keyed by `salt` when given. Accepts onnxruntime `Tensor`s, {@link TensorView}s and
 * plain `{ dtype, dims, data }`; throws `EW_PROVENANCE_TENSOR` on a tensor that is not well-formed.
 */
export function tensorDigest(tensors: Readonly<Record<string, TensorInput>>, salt?: Uint8Array): Uint8Array {
  if (typeof tensors !== 'object' || tensors === null || Array.isArray(tensors))
    bad('tensors is not an object of named tensors');
  if (salt !== undefined && !(salt instanceof Uint8Array)) bad('salt is not bytes');
  // The stream's parts, hashed at the end: one-shot when small and unsalted (a Hash object per
  // digest costs a verifier about as much as hashing a few KB).
  const parts: Uint8Array[] = [];
  let total = 0;
  const names = Object.keys(tensors).map((n) => ({ n, b: Buffer.from(n, 'utf8') }));
  names.sort((a, b) => Buffer.compare(a.b, b.b));
  for (const { n: name, b: nameBytes } of names) {
    const t = tensors[name] as TensorInput | undefined;
    if (typeof t !== 'object' || t === null) bad('not a tensor', name);
    const rec = t as { type?: unknown; dtype?: unknown; dims?: unknown; data?: unknown };
    const dtype = (typeof rec.type === 'string' ? rec.type : rec.dtype) as DType;
    if (typeof dtype !== 'string' || !Object.hasOwn(ONNX_DTYPE, dtype)) bad(`unknown dtype ${String(dtype)}`, name);
    const dims = rec.dims;
    if (!Array.isArray(dims) || dims.length > MAX_RANK) bad('dims is not an array of at most 64 numbers', name);
    const count = elementCount(dims as unknown[], name);
    const data = rec.data;
    let payload: Uint8Array[];
    if (dtype === 'string') {
      if (!Array.isArray(data) || data.length !== count) bad('string tensor data must be one string per element', name);
      payload = [];
      for (const s of data as unknown[]) {
        if (typeof s !== 'string') bad('string tensor element is not a string', name);
        const sb = Buffer.from(s as string, 'utf8');
        const lb = Buffer.allocUnsafe(4);
        lb.writeUInt32LE(sb.length, 0);
        payload.push(lb, sb);
      }
    } else {
      const width = ELEMENT_BYTES[dtype];
      let bytes: Uint8Array;
      if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
        const ta = data as Exclude<TensorData, string[]>;
        if (ta.length !== count) bad(`data has ${ta.length} elements, dims say ${count}`, name);
        const tag = Object.prototype.toString.call(ta).slice(8, -1);
        if (tag !== ARRAY_TAG[dtype] && !(tag === 'Float16Array' && dtype === 'float16')) {
          bad(`data is a ${tag}, not the ${ARRAY_TAG[dtype]} of a ${dtype} tensor`, name);
        }
        bytes = leBytes(ta, width);
      } else if (Array.isArray(data)) {
        if (data.length !== count) bad(`data has ${data.length} elements, dims say ${count}`, name);
        bytes = fromPlain(dtype, data, name);
      } else {
        return bad('data is not an array', name);
      }
      payload = [bytes];
    }
    let dataLen = 0;
    for (const p of payload) dataLen += p.length;
    const head = Buffer.allocUnsafe(4 + nameBytes.length + 1 + 4 + 8 * (dims as number[]).length + 8);
    let o = head.writeUInt32LE(nameBytes.length, 0);
    o += nameBytes.copy(head, o);
    o = head.writeUInt8(ONNX_DTYPE[dtype], o);
    o = head.writeUInt32LE((dims as number[]).length, o);
    for (const d of dims as number[]) o = writeU64(head, d, o);
    writeU64(head, dataLen, o);
    parts.push(head);
    for (const p of payload) if (p.length > 0) parts.push(p);
    total += head.length + dataLen;
  }
  if (!salt && total <= ONE_SHOT_MAX) return new Uint8Array(hash('sha256', Buffer.concat(parts, total), 'buffer'));
  const h: Hash | Hmac = salt ? createHmac('sha256', salt) : createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}
