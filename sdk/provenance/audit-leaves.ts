import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { EdgewardenError } from '../errors';
import { ENTRY_KIND, readFrame, segmentName } from './audit-format';
import { envelopePayloadOfType, PAYLOAD_TYPES } from './dsse';
import { leafHash } from './merkle';
import { readChainFields } from './record';

// The audit log's Merkle tree keeps its lower levels only for its recent blocks of 64 records
// (MerkleTree.spill): a root or proof that needs a hash inside an older block reads that block's
// records back from the segment files through this reader, which knows where each block starts.
// That costs 16 bytes of memory per 64 records instead of 64 bytes per record; the tree checks what
// is read back against the block's own hash, which it keeps.

/** Levels the audit log's tree keeps only for its recent blocks: blocks of 2^6 = 64 records. */
export const SPILL_LEVELS = 6;
const WIDTH = 2 ** SPILL_LEVELS;
/** Bytes read from a segment at a time (a frame larger than this is read whole). */
const WINDOW = 64 * 1024;
const RECORD_TYPE = new Uint8Array(Buffer.from(PAYLOAD_TYPES.record, 'utf8'));

function unreadable(message: string, cause?: unknown): EdgewardenError {
  return new EdgewardenError('EW_PROVENANCE_AUDIT_IO', message, cause === undefined ? {} : { cause });
}

/** Where the records of each block of 64 start in the segment files; reads their leaf hashes back. */
export class LeafReader {
  #firstBlock = 0;
  #seg: number[] = [];
  #off: number[] = [];
  /** Called before each read: the log writes out what it still buffers. */
  beforeRead: (() => void) | undefined;

  constructor(readonly dir: string) {}

  /** A reader with the block positions a resume point saved. */
  static restore(dir: string, firstBlock: number, seg: number[], off: number[]): LeafReader {
    const r = new LeafReader(dir);
    r.#firstBlock = firstBlock;
    r.#seg = seg;
    r.#off = off;
    return r;
  }

  /** The block positions, for a resume point. */
  positions(): { firstBlock: number; seg: readonly number[]; off: readonly number[] } {
    return { firstBlock: this.#firstBlock, seg: this.#seg, off: this.#off };
  }

  /** Notes that record `index` is the frame at `offset` of segment `segNo` (kept when it opens a block). */
  note(index: number, segNo: number, offset: number): void {
    const b = Math.floor(index / WIDTH);
    if (this.#seg.length === 0) this.#firstBlock = b;
    else if (b !== this.#firstBlock + this.#seg.length) return;
    this.#seg.push(segNo);
    this.#off.push(offset);
  }

  /** Retention removed the segments before `segNo`, whose first record is `base`. */
  rebase(base: number, segNo: number): void {
    const b = Math.floor(base / WIDTH);
    const drop = Math.min(this.#seg.length, Math.max(0, b - this.#firstBlock));
    this.#seg.splice(0, drop);
    this.#off.splice(0, drop);
    this.#firstBlock = b;
    // The block of the base may have started in a removed segment: it is read from the kept one's start.
    if (this.#seg.length === 0) {
      this.#seg.push(segNo);
      this.#off.push(0);
    } else {
      this.#seg[0] = segNo;
      this.#off[0] = 0;
    }
  }

  /** The leaf hashes of records [from, from + count) as `count` × 32 bytes (a LeafSource). */
  readonly read = (from: number, count: number): Uint8Array => {
    this.beforeRead?.();
    const b = Math.floor(from / WIDTH) - this.#firstBlock;
    if (b < 0 || b >= this.#seg.length) throw unreadable(`no segment position is known for record ${from}`);
    const out = new Uint8Array(count * 32);
    let segNo = this.#seg[b] as number;
    let pos = this.#off[b] as number;
    let next = from;
    while (next < from + count) {
      const path = join(this.dir, segmentName(segNo));
      let fd: number;
      try {
        fd = openSync(path, 'r');
      } catch (cause) {
        throw unreadable(`cannot read records ${next}..${from + count - 1} back from ${path}`, cause);
      }
      try {
        const size = fstatSync(fd).size;
        while (pos < size && next < from + count) {
          let buf = readAt(fd, pos, Math.min(WINDOW, size - pos));
          let at = 0;
          // A frame longer than the window is read whole.
          const frameLen = buf.length >= 4 ? buf.readUInt32LE(0) + 8 : 0;
          if (frameLen > buf.length && frameLen <= size - pos) buf = readAt(fd, pos, frameLen);
          while (at < buf.length && next < from + count) {
            const fr = readFrame(buf, at);
            if (!fr.ok) {
              if (fr.why === 'incomplete' && at > 0) break; // the rest comes with the next window
              throw unreadable(`record ${next} cannot be read back: ${path} at byte ${pos + at} (${fr.why})`);
            }
            next = this.take(fr.body, next, from, out, path);
            at = fr.next;
          }
          pos += at;
        }
      } finally {
        closeSync(fd);
      }
      segNo++;
      pos = 0;
    }
    return out;
  };

  /** Takes the leaf of one entry body when it is record `next`; returns the next record wanted. */
  private take(body: Uint8Array, next: number, from: number, out: Uint8Array, path: string): number {
    const kind = body[0];
    if (kind !== ENTRY_KIND.record && kind !== ENTRY_KIND.signedRecord) return next;
    const content = body.subarray(1);
    const record = kind === ENTRY_KIND.record ? content : envelopePayloadOfType(content, RECORD_TYPE);
    const chain = record ? readChainFields(record) : undefined;
    if (!record || !chain) throw unreadable(`an entry of ${path} does not decode as a record`);
    if (chain.index < next) return next;
    if (chain.index !== next) throw unreadable(`${path}: expected record ${next}, found record ${chain.index}`);
    out.set(leafHash(record), (next - from) * 32);
    return next + 1;
  }
}

function readAt(fd: number, pos: number, len: number): Buffer {
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}
