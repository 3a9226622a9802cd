import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32c';

function bytewise(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let j = 0; j < 8; j++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('crc32c', () => {
  it('matches the RFC 3720 check value for "123456789"', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });
  it('matches the RFC 3720 test vectors (32 zero bytes, 32 0xff bytes)', () => {
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
  });
  it('agrees with a bit-at-a-time reference on every length up to 100 and continues across chunks', () => {
    const data = new Uint8Array(100).map((_, i) => (i * 37 + 11) & 0xff);
    for (let n = 0; n <= data.length; n++) {
      const part = data.subarray(0, n);
      expect(crc32c(part)).toBe(bytewise(part));
      const split = n >> 1;
      expect(crc32c(part, crc32c(part.subarray(0, split)), split)).toBe(bytewise(part));
    }
  });
});
