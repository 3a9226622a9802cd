import type { DType, TensorData, TensorView } from '../engine/tensor';
import { EdgewardenError } from '../errors';

// NumPy type codes (without the byte-order character) → our dtype and element size.
const NPY_TYPES: Record<string, { dtype: DType; size: number }> = {
  f2: { dtype: 'float16', size: 2 },
  f4: { dtype: 'float32', size: 4 },
  f8: { dtype: 'float64', size: 8 },
  i1: { dtype: 'int8', size: 1 },
  u1: { dtype: 'uint8', size: 1 },
  i2: { dtype: 'int16', size: 2 },
  u2: { dtype: 'uint16', size: 2 },
  i4: { dtype: 'int32', size: 4 },
  u4: { dtype: 'uint32', size: 4 },
  i8: { dtype: 'int64', size: 8 },
  u8: { dtype: 'uint64', size: 8 },
  b1: { dtype: 'bool', size: 1 },
};

const MAX_HEADER = 1 << 16;

function bad(path: string, why: string): never {
  throw new EdgewardenError('EW_CLI_INPUT', `${path}: not a readable .npy file (${why})`, { details: { path } });
}

/**
 * Parses a NumPy `.npy` file (format versions 1–3, C order, numeric and bool dtypes, either byte
 * order) into a tensor. Anything else is refused with `EW_CLI_INPUT`.
 */
export function parseNpy(bytes: Uint8Array, path = '<npy>'): TensorView {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || buf[0] !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') bad(path, 'bad magic');
  const major = buf[6];
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) bad(path, 'truncated header');
    headerLen = buf.readUInt32LE(8);
    headerStart = 12;
  } else {
    return bad(path, `format version ${major}`);
  }
  if (headerLen > MAX_HEADER || headerStart + headerLen > buf.length) bad(path, 'truncated header');
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', headerStart, headerStart + headerLen);
  const descr = /'descr'\s*:\s*'([<>|=])([a-z]\d+)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) return bad(path, 'header lacks descr, fortran_order or shape');
  const type = NPY_TYPES[descr[2] as string];
  if (!type) return bad(path, `unsupported dtype ${descr[1]}${descr[2]}`);
  const dims = (shape[1] as string)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      if (!/^\d+$/.test(s)) bad(path, `bad shape entry ${s}`);
      return Number(s);
    });
  const count = dims.reduce((a, b) => a * b, 1);
  if (fortran[1] === 'True' && dims.filter((d) => d > 1).length > 1) bad(path, 'Fortran order is not supported');
  const dataStart = headerStart + headerLen;
  const byteLength = count * type.size;
  if (!Number.isSafeInteger(byteLength) || buf.length - dataStart !== byteLength) {
    bad(path, `expected ${byteLength} data bytes for shape (${dims.join(', ')}), found ${buf.length - dataStart}`);
  }
  // Copy into a fresh aligned buffer; swap to little-endian when the file is big-endian.
  const raw = new Uint8Array(byteLength);
  raw.set(buf.subarray(dataStart, dataStart + byteLength));
  if (descr[1] === '>' && type.size > 1) {
    for (let i = 0; i < byteLength; i += type.size) raw.subarray(i, i + type.size).reverse();
  }
  return { type: type.dtype, dims, data: typedArrayOver(type.dtype, raw.buffer, count) };
}

function typedArrayOver(dtype: DType, ab: ArrayBuffer, count: number): TensorData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(ab, 0, count);
    case 'float64':
      return new Float64Array(ab, 0, count);
    case 'float16':
    case 'uint16':
      return new Uint16Array(ab, 0, count);
    case 'int8':
      return new Int8Array(ab, 0, count);
    case 'int16':
      return new Int16Array(ab, 0, count);
    case 'int32':
      return new Int32Array(ab, 0, count);
    case 'uint32':
      return new Uint32Array(ab, 0, count);
    case 'int64':
      return new BigInt64Array(ab, 0, count);
    case 'uint64':
      return new BigUint64Array(ab, 0, count);
    default:
      return new Uint8Array(ab, 0, count);
  }
}

/** Writes a tensor as a version 1.0 `.npy` file (used by tests and for users' round trips). */
export function encodeNpy(t: TensorView): Uint8Array {
  const entry = Object.entries(NPY_TYPES).find(([, v]) => v.dtype === t.type);
  if (!entry || Array.isArray(t.data)) {
    throw new EdgewardenError('EW_CLI_INPUT', `dtype ${t.type} cannot be written as .npy`);
  }
  const [code, { size }] = entry;
  const order = size === 1 ? '|' : '<';
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let header = `{'descr': '${order}${code}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64);
  header += '\n';
  const head = Buffer.alloc(10);
  head[0] = 0x93;
  head.write('NUMPY', 1, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const data = t.data as Exclude<TensorData, string[]>;
  return Buffer.concat([
    head,
    Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ]);
}
