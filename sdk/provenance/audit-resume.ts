import { createHash, hash } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { sameBytes } from '../util/bytes';
import { LeafReader } from './audit-leaves';
import type { ScannedCheckpoint, SegmentDigest } from './audit-scan';
import { decodeCheckpoint } from './checkpoint';
import { decodeEnvelope, type Envelope, encodeEnvelope, PAYLOAD_TYPES } from './dsse';
import { MerkleTree } from './merkle';

// The resume point of an audit log (README "Audit log format"): what opening the log would rebuild
// from its first bytes, saved when the log is closed or rolls to a new segment, so that the next open
// reads and SHA-256s those bytes instead of parsing every entry again (which grows with the log's
// whole history, 25-40 µs per record in a process that has just started). Any change to a covered byte
// makes its segment digest differ, and the open falls back to the full scan, which then reports the
// exact index of the damage. The tree's levels are restored as saved (nothing is hashed again) and
// its root checked against the latest signed checkpoint. The file is a cache: deleting it only makes
// the next open slower.
//
//   file     = magic "EWRESUM3" ‖ body ‖ sha256(magic ‖ body)
//   body     = u32 segmentCount ‖ segment* ‖ bytes deviceKeyid
//              ‖ bytes latestCheckpoint (binary DSSE envelope, empty: none) ‖ u32 recoveries
//              ‖ u64 size ‖ u64 base ‖ u32 spill ‖ u32 edgeCount ‖ 32 edge*
//              ‖ u32 levelCount ‖ bytes level* ‖ u64 firstBlock ‖ u32 blockCount ‖ block*
//              (level k: the kept hashes of the complete 2^k-leaf subtrees, see MerkleTree.prune and
//              MerkleTree.spill; edge: MerkleTree.edgeBytes(base) when base > 0)
//   segment  = bytes name ‖ u64 firstIndex ‖ u64 coveredBytes ‖ 32 sha256(covered bytes)
//   block    = u32 segmentNumber ‖ u64 offset   (where the records of one block of 64 start)
//   bytes    = u32 length ‖ length bytes;  all integers little-endian

/** File name of the resume point inside the audit directory. */
export const RESUME_FILE = 'RESUME';
const MAGIC = Buffer.from('EWRESUM3', 'latin1');

/** The state an open restores instead of scanning the covered bytes. */
export interface ResumePoint {
  /** The covered prefix of the log, in segment order (the last one may have grown since). */
  segments: SegmentDigest[];
  tree: MerkleTree;
  /** The tree's source for the blocks it spilled. */
  leaves: LeafReader;
  lastLeafHash: Uint8Array;
  deviceKeyid: Uint8Array | undefined;
  latest: ScannedCheckpoint | undefined;
  recoveries: number;
}

/** The fields {@link writeResume} saves (the latest checkpoint as an envelope). */
export interface ResumeState {
  segments: readonly SegmentDigest[];
  tree: MerkleTree;
  leaves: LeafReader;
  deviceKeyid: Uint8Array | undefined;
  latest: Envelope | undefined;
  recoveries: number;
}

class Writer {
  private parts: Uint8Array[] = [];
  u32(v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v, 0);
    this.parts.push(b);
  }
  u64(v: number): void {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(BigInt(v), 0);
    this.parts.push(b);
  }
  raw(b: Uint8Array): void {
    this.parts.push(b);
  }
  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.parts.push(b);
  }
  /** Writes magic, parts and checksum to `path` piece by piece (the tree levels are not copied). */
  writeTo(path: string): void {
    const fd = openSync(path, 'w', 0o600);
    try {
      const h = createHash('sha256');
      for (const part of [MAGIC, ...this.parts]) {
        h.update(part);
        writeAll(fd, part);
      }
      writeAll(fd, h.digest());
    } finally {
      closeSync(fd);
    }
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off);
}

/** Thrown inside the reader only; any shortfall or oddity makes the file unusable. */
class Unusable extends Error {}

