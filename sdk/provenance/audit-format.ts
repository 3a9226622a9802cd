import { crc32c } from '../util/crc32c';

// On-disk format of the audit log (README "Audit log format"):
//   segment file  = entry*
//   entry (frame) = u32le len ‖ body[len] ‖ u32le crc32c(len bytes ‖ body)
//   body          = u8 kind ‖ content
// The CRC covers the length too, so a flipped length bit is caught like any other.

/** What an entry holds. */
export const ENTRY_KIND = {
  /** content = record protobuf bytes (batched mode). */
  record: 1,
  /** content = binary DSSE Envelope whose payload is the record bytes (per-output mode). */
  signedRecord: 2,
  /** content = binary DSSE Envelope of a checkpoint. */
  checkpoint: 3,
  /** content = UTF-8 JSON describing a torn tail that was dropped on open. Not a leaf. */
  recovery: 4,
} as const;

export type EntryKind = (typeof ENTRY_KIND)[keyof typeof ENTRY_KIND];

/** Largest body an entry may have (an envelope is at most 1 MiB). */
export const MAX_ENTRY_BODY = 2 * 1024 * 1024;
/** Bytes a frame adds around its body. */
export const FRAME_OVERHEAD = 8;

/** Segment file name of sequence number `n`: twelve digits and `.seg`. */
export function segmentName(n: number): string {
  return `${String(n).padStart(12, '0')}.seg`;
}

export const SEGMENT_RE = /^(\d{12})\.seg$/;

/** The number in a segment file name (NaN for a name that is not one). */
export function segmentNumber(name: string): number {
  return Number(SEGMENT_RE.exec(name)?.[1] ?? Number.NaN);
}

/** Writes one frame (kind byte + content) into `buf` at `at`; returns the frame length. */
export function writeFrame(buf: Uint8Array, at: number, kind: EntryKind, content: Uint8Array): number {
  const len = 1 + content.length;
  buf[at] = len & 0xff;
  buf[at + 1] = (len >>> 8) & 0xff;
  buf[at + 2] = (len >>> 16) & 0xff;
  buf[at + 3] = (len >>> 24) & 0xff;
  buf[at + 4] = kind;
  buf.set(content, at + 5);
  const end = at + 4 + len;
  const c = crc32c(buf, 0, at, end);
  buf[end] = c & 0xff;
  buf[end + 1] = (c >>> 8) & 0xff;
  buf[end + 2] = (c >>> 16) & 0xff;
  buf[end + 3] = (c >>> 24) & 0xff;
  return len + FRAME_OVERHEAD;
}

/** A standalone frame (tests, and rare entries like recovery events). */
export function encodeFrame(kind: EntryKind, content: Uint8Array): Uint8Array {
  const out = new Uint8Array(content.length + 1 + FRAME_OVERHEAD);
  writeFrame(out, 0, kind, content);
  return out;
}

const u32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

/** Result of reading the frame at `at`: its body, or why there is none. */
export type FrameRead =
  | { ok: true; body: Uint8Array; next: number }
  | { ok: false; why: 'incomplete' | 'length' | 'crc' };

/** Reads and checks the frame at `at` (body is a view, not a copy). */
export function readFrame(buf: Uint8Array, at: number): FrameRead {
  if (buf.length - at < 4) return { ok: false, why: 'incomplete' };
  const len = u32(buf, at);
  if (len === 0 || len > MAX_ENTRY_BODY) return { ok: false, why: 'length' };
  const end = at + 4 + len;
  if (end + 4 > buf.length) return { ok: false, why: 'incomplete' };
  if (crc32c(buf, 0, at, end) !== u32(buf, end)) return { ok: false, why: 'crc' };
  return { ok: true, body: buf.subarray(at + 4, end), next: end + 4 };
}

/**
 * True when some valid frame starts after `from`: then a bad frame at `from` is damage in the
 * middle of the file, not a torn tail (a crash only ever leaves garbage at the very end).
 */
export function validFrameAfter(buf: Uint8Array, from: number): boolean {
  for (let q = from + 1; q + FRAME_OVERHEAD + 1 <= buf.length; q++) {
    const r = readFrame(buf, q);
    if (r.ok) return true;
  }
  return false;
}
