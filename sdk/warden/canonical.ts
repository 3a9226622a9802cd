import type { TensorData, TensorMap } from '../engine/tensor';
import { ONNX_DTYPE } from '../provenance/tensor-digest';

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The canonical byte stream of DESIGN.md's tensor digest (the exact bytes `tensorDigest` hashes),
 * written into one fresh, transferable ArrayBuffer. This is the one copy the warden makes of an
 * inference's tensors: the application may reuse its buffers at once, and the copy moves to the
 * digest worker without a second copy. SHA-256 (or HMAC with the salt) of it equals `tensorDigest`.
 */
export function canonicalTensorBytes(tensors: TensorMap): ArrayBuffer {
  const names = Object.keys(tensors).map((n) => ({ n, b: Buffer.from(n, 'utf8') }));
  names.sort((a, b) => Buffer.compare(a.b, b.b));
  const parts: { name: Buffer; type: number; dims: readonly number[]; bytes: Uint8Array[]; len: number }[] = [];
  let total = 0;
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
      const d = t.data as Exclude<TensorData, string[]>;
      bytes = [leBytes(d)];
    }
    let len = 0;
    for (const x of bytes) len += x.length;
    parts.push({ name: b, type: ONNX_DTYPE[t.type], dims: t.dims, bytes, len });
    total += 4 + b.length + 1 + 4 + 8 * t.dims.length + 8 + len;
  }
  const out = Buffer.allocUnsafeSlow(total);
  let o = 0;
  for (const p of parts) {
    o = out.writeUInt32LE(p.name.length, o);
    o += p.name.copy(out, o);
    o = out.writeUInt8(p.type, o);
    o = out.writeUInt32LE(p.dims.length, o);
    for (const d of p.dims) o = out.writeBigUInt64LE(BigInt(d), o);
    o = out.writeBigUInt64LE(BigInt(p.len), o);
    for (const x of p.bytes) {
      out.set(x, o);
      o += x.length;
    }
  }
  // allocUnsafeSlow gives a Buffer that owns its whole ArrayBuffer, so it can be transferred.
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
