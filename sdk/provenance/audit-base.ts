import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurably } from '../util/durable-file';
import { SEGMENT_RE } from './audit-format';

// The base of an audit log whose oldest segments retention removed (README "Audit log format"): where
// the kept records start and the Merkle tree's compact range of the removed ones, so that the chain
// and the tree go on exactly as before. Written (temporary file, fsync, rename, fsync of the
// directory) before any segment is deleted, so a crash leaves either the old base with every segment
// it names, or the new base and segments older than it that the next open deletes.
//
// It is not signed. A forged base cannot pass for the real one: the next signed checkpoint's root is
// computed from it and the kept records, and a mismatch is damage at the base's first record. Without
// the file, a log whose first segment starts after record 0 reads as deleted records (damage).
//
//   file  = magic "EWBASE01" ‖ u64 firstIndex ‖ bytes firstSegment ‖ bytes deviceKeyid
//           ‖ u32 levelCount ‖ 32 hash*   (level k: the last complete 2^k-leaf subtree before firstIndex)
//           ‖ sha256(everything before)
//   bytes = u32 length ‖ length bytes;  all integers little-endian

/** File name of the base inside the audit directory. */
export const BASE_FILE = 'BASE';
const MAGIC = Buffer.from('EWBASE01', 'latin1');

/** Where a pruned log starts. */
export interface AuditBase {
  /** Index of the first kept record (the tree's size when the removed segments ended). */
  firstIndex: number;
  /** Name of the first kept segment file. */
  firstSegment: string;
  deviceKeyid: Uint8Array | undefined;
  /** `MerkleTree.edgeBytes(firstIndex)`: one 32-byte hash per level. */
  edge: Uint8Array[];
}

/** Writes the base durably (see the format above). Throws on I/O errors: nothing may be deleted then. */
export function writeBase(dir: string, b: AuditBase): void {
  const name = Buffer.from(b.firstSegment, 'utf8');
  const device = b.deviceKeyid ?? new Uint8Array(0);
  const body = Buffer.alloc(MAGIC.length + 8 + 4 + name.length + 4 + device.length + 4 + 32 * b.edge.length);
  let o = MAGIC.copy(body, 0);
  o = body.writeBigUInt64LE(BigInt(b.firstIndex), o);
  o = body.writeUInt32LE(name.length, o);
  o += name.copy(body, o);
  o = body.writeUInt32LE(device.length, o);
  body.set(device, o);
  o += device.length;
  o = body.writeUInt32LE(b.edge.length, o);
  for (const h of b.edge) {
    body.set(h, o);
    o += 32;
  }
  writeFileDurably(join(dir, BASE_FILE), Buffer.concat([body, hash('sha256', body, 'buffer')]));
}

/**
 * Reads the base: undefined when there is none, or when its magic, checksum or fields are wrong (the
 * log then reads from its first kept segment without it, and the missing records are reported as
 * damage). Never throws.
 */
export function readBase(dir: string): AuditBase | undefined {
  let b: Buffer;
  try {
    b = readFileSync(join(dir, BASE_FILE));
  } catch {
    return undefined;
  }
  const end = b.length - 32;
  if (end < MAGIC.length || !b.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  if (!hash('sha256', b.subarray(0, end), 'buffer').equals(b.subarray(end))) return undefined;
  try {
    let o = MAGIC.length;
    const need = (n: number) => {
      if (o + n > end) throw new RangeError('short');
    };
    need(8);
    const first = b.readBigUInt64LE(o);
    o += 8;
    if (first < 1n || first > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
    const bytes = () => {
      need(4);
      const n = b.readUInt32LE(o);
      o += 4;
      need(n);
      const v = new Uint8Array(b.subarray(o, o + n));
      o += n;
      return v;
    };
    const firstSegment = Buffer.from(bytes()).toString('utf8');
    const device = bytes();
    need(4);
    const levels = b.readUInt32LE(o);
    o += 4;
    if (!SEGMENT_RE.test(firstSegment) || levels > 64 || o + 32 * levels !== end) return undefined;
    const edge: Uint8Array[] = [];
    for (let k = 0; k < levels; k++) edge.push(new Uint8Array(b.subarray(o + 32 * k, o + 32 * k + 32)));
    return {
      firstIndex: Number(first),
      firstSegment,
      deviceKeyid: device.length > 0 ? device : undefined,
      edge,
    };
  } catch {
    return undefined;
  }
}
