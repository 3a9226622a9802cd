import type { TensorData, TensorMap } from '../engine/tensor';
import { ONNX_DTYPE } from '../provenance/tensor-digest';

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

interface Part {
  name: Buffer;
  type: number;
  dims: readonly number[];
  bytes: Uint8Array[];
  len: number;
}

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
  const keys = Object.keys(tensors);
  const names =
    keys.length === 1
      ? [{ n: keys[0] as string, b: nameBytes(keys[0] as string) }]
      : keys.map((n) => ({ n, b: nameBytes(n) }));
  if (names.length > 1) names.sort((a, b) => Buffer.compare(a.b, b.b));
  const parts: Part[] = [];
  let size = 0;
  for (const { n, b } of names) {
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
    } else {
      bytes = [leBytes(t.data as Exclude<TensorData, string[]>)];
    }
    let len = 0;
    for (const x of bytes) len += x.length;
    parts.push({ name: b, type: ONNX_DTYPE[t.type], dims: t.dims, bytes, len });
    size += 4 + b.length + 1 + 4 + 8 * t.dims.length + 8 + len;
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
    o = out.writeUInt32LE(p.name.length, o);
    o += p.name.copy(out, o);
    o = out.writeUInt8(p.type, o);
    o = out.writeUInt32LE(p.dims.length, o);
    for (const d of p.dims) o = writeU64(out, d, o);
    o = writeU64(out, p.len, o);
    for (const x of p.bytes) {
      out.set(x, o);
      o += x.length;
    }
  }
  return o;
}

/** A non-negative safe integer as u64 little-endian (two u32 writes: no BigInt on the inference path). */
function writeU64(out: Buffer, v: number, o: number): number {
  out.writeUInt32LE(v % 0x1_0000_0000, o);
  return out.writeUInt32LE(Math.floor(v / 0x1_0000_0000), o + 4);
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