class Reader {
  pos = MAGIC.length;
  constructor(
    private readonly b: Buffer,
    private readonly end: number,
  ) {}
  private need(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw new Unusable('short');
  }
  u32(): number {
    this.need(4);
    const v = this.b.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.b.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Unusable('u64');
    return Number(v);
  }
  raw(n: number): Uint8Array {
    this.need(n);
    const v = new Uint8Array(this.b.subarray(this.pos, this.pos + n));
    this.pos += n;
    return v;
  }
  bytes(): Uint8Array {
    return this.raw(this.u32());
  }
  /** Like {@link bytes}, as a view into the file's buffer (for what is copied again anyway). */
  view(): Uint8Array {
    const n = this.u32();
    this.need(n);
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
}

/**
 * Saves the resume point (a temporary file, then a rename: a crash leaves the old file or the new,
 * never half of one). Errors are swallowed: without the file, the next open scans the whole log.
 */
export function writeResume(dir: string, s: ResumeState): void {
  const w = new Writer();
  w.u32(s.segments.length);
  for (const seg of s.segments) {
    w.bytes(Buffer.from(seg.name, 'utf8'));
    w.u64(seg.first);
    w.u64(seg.bytes);
    w.raw(seg.sha256);
  }
  w.bytes(s.deviceKeyid ?? new Uint8Array(0));
  w.bytes(s.latest ? encodeEnvelope(s.latest) : new Uint8Array(0));
  w.u32(s.recoveries);
  const t = s.tree;
  w.u64(t.size);
  w.u64(t.base);
  w.u32(t.spilled);
  const edge = t.base > 0 && t.spilled > 0 ? t.edgeBytes(t.base) : [];
  w.u32(edge.length);
  for (const e of edge) w.raw(e);
  const levels = t.levelBytes();
  w.u32(levels.length);
  for (const l of levels) w.bytes(l);
  const at = s.leaves.positions();
  w.u64(at.firstBlock);
  w.u32(at.seg.length);
  for (let i = 0; i < at.seg.length; i++) {
    w.u32(at.seg[i] as number);
    w.u64(at.off[i] as number);
  }
  const tmp = join(dir, `${RESUME_FILE}.tmp`);
  try {
    w.writeTo(tmp);
    renameSync(tmp, join(dir, RESUME_FILE));
  } catch {
    try {
      unlinkSync(tmp);
    } catch {}
  }
}

/**
 * Reads the resume point, or undefined when there is none or it is unusable (bad magic or
 * checksum, impossible sizes, a tree that does not match its latest checkpoint). Never throws.
 * The covered segment bytes are checked by the scan that uses it.
 */
export function readResume(dir: string): ResumePoint | undefined {
  let b: Buffer;
  try {
    b = readFileSync(join(dir, RESUME_FILE));
  } catch {
    return undefined;
  }
  const end = b.length - 32;
  if (end < MAGIC.length || !b.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  if (!hash('sha256', b.subarray(0, end), 'buffer').equals(b.subarray(end))) return undefined;
  try {
    const r = new Reader(b, end);
    const segments: SegmentDigest[] = [];
    const count = r.u32();
    for (let i = 0; i < count; i++) {
      const name = Buffer.from(r.bytes()).toString('utf8');
      const first = r.u64();
      segments.push({ name, first, bytes: r.u64(), sha256: r.raw(32) });
    }
    const device = r.bytes();
    const cpBytes = r.bytes();
    const recoveries = r.u32();
    const size = r.u64();
    const base = r.u64();
    const spill = r.u32();
    const edgeCount = r.u32();
    if (edgeCount > 64) return undefined;
    const edge: Uint8Array[] = [];
    for (let i = 0; i < edgeCount; i++) edge.push(r.raw(32));
    const levelCount = r.u32();
    if (levelCount > 64) return undefined;
    const levels: Uint8Array[] = [];
    for (let i = 0; i < levelCount; i++) levels.push(r.view());
    const firstBlock = r.u64();
    const blocks = r.u32();
    if (blocks * 12 > end - r.pos) return undefined;
    const seg: number[] = [];
    const off: number[] = [];
    for (let i = 0; i < blocks; i++) {
      seg.push(r.u32());
      off.push(r.u64());
    }
    if (r.pos !== end) return undefined;
    const leaves = LeafReader.restore(dir, firstBlock, seg, off);
    const tree = MerkleTree.fromLevelBytes(
      levels,
      base,
      spill > 0 ? { levels: spill, size, source: leaves.read, edge } : undefined,
    );
    if (tree.size !== size) return undefined;
    let latest: ScannedCheckpoint | undefined;
    if (cpBytes.length > 0) {
      const envelope = decodeEnvelope(cpBytes);
      if (envelope.payloadType !== PAYLOAD_TYPES.checkpoint) return undefined;
      const fields = decodeCheckpoint(envelope.payload);
      // The signed checkpoint vouches for the restored tree up to its size (one older than the base
      // cannot: the open's scan checks the next one).
      if (fields.treeSize > tree.size) return undefined;
      if (fields.treeSize >= base && !sameBytes(tree.root(fields.treeSize), fields.rootHash)) return undefined;
      latest = { envelope, fields };
    }
    return {
      segments,
      tree,
      leaves,
      lastLeafHash: tree.size > 0 ? tree.leaf(tree.size - 1) : new Uint8Array(0),
      deviceKeyid: device.length > 0 ? device : undefined,
      latest,
      recoveries,
    };
  } catch {
    return undefined;
  }
}
