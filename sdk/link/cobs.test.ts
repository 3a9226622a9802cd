import { describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { cobsDecode, cobsDecodeInto, cobsEncode, cobsMaxEncodedLength } from './cobs';

const h = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const range = (from: number, to: number) => Uint8Array.from({ length: to - from + 1 }, (_, i) => from + i);
const cat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

// Vectors from the COBS paper / the usual reference table (encoded form without the 0x00 delimiter).
const VECTORS: [string, Uint8Array, Uint8Array][] = [
  ['empty', new Uint8Array(0), h('01')],
  ['00', h('00'), h('0101')],
  ['00 00', h('0000'), h('010101')],
  ['00 11 00', h('001100'), h('01021101')],
  ['11 22 00 33', h('11220033'), h('0311220233')],
  ['11 22 33 44', h('11223344'), h('0511223344')],
  ['11 00 00 00', h('11000000'), h('0211010101')],
  ['01..FE (254 bytes)', range(1, 0xfe), cat(h('ff'), range(1, 0xfe))],
  ['00 01..FE (255 bytes)', cat(h('00'), range(1, 0xfe)), cat(h('01ff'), range(1, 0xfe))],
  ['01..FF (255 bytes)', range(1, 0xff), cat(h('ff'), range(1, 0xfe), h('02ff'))],
  ['02..FF 00 (255 bytes)', cat(range(2, 0xff), h('00')), cat(h('ff'), range(2, 0xff), h('0101'))],
  ['03..FF 00 01 (255 bytes)', cat(range(3, 0xff), h('0001')), cat(h('fe'), range(3, 0xff), h('0201'))],
];

describe('COBS', () => {
  it.each(VECTORS)('encodes %s byte by byte', (_name, raw, encoded) => {
    expect(hex(cobsEncode(raw))).toBe(hex(encoded));
    expect(hex(cobsDecode(encoded))).toBe(hex(raw));
  });

  it('never emits 0x00 and stays within the overhead bound; round-trips every length up to 1100', () => {
    let seed = 1;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 24;
    };
    for (let n = 0; n <= 1100; n++) {
      const data = Uint8Array.from({ length: n }, () => (rnd() < 40 ? 0 : rnd()));
      const enc = cobsEncode(data);
      expect(enc.includes(0)).toBe(false);
      expect(enc.length).toBeLessThanOrEqual(cobsMaxEncodedLength(n));
      expect(hex(cobsDecode(enc))).toBe(hex(data));
    }
  });

  it('accepts the non-canonical trailing 0x01 after a full block', () => {
    expect(hex(cobsDecode(cat(h('ff'), range(1, 0xfe), h('01'))))).toBe(hex(range(1, 0xfe)));
  });

  it('rejects a code past the end or a zero inside the block with EW_LINK_COBS, never writing out of bounds', () => {
    for (const bad of [h('05112233'), h('021100'), h('00'), h('ff01')]) {
      let caught: unknown;
      try {
        cobsDecode(bad);
      } catch (e) {
        caught = e;
      }
      expect(isEdgewardenError(caught, 'EW_LINK_COBS')).toBe(true);
    }
    const small = new Uint8Array(2);
    expect(cobsDecodeInto(small, h('0411223344'))).toBe(-1);
  });
});
