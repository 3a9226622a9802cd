import { describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { crc32c } from '../util/crc32c';
import { cobsEncode } from './cobs';
import { decodeFrame, encodeFrame, FrameDecoder, MAX_FRAME_BYTES, MAX_PAYLOAD } from './framing';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const h = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

function collect(maxPayload?: number) {
  const got: Uint8Array[] = [];
  const dec = new FrameDecoder((p) => got.push(p), { maxPayload });
  return { got, dec };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isEdgewardenError(e) ? e.code : 'not-edgewarden';
  }
  return undefined;
}

describe('frames', () => {
  it('encodes COBS(payload ‖ crc32c LE) ‖ 00 byte by byte', () => {
    const payload = h('010203');
    const crc = crc32c(payload);
    const raw = new Uint8Array([1, 2, 3, crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24]);
    expect(hex(encodeFrame(payload))).toBe(`${hex(cobsEncode(raw))}00`);
    // CRC-32C of "123456789" is e3069283 (RFC 3720), so its frame ends 83 92 06 e3 before COBS.
    const nine = new TextEncoder().encode('123456789');
    expect(hex(encodeFrame(nine))).toBe(`0e${hex(nine)}839206e300`);
  });

  it('an empty payload has crc 0 and encodes as 01 01 01 01 01 00', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(hex(encodeFrame(new Uint8Array(0)))).toBe('010101010100');
    expect(hex(decodeFrame(h('010101010100')))).toBe('');
  });

  it('decodes what it encodes up to MAX_PAYLOAD and refuses one byte more', () => {
    const big = new Uint8Array(MAX_PAYLOAD).map((_, i) => (i * 7) & 0xff);
    const frame = encodeFrame(big);
    expect(frame.length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(hex(decodeFrame(frame))).toBe(hex(big));
    expect(codeOf(() => encodeFrame(new Uint8Array(MAX_PAYLOAD + 1)))).toBe('EW_LINK_OVERSIZE');
    expect(MAX_FRAME_BYTES).toBe(1098);
  });

  it('types every bad frame: CRC, short, COBS, oversize', () => {
    const good = encodeFrame(h('0a0b0c'));
    const flipped = good.slice();
    flipped[2] = flipped[2]! ^ 0x01 || 0x80;
    expect(codeOf(() => decodeFrame(flipped))).toBe('EW_LINK_CRC');
    expect(codeOf(() => decodeFrame(h('03111200')))).toBe('EW_LINK_CRC');
    expect(codeOf(() => decodeFrame(h('091100')))).toBe('EW_LINK_COBS');
    expect(codeOf(() => decodeFrame(new Uint8Array(2000).fill(1)))).toBe('EW_LINK_OVERSIZE');
  });
});

describe('FrameDecoder', () => {
  it('delivers frames split at every byte boundary and ignores empty frames', () => {
    const payloads = [h('01'), h('00'), new Uint8Array(300).fill(0x55), h('ff00ff')];
    const stream = Uint8Array.from([0, 0, ...payloads.flatMap((p) => [...encodeFrame(p), 0])]);
    for (const step of [1, 2, 3, 7, 64, stream.length]) {
      const { got, dec } = collect();
      for (let i = 0; i < stream.length; i += step) dec.push(stream.subarray(i, i + step));
      expect(got.map(hex)).toEqual(payloads.map(hex));
      expect(dec.stats).toMatchObject({ frames: 4, crcErrors: 0, cobsErrors: 0, oversize: 0 });
    }
  });

  it('resyncs on 0x00 after garbage and counts what it drops', () => {
    const { got, dec } = collect();
    dec.push(h('1234'));
    dec.push(encodeFrame(h('aa'))); // garbage glued to the front: this frame is lost (CRC or COBS)
    dec.push(encodeFrame(h('bb')));
    expect(got.map(hex)).toEqual(['bb']);
    const s = dec.stats;
    expect(s.crcErrors + s.cobsErrors).toBe(1);
  });

  it('drops an oversize frame without buffering more than one maximum frame, then recovers', () => {
    const { got, dec } = collect();
    const huge = new Uint8Array(5000).fill(0x42);
    for (let i = 0; i < huge.length; i += 100) {
      dec.push(huge.subarray(i, i + 100));
      expect(dec.buffered).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    }
    dec.push(h('00'));
    dec.push(encodeFrame(h('cc')));
    expect(got.map(hex)).toEqual(['cc']);
    expect(dec.stats.oversize).toBe(1);
    expect(dec.stats.bufferHighWater).toBeLessThan(MAX_FRAME_BYTES);
  });

  it('honours a smaller maxPayload: a valid frame above it is counted oversize', () => {
    const { got, dec } = collect(16);
    dec.push(encodeFrame(new Uint8Array(17).fill(1)));
    dec.push(encodeFrame(new Uint8Array(16).fill(1)));
    expect(got.length).toBe(1);
    expect(dec.stats.oversize).toBe(1);
  });
});
