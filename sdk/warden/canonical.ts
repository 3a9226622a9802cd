import type { TensorData, TensorMap, TensorView } from '../engine/tensor';
import { ONNX_DTYPE, writeU64 } from '../provenance/tensor-digest';

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

interface Part {
  /** Name length, name, dtype, rank and dims ({@link tensorHeader}). */
  head: Buffer;
  /** The stream's bytes of the data: strings (length-prefixed) and big-endian hosts' swapped copies. */
  bytes: Uint8Array[];
  /** Or the data itself, copied as it is (fixed-width types on a little-endian host). */
  data?: FixedData;
  len: number;
}

type FixedData = Exclude<TensorData, string[]>;

/** A tensor map laid out for the canonical stream: `size` bytes, written by {@link writeCanonical}. */
export interface CanonicalPlan {
  readonly size: number;
  readonly parts: readonly Part[];
}

// Tensor names repeat from one inference to the next: their UTF-8 bytes are kept (bounded).
const nameCache = new Map<string, Buffer>();

function nameBytes(n: string): Buffer {
  let b = nameCache.get(n);
  if (b === undefined) {
    if (nameCache.size >= 1024) nameCache.clear();
    b = Buffer.from(n, 'utf8');
    nameCache.set(n, b);
  }
  return b;
}

/** Plans the canonical byte stream of DESIGN.md's tensor digest (names sorted by UTF-8 bytes). */
export function planCanonical(tensors: TensorMap): CanonicalPlan {
  const names = Object.keys(tensors);
  if (names.length > 1) names.sort((a, b) => Buffer.compare(nameBytes(a), nameBytes(b)));
  const parts: Part[] = [];
  let size = 0;
  for (const n of names) {
    const t = tensors[n];
    if (!t) continue;
    let bytes: Uint8Array[];
    if (t.type === 'string') {
      bytes = [];
      for (const s of t.data as string[]) {
        const sb = Buffer.from(s, 'utf8');
        const lb = Buffer.allocUnsafe(4);
        lb.writeUInt32LE(sb.length, 0);
        bytes.push(lb, sb);
      }
    } else if (LE) {
      // Copied by writeCanonical without reading `.buffer` first (see copyData).
      const d = t.data as FixedData;
      const head = tensorHeader(n, t);
      parts.push({ head, bytes: [], data: d, len: d.byteLength });
      size += head.length + 8 + d.byteLength;
      continue;
    } else {
      bytes = [leBytes(t.data as FixedData)];
    }
    let len = 0;
    for (const x of bytes) len += x.length;
    const head = tensorHeader(n, t);
    parts.push({ head, bytes, len });
    size += head.length + 8 + len;
  }
  return { size, parts };
}

/**
 * Writes the planned stream into `out` at `offset` (the exact bytes `tensorDigest` hashes) and
 * returns the offset after it. This is the one copy the warden makes of an inference's tensors: the
 * application may reuse its buffers at once, and the copy goes to the digest worker as is.
 */
export function writeCanonical(plan: CanonicalPlan, out: Buffer, offset: number): number {
  let o = offset;
  for (const p of plan.parts) {
    out.set(p.head, o);
    o = writeU64(out, p.len, o + p.head.length);
    if (p.data) {
      copyData(p.data, out, o);
      o += p.len;
    }
    for (const x of p.bytes) {
      out.set(x, o);
      o += x.length;
    }
  }
  return o;
}

// A typed array of a few elements lives inside V8's heap, and the first read of its `.buffer` moves
// it out (~300 ns, measured): a small tensor made fresh for every inference paid that each time.
// Up to SMALL_BYTES are copied through a scratch array of the same type instead (`set` between
// arrays of one type copies their bytes exactly, NaN payloads included), ~0.1 µs.
const SMALL_BYTES = 32;
const scratch = new Map<unknown, { typed: FixedData; bytes: Uint8Array }>();

/** Copies the bytes of `d` (host order) into `out` at `o`. */
function copyData(d: FixedData, out: Buffer, o: number): void {
  const n = d.byteLength;
  if (d instanceof Uint8Array) {
    out.set(d, o);
    return;
  }
  if (n > SMALL_BYTES) {
    out.set(new Uint8Array(d.buffer, d.byteOffset, n), o);
    return;
  }
  let s = scratch.get(d.constructor);
  if (s === undefined) {
    const buf = new ArrayBuffer(SMALL_BYTES);
    const Typed = d.constructor as new (b: ArrayBuffer) => FixedData;
    s = { typed: new Typed(buf), bytes: new Uint8Array(buf) };
    scratch.set(d.constructor, s);
  }
  (s.typed as { set(a: FixedData): void }).set(d);
  const b = s.bytes;
  for (let i = 0; i < n; i++) out[o + i] = b[i] as number;
}

