// The fault-tolerance claim of the framing, measured: 100,000 frames through a channel with a
// 1e-3 bit error rate, garbage bursts and oversize frames. A frame counts as intact when none of
// its bytes (delimiter included) was hit and the byte before it on the wire is 0x00 (the receiver
// is in sync at its first byte). Then exactly the intact frames must come out, in order.
import { describe, expect, it } from 'vitest';
import { crc32c } from '../util/crc32c';
import { cobsEncode } from './cobs';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES, MAX_PAYLOAD } from './framing';

/** mulberry32: a small seeded PRNG, so a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function oversizeFrame(rnd: () => number): Uint8Array {
  const payload = Uint8Array.from({ length: MAX_PAYLOAD + 1 + Math.floor(rnd() * 2000) }, () =>
    Math.floor(rnd() * 256),
  );
  const raw = new Uint8Array(payload.length + 4);
  raw.set(payload);
  new DataView(raw.buffer).setUint32(payload.length, crc32c(payload), true);
  return Uint8Array.from([...cobsEncode(raw), 0]);
}

describe('framing through a noisy channel', () => {
  it('100,000 frames, BER 1e-3, garbage bursts, oversize frames: 0 corrupt delivered, every intact one delivered, buffer ≤ 1 frame', () => {
    const rnd = prng(0x5eed);
    const N = 100_000;
    const payloads: Uint8Array[] = [];
    const parts: Uint8Array[] = [];
    const spans: { start: number; end: number; index: number }[] = []; // end: offset of the delimiter
    let offset = 0;
    let oversizeSent = 0;
    let garbageBursts = 0;
    const put = (b: Uint8Array) => {
      parts.push(b);
      offset += b.length;
    };
    for (let i = 0; i < N; i++) {
      if (rnd() < 1 / 300) {
        garbageBursts++;
        put(Uint8Array.from({ length: 1 + Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)));
      }
      if (rnd() < 1 / 500) {
        oversizeSent++;
        put(oversizeFrame(rnd));
      }
      const len = rnd() < 0.02 ? Math.floor(rnd() * (MAX_PAYLOAD + 1)) : Math.floor(rnd() * 160);
      // Mostly small values so that zeros (COBS codes) are frequent.
      const p = Uint8Array.from({ length: len }, () => (rnd() < 0.2 ? 0 : Math.floor(rnd() * 256)));
      payloads.push(p);
      const f = encodeFrame(p);
      spans.push({ start: offset, end: offset + f.length - 1, index: i });
      put(f);
    }
    const wire = new Uint8Array(offset);
    let o = 0;
    for (const p of parts) {
      wire.set(p, o);
      o += p.length;
    }

    // Bit errors at rate 1e-3: geometric gaps between flipped bits.
    const ber = 1e-3;
    const hit = new Uint8Array(wire.length);
    let flips = 0;
    for (let bit = Math.floor(Math.log(1 - rnd()) / Math.log(1 - ber)); bit < wire.length * 8; ) {
      wire[bit >> 3]! ^= 1 << (bit & 7);
      hit[bit >> 3] = 1;
      flips++;
      bit += 1 + Math.floor(Math.log(1 - rnd()) / Math.log(1 - ber));
    }

    const expected: number[] = [];
    for (const s of spans) {
      if (s.start > 0 && wire[s.start - 1] !== 0) continue;
      if (hit.subarray(s.start, s.end + 1).includes(1)) continue;
      expected.push(s.index);
    }

    const delivered: Uint8Array[] = [];
    const dec = new FrameDecoder((p) => delivered.push(p));
    let maxHeld = 0;
    for (let i = 0; i < wire.length; ) {
      const n = 1 + Math.floor(rnd() * 4096);
      dec.push(wire.subarray(i, i + n));
      maxHeld = Math.max(maxHeld, dec.buffered);
      i += n;
    }

    const stats = dec.stats;
    expect(flips).toBeGreaterThan(wire.length * 8 * ber * 0.9);
    expect(garbageBursts).toBeGreaterThan(200);
    expect(oversizeSent).toBeGreaterThan(100);
    // Far fewer frames survive than were sent, so the check below is not vacuous.
    expect(expected.length).toBeLessThan(N * 0.8);
    expect(expected.length).toBeGreaterThan(N * 0.2);
    expect(delivered.length).toBe(expected.length);
    let corrupt = 0;
    for (let k = 0; k < delivered.length; k++) {
      if (Buffer.compare(delivered[k]!, payloads[expected[k]!]!) !== 0) corrupt++;
    }
    expect(corrupt).toBe(0);
    expect(stats.frames).toBe(expected.length);
    expect(stats.crcErrors + stats.cobsErrors).toBeGreaterThan(N * 0.2);
    expect(stats.oversize).toBeGreaterThan(0);
    expect(maxHeld).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(stats.bufferHighWater).toBeLessThanOrEqual(MAX_FRAME_BYTES);
  });
});
