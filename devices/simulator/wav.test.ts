import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../../sdk/errors';
import { generateSilence, generateSpeechLike } from './audio-gen';
import { readWav, toMono, writeWav } from './wav';

function header(format: number, channels: number, rate: number, bits: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(44 + data.length);
  const v = new DataView(out.buffer);
  out.set(new TextEncoder().encode('RIFF'), 0);
  v.setUint32(4, 36 + data.length, true);
  out.set(new TextEncoder().encode('WAVEfmt '), 8);
  v.setUint32(16, 16, true);
  v.setUint16(20, format, true);
  v.setUint16(22, channels, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, (rate * channels * bits) / 8, true);
  v.setUint16(32, (channels * bits) / 8, true);
  v.setUint16(34, bits, true);
  out.set(new TextEncoder().encode('data'), 36);
  v.setUint32(40, data.length, true);
  out.set(data, 44);
  return out;
}

describe('WAV', () => {
  it('round-trips 16-bit PCM exactly', () => {
    const s = Int16Array.from([0, 1, -1, 32767, -32768, 1234]);
    const w = readWav(writeWav(s, 16000));
    expect(w).toEqual({ sampleRate: 16000, channels: 1, samples: s });
  });

  it('converts 8-bit, 24-bit, 32-bit int and float32 to int16', () => {
    expect([...readWav(header(1, 1, 8000, 8, Uint8Array.from([128, 255, 0]))).samples]).toEqual([0, 127 << 8, -32768]);
    expect([...readWav(header(1, 1, 8000, 24, Uint8Array.from([0, 0, 0x80, 0xff, 0xff, 0x7f]))).samples]).toEqual([
      -32768, 32767,
    ]);
    const f = new Uint8Array(new Float32Array([0.5, -1, 2]).buffer);
    expect([...readWav(header(3, 1, 8000, 32, f)).samples]).toEqual([16384, -32767, 32767]);
  });

  it('takes the first channel and resamples to 16 kHz', () => {
    const stereo = Int16Array.from([100, -1, 200, -1, 300, -1, 400, -1]);
    expect([...toMono({ sampleRate: 16000, channels: 2, samples: stereo }, 16000)]).toEqual([100, 200, 300, 400]);
    expect(toMono({ sampleRate: 32000, channels: 1, samples: new Int16Array(64) }, 16000).length).toBe(32);
  });

  it('types every bad file as EW_LINK_WAV and never crashes on hostile bytes', () => {
    for (const bad of [
      new Uint8Array(0),
      new TextEncoder().encode('RIFF....WAVE'),
      header(2, 1, 8000, 4, new Uint8Array(4)),
    ]) {
      let caught: unknown;
      try {
        readWav(bad);
      } catch (e) {
        caught = e;
      }
      expect(isEdgewardenError(caught, 'EW_LINK_WAV')).toBe(true);
    }
    const base = writeWav(Int16Array.from([1, 2, 3]), 16000);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: base.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const b = base.slice();
        b[at] = value;
        try {
          readWav(b);
        } catch (e) {
          expect(isEdgewardenError(e, 'EW_LINK_WAV')).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('generated audio', () => {
  it('is deterministic per seed; speech is loud with pauses, silence is a quiet floor', () => {
    const a = generateSpeechLike({ seconds: 2, seed: 9 });
    expect(a).toEqual(generateSpeechLike({ seconds: 2, seed: 9 }));
    const rms = (x: Int16Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
    // 32 ms windows: speech has loud ones and (between phrases) quiet ones.
    const windows = Array.from({ length: Math.floor(a.length / 512) }, (_, i) =>
      rms(a.subarray(i * 512, i * 512 + 512)),
    );
    expect(Math.max(...windows)).toBeGreaterThan(2000);
    expect(Math.min(...windows)).toBeLessThan(100);
    expect(rms(generateSilence({ seconds: 1 }))).toBeLessThan(40);
  });
});
