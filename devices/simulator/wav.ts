import { EdgewardenError } from '../../sdk/errors';
import type { LinkCode } from '../../sdk/link/codes';

/** Decoded audio: interleaved int16 samples. */
export interface WavAudio {
  sampleRate: number;
  channels: number;
  /** Interleaved samples, converted to int16 whatever the file held. */
  samples: Int16Array;
}

const wavError = (message: string) => new EdgewardenError<LinkCode>('EW_LINK_WAV', message);

/**
 * Reads a RIFF/WAVE file: PCM 8, 16, 24 or 32-bit integer, or 32-bit float (also in
 * WAVE_FORMAT_EXTENSIBLE), any channel count; samples come back as int16. Throws `EW_LINK_WAV` for
 * anything else or for truncated or inconsistent headers; never reads out of bounds.
 */
export function readWav(bytes: Uint8Array): WavAudio {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (o: number) => String.fromCharCode(bytes[o]!, bytes[o + 1]!, bytes[o + 2]!, bytes[o + 3]!);
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw wavError('not a RIFF/WAVE file');
  let fmt: { format: number; channels: number; rate: number; bits: number } | undefined;
  let data: Uint8Array | undefined;
  for (let o = 12; o + 8 <= bytes.length; ) {
    const id = tag(o);
    const size = v.getUint32(o + 4, true);
    const body = o + 8;
    if (body + size > bytes.length) {
      // A truncated data chunk (a recording cut short) still holds usable samples.
      if (id !== 'data') throw wavError(`chunk '${id}' runs past the end of the file`);
    }
    const end = Math.min(bytes.length, body + size);
    if (id === 'fmt ') {
      if (size < 16) throw wavError('fmt chunk too short');
      let format = v.getUint16(body, true);
      if (format === 0xfffe && size >= 26) format = v.getUint16(body + 24, true);
      fmt = {
        format,
        channels: v.getUint16(body + 2, true),
        rate: v.getUint32(body + 4, true),
        bits: v.getUint16(body + 14, true),
      };
    } else if (id === 'data') {
      data = bytes.subarray(body, end);
    }
    o = body + size + (size & 1);
  }
  if (!fmt) throw wavError('no fmt chunk');
  if (!data) throw wavError('no data chunk');
  const { format, channels, rate, bits } = fmt;
  if (channels < 1 || channels > 32) throw wavError(`unsupported channel count ${channels}`);
  if (rate < 1 || rate > 1_000_000) throw wavError(`unsupported sample rate ${rate}`);
  const width = bits / 8;
  const supported = (format === 1 && [8, 16, 24, 32].includes(bits)) || (format === 3 && bits === 32);
  if (!supported) throw wavError(`unsupported sample format ${format} with ${bits} bits`);
  const n = Math.floor(data.length / width);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Int16Array(n - (n % channels));
  for (let i = 0; i < out.length; i++) {
    const o = i * width;
    let s: number;
    if (format === 3) s = Math.round(Math.max(-1, Math.min(1, dv.getFloat32(o, true))) * 32767);
    else if (bits === 8) s = (dv.getUint8(o) - 128) << 8;
    else if (bits === 16) s = dv.getInt16(o, true);
    else if (bits === 24) s = ((dv.getUint8(o + 2) << 24) | (dv.getUint8(o + 1) << 16)) >> 16;
    else s = dv.getInt32(o, true) >> 16;
    out[i] = s;
  }
  return { sampleRate: rate, channels, samples: out };
}

/** Writes 16-bit PCM WAV bytes. */
export function writeWav(samples: Int16Array, sampleRate: number, channels = 1): Uint8Array {
  const dataBytes = samples.length * 2;
  const out = new Uint8Array(44 + dataBytes);
  const v = new DataView(out.buffer);
  const put = (o: number, s: string) => {
    for (let i = 0; i < 4; i++) out[o + i] = s.charCodeAt(i);
  };
  put(0, 'RIFF');
  v.setUint32(4, 36 + dataBytes, true);
  put(8, 'WAVE');
  put(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, channels, true);
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * channels * 2, true);
  v.setUint16(32, channels * 2, true);
  v.setUint16(34, 16, true);
  put(36, 'data');
  v.setUint32(40, dataBytes, true);
  for (let i = 0; i < samples.length; i++) v.setInt16(44 + i * 2, samples[i]!, true);
  return out;
}

/** First channel of interleaved audio, linearly resampled to `rate` (what a 16 kHz mono microphone gives). */
export function toMono(audio: WavAudio, rate: number): Int16Array {
  const frames = Math.floor(audio.samples.length / audio.channels);
  const mono = new Int16Array(frames);
  for (let i = 0; i < frames; i++) mono[i] = audio.samples[i * audio.channels]!;
  if (audio.sampleRate === rate) return mono;
  const outLen = Math.floor((frames * rate) / audio.sampleRate);
  const out = new Int16Array(outLen);
  for (let i = 0; i < outLen; i++) {
    const x = (i * audio.sampleRate) / rate;
    const k = Math.floor(x);
    const f = x - k;
    out[i] = Math.round(mono[k]! * (1 - f) + (mono[Math.min(k + 1, frames - 1)] ?? 0) * f);
  }
  return out;
}