/** The one own key of a map holding exactly one tensor, else undefined (no allocation). */
function soleKey(tensors: TensorMap): string | undefined {
  let key: string | undefined;
  for (const k in tensors) {
    if (!Object.hasOwn(tensors, k)) continue;
    if (key !== undefined) return undefined;
    key = k;
  }
  return key;
}

/** The name of the sole fixed-width tensor of a map, on a little-endian host: the fast path's case. */
function soleFixed(tensors: TensorMap): string | undefined {
  if (!LE) return undefined;
  const name = soleKey(tensors);
  if (name === undefined) return undefined;
  const t = tensors[name];
  return t && t.type !== 'string' ? name : undefined;
}

// The plan of a map that is not a single fixed-width tensor, kept from canonicalSize for the write
// that follows it.
let planned: { tensors: TensorMap; plan: CanonicalPlan } | undefined;

/**
 * Size in bytes of the canonical stream of `tensors`. With {@link writeCanonicalMap} it is the
 * pipeline's path: a map of one fixed-width tensor (the common case) is measured and written
 * without planning objects (about 2 µs less per inference on the inference thread).
 */
export function canonicalSize(tensors: TensorMap): number {
  const name = soleFixed(tensors);
  if (name !== undefined) {
    const t = tensors[name] as TensorView;
    return (
      4 + nameBytes(name).length + 1 + 4 + 8 * t.dims.length + 8 + (t.data as Exclude<TensorData, string[]>).byteLength
    );
  }
  const plan = planCanonical(tensors);
  planned = { tensors, plan };
  return plan.size;
}

/** Writes the canonical stream of `tensors` into `out` at `offset`; returns the offset after it. */
export function writeCanonicalMap(tensors: TensorMap, out: Buffer, offset: number): number {
  const name = soleFixed(tensors);
  if (name !== undefined) {
    const t = tensors[name] as TensorView;
    const head = tensorHeader(name, t);
    const d = t.data as Exclude<TensorData, string[]>;
    out.set(head, offset);
    const o = writeU64(out, d.byteLength, offset + head.length);
    copyData(d, out, o);
    return o + d.byteLength;
  }
  let plan: CanonicalPlan;
  if (planned?.tensors === tensors) {
    plan = planned.plan;
    planned = undefined;
  } else plan = planCanonical(tensors);
  return writeCanonical(plan, out, offset);
}

// The bytes in front of a tensor's data length (name length, name, dtype, rank, dims) repeat from
// one inference to the next: kept per name (bounded) and copied with one set(), which measured
// ~0.3 µs less per tensor than writing each field.
const headerCache = new Map<string, { type: TensorView['type']; dims: number[]; bytes: Buffer }>();

function tensorHeader(name: string, t: TensorView): Buffer {
  const dims = t.dims;
  const hit = headerCache.get(name);
  if (hit !== undefined && hit.type === t.type && hit.dims.length === dims.length) {
    let same = true;
    for (let i = 0; i < dims.length && same; i++) same = hit.dims[i] === dims[i];
    if (same) return hit.bytes;
  }
  const nb = nameBytes(name);
  const bytes = Buffer.alloc(4 + nb.length + 1 + 4 + 8 * dims.length);
  let o = bytes.writeUInt32LE(nb.length, 0);
  o += nb.copy(bytes, o);
  o = bytes.writeUInt8(ONNX_DTYPE[t.type], o);
  o = bytes.writeUInt32LE(dims.length, o);
  for (const dim of dims) o = writeU64(bytes, dim, o);
  if (headerCache.size >= 1024) headerCache.clear();
  headerCache.set(name, { type: t.type, dims: [...dims], bytes });
  return bytes;
}

/** The canonical stream in a fresh ArrayBuffer of its own: SHA-256 of it equals `tensorDigest(tensors)`. */
export function canonicalTensorBytes(tensors: TensorMap): ArrayBuffer {
  const plan = planCanonical(tensors);
  const out = Buffer.allocUnsafeSlow(plan.size);
  writeCanonical(plan, out, 0);
  return out.buffer as ArrayBuffer;
}

function leBytes(d: Exclude<TensorData, string[]>): Uint8Array {
  const view = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  const w = d.BYTES_PER_ELEMENT;
  if (LE || w === 1) return view;
  const out = new Uint8Array(view.length);
  for (let i = 0; i < view.length; i += w) for (let j = 0; j < w; j++) out[i + j] = view[i + w - 1 - j] as number;
  return out;
}
