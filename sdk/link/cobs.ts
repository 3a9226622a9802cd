import { EdgewardenError } from '../errors';
import type { LinkCode } from './codes';

/**
 * Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999): removes every 0x00 from a block so
 * that 0x00 can delimit frames. Overhead is at most one byte per 254 bytes plus one.
 *
 * Canonical form (the C firmware produces the same bytes): a run of 254 non-zero bytes ends its
 * block with code 0xFF, and when the data ends right after such a block no trailing 0x01 is
 * written. The decoder accepts both forms.
 */

/** Largest COBS encoding of `n` bytes (without the 0x00 delimiter). */
export function cobsMaxEncodedLength(n: number): number {
  return n === 0 ? 1 : n + Math.ceil(n / 254);
}

/**
 * Encodes `src[start..end)` into `dst` at `offset`; returns the number of bytes written.
 * `dst` must have room for {@link cobsMaxEncodedLength}(end - start) bytes.
 */
export function cobsEncodeInto(dst: Uint8Array, offset: number, src: Uint8Array, start = 0, end = src.length): number {
  let out = offset + 1;
  let codeAt = offset;
  let code = 1;
  for (let i = start; i < end; i++) {
    const b = src[i]!;
    if (b !== 0) {
      dst[out++] = b;
      code++;
    }
    if (b === 0 || code === 0xff) {
      dst[codeAt] = code;
      code = 1;
      codeAt = out;
      // A full block at the very end needs no new code byte (canonical form, see above).
      if (b === 0 || i + 1 < end) out++;
    }
  }
  if (codeAt < out) dst[codeAt] = code;
  return out - offset;
}

/** COBS-encodes `src` (no delimiter). */
export function cobsEncode(src: Uint8Array): Uint8Array {
  const dst = new Uint8Array(cobsMaxEncodedLength(src.length));
  return dst.subarray(0, cobsEncodeInto(dst, 0, src));
}

/**
 * Decodes `src[start..end)` (one COBS block, no 0x00 in it) into `dst` at 0; returns the decoded
 * length, or -1 when the block is not valid COBS (a zero byte, a code past the end, or `dst` too small).
 * Never throws and never writes outside `dst`, whatever the bytes.
 */
export function cobsDecodeInto(dst: Uint8Array, src: Uint8Array, start = 0, end = src.length): number {
  let out = 0;
  let i = start;
  while (i < end) {
    const code = src[i]!;
    if (code === 0) return -1;
    const blockEnd = i + code;
    if (blockEnd > end) return -1;
    const n = code - 1;
    if (out + n > dst.length) return -1;
    for (let j = i + 1; j < blockEnd; j++) {
      const b = src[j]!;
      if (b === 0) return -1;
      dst[out++] = b;
    }
    i = blockEnd;
    if (code !== 0xff && i < end) {
      if (out >= dst.length) return -1;
      dst[out++] = 0;
    }
  }
  return out;
}

/** Decodes one COBS block (no delimiter); throws `EW_LINK_COBS` on invalid input. */
export function cobsDecode(src: Uint8Array): Uint8Array {
  const dst = new Uint8Array(src.length);
  const n = cobsDecodeInto(dst, src);
  if (n < 0)
    throw new EdgewardenError<LinkCode>('EW_LINK_COBS', 'invalid COBS block', { details: { length: src.length } });
  return dst.subarray(0, n);
}
