import { EdgewardenError } from '../errors';
import { type DType, isDType, type TensorData, type TensorMap, type TensorView } from './tensor';

// The JSON form of tensors used by input files, result files and the dashboard's result check:
// `{"name": {"dtype", "dims", "data"}}`. Hostile JSON gets EW_ENGINE_TENSOR_JSON, never a crash.

/** One tensor in the JSON form of input and result files. */
export interface TensorJson {
  dtype: DType;
  dims: number[];
  /** Numbers; int64/uint64 beyond 2^53 as decimal strings; non-finite floats as "NaN", "Infinity", "-Infinity"; float16 as raw bits. */
  data: (number | string | boolean)[];
}

const MAX_ELEMENTS = 1 << 28;

function bad(where: string, why: string, input?: string): never {
  throw new EdgewardenError('EW_ENGINE_TENSOR_JSON', `${where}: ${why}`, { details: input ? { input } : {} });
}

function flatten(data: unknown, out: unknown[], depth = 0): void {
  if (depth > 32) throw new Error('nested too deeply');
  if (Array.isArray(data)) for (const d of data) flatten(d, out, depth + 1);
  else out.push(data);
}

function toNumber(v: unknown, where: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === 'NaN') return Number.NaN;
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return bad(where, `${JSON.stringify(v)} is not a number`);
}

function toBigInt(v: unknown, where: string): bigint {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  return bad(where, `${JSON.stringify(v)} is not an integer`);
}

function toInteger(v: unknown, where: string): number {
  const n = toNumber(v, where);
  if (!Number.isInteger(n)) bad(where, `${JSON.stringify(v)} is not an integer`);
  return n;
}

/** Converts one JSON tensor (already parsed) into a typed tensor; `EW_ENGINE_TENSOR_JSON` names what is wrong. */
export function tensorFromJson(name: string, value: unknown): TensorView {
  const where = `tensor ${JSON.stringify(name)}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return bad(where, 'expected {"dtype", "dims", "data"}', name);
  }
  const v = value as Record<string, unknown>;
  const dtype = v.dtype as DType;
  if (typeof dtype !== 'string' || !isDType(dtype)) bad(where, `unknown dtype ${JSON.stringify(v.dtype)}`, name);
  if (!Array.isArray(v.dims) || !v.dims.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    bad(where, 'dims must be an array of non-negative integers', name);
  }
  const dims = v.dims as number[];
  const count = dims.reduce((a, b) => a * b, 1);
  if (count > MAX_ELEMENTS) bad(where, `too many elements (${count})`, name);
  const flat: unknown[] = [];
  try {
    flatten(v.data, flat);
  } catch {
    bad(where, 'data is nested too deeply', name);
  }
  if (!Array.isArray(v.data)) bad(where, 'data must be an array', name);
  if (flat.length !== count)
    bad(where, `data has ${flat.length} elements, dims [${dims.join(', ')}] need ${count}`, name);
  let data: TensorData;
  switch (dtype) {
    case 'string':
      data = flat.map((s) => (typeof s === 'string' ? s : bad(where, 'string tensors hold strings', name)));
      break;
    case 'int64':
      data = BigInt64Array.from(flat, (x) => toBigInt(x, where));
      break;
    case 'uint64':
      data = BigUint64Array.from(flat, (x) => toBigInt(x, where));
      break;
    case 'float32':
      data = Float32Array.from(flat, (x) => toNumber(x, where));
      break;
    case 'float64':
      data = Float64Array.from(flat, (x) => toNumber(x, where));
      break;
    case 'bool':
      data = Uint8Array.from(flat, (x) => (toNumber(x, where) ? 1 : 0));
      break;
    default: {
      const ints = flat.map((x) => toInteger(x, where));
      data =
        dtype === 'int8'
          ? Int8Array.from(ints)
          : dtype === 'uint8'
            ? Uint8Array.from(ints)
            : dtype === 'int16'
              ? Int16Array.from(ints)
              : dtype === 'int32'
                ? Int32Array.from(ints)
                : dtype === 'uint32'
                  ? Uint32Array.from(ints)
                  : Uint16Array.from(ints); // uint16, and float16 as raw bits
    }
  }
  return { type: dtype, dims, data };
}

/** Parses the JSON form `{"name": {"dtype", "dims", "data"}}` into tensors. */
export function tensorsFromJson(value: unknown, where = 'input'): TensorMap {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return bad(where, 'expected an object of named tensors');
  }
  const out: TensorMap = Object.create(null);
  for (const [name, t] of Object.entries(value)) out[name] = tensorFromJson(name, t);
  return out;
}

function jsonNumber(x: number): number | string {
  if (Number.isFinite(x)) return x;
  return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
}

/** The JSON form of one tensor (as written into result files). */
export function tensorToJson(t: TensorView): TensorJson {
  let data: (number | string | boolean)[];
  if (t.type === 'string') data = [...(t.data as string[])];
  else if (t.type === 'bool') data = Array.from(t.data as Uint8Array, (x) => x !== 0);
  else if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) {
    data = Array.from(t.data as Iterable<bigint>, (b) =>
      b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString(),
    );
  } else data = Array.from(t.data as ArrayLike<number>, jsonNumber);
  return { dtype: t.type, dims: [...t.dims], data };
}

/** The JSON form of named tensors. */
export function tensorsToJson(tensors: TensorMap): Record<string, TensorJson> {
  const out: Record<string, TensorJson> = {};
  for (const name of Object.keys(tensors).sort()) out[name] = tensorToJson(tensors[name] as TensorView);
  return out;
}
