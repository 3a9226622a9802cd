import { EdgewardenError } from '../errors';

/** Element types edgewarden understands, named as onnxruntime-node names them. */
export type DType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool'
  | 'string';

/** Tensor element storage. float16 is carried as raw Uint16Array bits. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | string[];

/**
 * A tensor as edgewarden reads it. onnxruntime-node's `Tensor` satisfies this shape structurally,
 * so outputs pass through without a copy.
 */
export interface TensorView {
  readonly type: DType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

/** What callers may pass as an input: an onnxruntime `Tensor`, a {@link TensorView}, or plain `{ dtype, dims, data }`. */
export type TensorInput =
  | TensorView
  | {
      readonly dtype: DType;
      readonly dims: readonly number[];
      readonly data: TensorData | readonly number[] | readonly bigint[] | readonly boolean[];
    };

/** Named tensors. */
export type TensorMap<T = TensorView> = Record<string, T>;

/** Every dtype edgewarden accepts, in a fixed order. */
export const DTYPES: readonly DType[] = [
  'float32',
  'float64',
  'float16',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'bool',
  'string',
];

type NumericArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor;

/** The typed-array class that carries each dtype (float16 as raw bits, bool as bytes, as onnxruntime does). */
const STORAGE: Record<
  Exclude<DType, 'string'>,
  NumericArrayCtor | BigInt64ArrayConstructor | BigUint64ArrayConstructor
> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

const INT_RANGE: Partial<Record<DType, readonly [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};

const DTYPE_SET: ReadonlySet<unknown> = new Set(DTYPES);

/** True when `t` is a dtype name edgewarden understands. */
export function isDType(t: unknown): t is DType {
  return DTYPE_SET.has(t);
}

/** Number of elements of a tensor with these dims (1 for a scalar, dims `[]`). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function bad(message: string, reason: string): EdgewardenError {
  return new EdgewardenError('EW_ENGINE_INPUT', message, { details: { reason } });
}

/** IEEE 754 binary32 → binary16 bits, round to nearest even (for float16 inputs given as plain numbers). */
export function float32ToFloat16Bits(value: number): number {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++; // may carry into the exponent: correct
  return half;
}

function checkDims(dims: unknown): readonly number[] {
  if (!Array.isArray(dims)) throw bad('dims must be an array of non-negative integers', 'dims');
  for (const d of dims) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw bad(`dims must be non-negative integers, got ${String(d)}`, 'dims');
    }
  }
  return dims as readonly number[];
}

function storageMatches(type: DType, data: unknown): boolean {
  if (type === 'string') return Array.isArray(data) && data.every((s) => typeof s === 'string');
  return data instanceof STORAGE[type];
}

function fromPlain(type: DType, values: readonly unknown[]): TensorData {
  if (type === 'string') {
    if (!values.every((s) => typeof s === 'string')) throw bad('string tensors need string data', 'data');
    return [...(values as string[])];
  }
  if (type === 'int64' || type === 'uint64') {
    const out = type === 'int64' ? new BigInt64Array(values.length) : new BigUint64Array(values.length);
    const [lo, hi] = type === 'int64' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      let b: bigint;
      if (typeof v === 'bigint') b = v;
      else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
      else throw bad(`${type} data must be safe integers or bigints, got ${String(v)} at ${i}`, 'data');
      if (b < lo || b > hi) throw bad(`${type} value out of range at ${i}`, 'data');
      out[i] = b;
    }
    return out;
  }
  if (type === 'bool') {
    const out = new Uint8Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === true || v === 1) out[i] = 1;
      else if (v !== false && v !== 0) throw bad(`bool data must be booleans or 0/1, got ${String(v)} at ${i}`, 'data');
    }
    return out;
  }
  for (let i = 0; i < values.length; i++) {
    if (typeof values[i] !== 'number')
      throw bad(`${type} data must be numbers, got ${typeof values[i]} at ${i}`, 'data');
  }
  const nums = values as readonly number[];
  if (type === 'float16') return Uint16Array.from(nums, float32ToFloat16Bits);
  const range = INT_RANGE[type];
  if (range) {
    for (let i = 0; i < nums.length; i++) {
      const v = nums[i]!;
      if (!Number.isInteger(v) || v < range[0] || v > range[1]) {
        throw bad(`${type} data must be integers in [${range[0]}, ${range[1]}], got ${v} at ${i}`, 'data');
      }
    }
  }
  return (STORAGE[type] as NumericArrayCtor).from(nums);
}

/**
 * Normalises any accepted tensor form to a {@link TensorView}: an onnxruntime `Tensor` or a
 * TensorView passes through unchanged (no copy); `{ dtype, dims, data }` with plain arrays becomes
 * typed arrays (int64 from safe integers or bigints, bool from booleans, float16 from numbers).
 * Checks dims and that the data length equals the product of the dims.
 *
 * @throws EdgewardenError `EW_ENGINE_INPUT` (details.reason: 'shape' | 'dtype' | 'dims' | 'data' | 'length')
 */
export function toTensorView(input: TensorInput): TensorView {
  if (typeof input !== 'object' || input === null) throw bad('a tensor must be an object', 'shape');
  const raw = input as { type?: unknown; dtype?: unknown; dims?: unknown; data?: unknown };
  const isView = raw.type !== undefined;
  const type = isView ? raw.type : raw.dtype;
  if (!isDType(type)) throw bad(`unsupported dtype ${JSON.stringify(type) ?? String(type)}`, 'dtype');
  const dims = checkDims(raw.dims);
  let data: TensorData;
  if (storageMatches(type, raw.data)) {
    data = raw.data as TensorData;
  } else if (!isView && Array.isArray(raw.data)) {
    data = fromPlain(type, raw.data);
  } else {
    throw bad(`data does not match dtype ${type}`, 'data');
  }
  const expected = elementCount(dims);
  if (data.length !== expected) {
    throw bad(`data has ${data.length} elements, dims [${dims.join(', ')}] need ${expected}`, 'length');
  }
  if (isView) return input as TensorView;
  return { type, dims: [...dims], data };
}
