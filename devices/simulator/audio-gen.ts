// Speech-like and silence audio made here, so tests and examples need no downloaded recordings.
// Speech-like: a glottal pulse train with a falling pitch contour, shaped by three formant
// resonators per vowel (Klatt-style cascade), with fricative noise between syllables, in words
// and phrases separated by pauses. It is not language, but it has the spectral and temporal
// structure a voice activity detector listens for.
import { seededRandom } from '../../sdk/testing/memory-transport';

const VOWELS: [number, number, number][] = [
  [730, 1090, 2440], // a
  [530, 1840, 2480], // e
  [270, 2290, 3010], // i
  [570, 840, 2410], // o
  [300, 870, 2240], // u
  [660, 1720, 2410], // ae
];

/** A two-pole resonator (formant) at `freq` Hz with bandwidth `bw` Hz. */
function resonator(freq: number, bw: number, rate: number) {
  const c = -Math.exp((-2 * Math.PI * bw) / rate);
  const b = 2 * Math.exp((-Math.PI * bw) / rate) * Math.cos((2 * Math.PI * freq) / rate);
  const a = 1 - b - c;
  let y1 = 0;
  let y2 = 0;
  return (x: number) => {
    const y = a * x + b * y1 + c * y2;
    y2 = y1;
    y1 = y;
    return y;
  };
}

export interface SpeechOptions {
  seconds: number;
  sampleRate?: number;
  seed?: number;
  /** Peak level as a fraction of full scale (default 0.5). */
  level?: number;
  /** Seconds of near-silence before the speech starts (default 0). */
  leadSilence?: number;
}

/** Speech-like mono int16 audio (see the file comment). Deterministic for a seed. */
export function generateSpeechLike(options: SpeechOptions): Int16Array {
  const rate = options.sampleRate ?? 16000;
  const rnd = seededRandom(options.seed ?? 7);
  const total = Math.floor(options.seconds * rate);
  const out = new Float64Array(total);
  let t = Math.floor((options.leadSilence ?? 0) * rate);
  let phase = 0;
  while (t < total) {
    // A phrase of 2-5 words with a pitch that starts high and declines.
    const words = 2 + Math.floor(rnd() * 4);
    let f0 = 120 + rnd() * 100;
    for (let w = 0; w < words && t < total; w++) {
      const syllables = 1 + Math.floor(rnd() * 3);
      for (let s = 0; s < syllables && t < total; s++) {
        // Consonant: a short burst of shaped noise.
        const cLen = Math.floor((0.03 + rnd() * 0.05) * rate);
        const fric = resonator(3500 + rnd() * 2500, 1500, rate);
        for (let i = 0; i < cLen && t < total; i++, t++) out[t] = fric((rnd() * 2 - 1) * 0.15);
        // Vowel: glottal pulses through three formants.
        const [F1, F2, F3] = VOWELS[Math.floor(rnd() * VOWELS.length)]!;
        const r1 = resonator(F1 * (0.9 + rnd() * 0.2), 80, rate);
        const r2 = resonator(F2 * (0.9 + rnd() * 0.2), 100, rate);
        const r3 = resonator(F3, 150, rate);
        const vLen = Math.floor((0.12 + rnd() * 0.15) * rate);
        let tilt = 0;
        for (let i = 0; i < vLen && t < total; i++, t++) {
          const pitch = f0 * (1 + 0.03 * Math.sin((2 * Math.PI * 5 * i) / rate)) * (1 + (rnd() - 0.5) * 0.01);
          phase += pitch / rate;
          // Asymmetric glottal pulse: a quick rise and a sharp closure once per period.
          const ph = phase % 1;
          const pulse = ph < 0.6 ? 0.5 - 0.5 * Math.cos((Math.PI * ph) / 0.6) : Math.cos((Math.PI * (ph - 0.6)) / 0.8);
          const src = pulse - 0.3 + (rnd() - 0.5) * 0.05;
          tilt = 0.7 * tilt + 0.3 * src;
          const env = Math.min(1, i / (0.02 * rate), (vLen - i) / (0.03 * rate));
          out[t] = r3(r2(r1(tilt))) * env;
        }
        f0 *= 0.97;
      }
      // A short gap between words.
      t += Math.floor((0.04 + rnd() * 0.1) * rate);
    }
    // A longer pause between phrases.
    t += Math.floor((0.25 + rnd() * 0.35) * rate);
  }
  return normalise(out, options.level ?? 0.5, rnd);
}

/** Near-silence: a quiet noise floor (about -60 dBFS) with a faint hum, like a microphone in a quiet room. */
export function generateSilence(options: { seconds: number; sampleRate?: number; seed?: number }): Int16Array {
  const rate = options.sampleRate ?? 16000;
  const rnd = seededRandom(options.seed ?? 11);
  const out = new Int16Array(Math.floor(options.seconds * rate));
  for (let i = 0; i < out.length; i++)
    out[i] = Math.round((rnd() - 0.5) * 60 + 8 * Math.sin((2 * Math.PI * 50 * i) / rate));
  return out;
}

function normalise(x: Float64Array, level: number, rnd: () => number): Int16Array {
  let peak = 0;
  for (const v of x) peak = Math.max(peak, Math.abs(v));
  const g = peak > 0 ? (level * 32767) / peak : 0;
  const out = new Int16Array(x.length);
  // A faint noise floor everywhere, as a real microphone has.
  for (let i = 0; i < x.length; i++) out[i] = Math.round(x[i]! * g + (rnd() - 0.5) * 40);
  return out;
}
