// The example's audio: generated here (speech-like and silence), never downloaded.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSilence, generateSpeechLike } from '../../devices/simulator/audio-gen';
import { writeWav } from '../../devices/simulator/wav';

/** Silence, then speech, then silence: what the LED should follow. */
export function quietSpeechQuiet(seconds = { quiet: 1.5, speech: 3 }): {
  samples: Int16Array;
  speechFrom: number;
  speechTo: number;
} {
  const a = generateSilence({ seconds: seconds.quiet, seed: 1 });
  const s = generateSpeechLike({ seconds: seconds.speech, seed: 5 });
  const b = generateSilence({ seconds: seconds.quiet, seed: 2 });
  const samples = new Int16Array(a.length + s.length + b.length);
  samples.set(a);
  samples.set(s, a.length);
  samples.set(b, a.length + s.length);
  return { samples, speechFrom: a.length, speechTo: a.length + s.length };
}

/** Writes speech.wav, silence.wav and mixed.wav (16 kHz mono PCM16) into `dir`; returns their paths. */
export function writeExampleWavs(dir: string): { speech: string; silence: string; mixed: string } {
  const paths = { speech: join(dir, 'speech.wav'), silence: join(dir, 'silence.wav'), mixed: join(dir, 'mixed.wav') };
  writeFileSync(paths.speech, writeWav(generateSpeechLike({ seconds: 5, seed: 5 }), 16000));
  writeFileSync(paths.silence, writeWav(generateSilence({ seconds: 5 }), 16000));
  writeFileSync(paths.mixed, writeWav(quietSpeechQuiet().samples, 16000));
  return paths;
}
