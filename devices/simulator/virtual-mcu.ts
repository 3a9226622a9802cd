import { TypedEmitter } from '../../sdk/link/emitter';
import { FramedLink, type LinkStats } from '../../sdk/link/framed-link';
import { encodeFrame, MAX_PAYLOAD } from '../../sdk/link/framing';
import {
  type ActuatorDescriptor,
  ActuatorKind,
  encodeLinkMessage,
  type HelloInfo,
  type LinkBody,
  type LinkMessage,
  NackReason,
  PROTOCOL_VERSION,
  SampleFormat,
  type SensorDescriptor,
} from '../../sdk/link/messages';
import type { Transport } from '../../sdk/link/transport';
import { applyChannelFaults, type ChannelFaults, seededRandom } from '../../sdk/testing/memory-transport';

/** Sensor ids of the virtual MCU. */
export const SIM_SENSORS = { MIC: 1, IMU: 2 } as const;
/** Actuator ids of the virtual MCU. */
export const SIM_ACTUATORS = { LED: 1, RELAY: 2 } as const;

export interface VirtualMcuOptions {
  transport: Transport;
  firmwareName?: string;
  firmwareVersion?: string;
  /** What the firmware claims in Hello (default PROTOCOL_VERSION; set another to test refusal). */
  protocolVersion?: number;
  uniqueId?: Uint8Array;
  /** Largest payload the device accepts (its Hello's max_rx_payload; default MAX_PAYLOAD). */
  maxRxPayload?: number;
  /** 16 kHz mono audio the microphone "hears", looped; false: no microphone. Default: none streamed until given. */
  audio?: Int16Array | false;
  /** Samples per audio batch (default 512 = 32 ms at 16 kHz). */
  audioWindow?: number;
  /** IMU (6 channels: accel xyz, gyro xyz) sample rate; 0 or false: no IMU (default 100 Hz). */
  imuHz?: number | false;
  /** IMU samples per batch (default 10). */
  imuBatch?: number;
  /** Stream on timers once started (default true); false: call {@link VirtualMcu.emitAudioWindow} / emitImuBatch. */
  autoStream?: boolean;
  /** Time factor for the streams (default 1 = real time; 2 = twice as fast). */
  speed?: number;
  /** Faults on what the device sends (bit errors, garbage bursts). */
  faults?: ChannelFaults;
  seed?: number;
  /** Reopen the transport after it was lost, every this many ms (default 0: do not). */
  reopenEveryMs?: number;
}

export interface VirtualMcuEvents {
  [event: string]: unknown[];
  /** The host set an actuator (after the Ack was sent). */
  actuator: [change: { id: number; name: string; value: number; durationMs: number }];
  /** Every message the device received. */
  message: [msg: LinkMessage];
  /** The device (re)opened its transport and said Hello with seq 0. */
  boot: [];
}

const ACTUATORS: ActuatorDescriptor[] = [
  { id: SIM_ACTUATORS.LED, name: 'led', kind: ActuatorKind.LED },
  { id: SIM_ACTUATORS.RELAY, name: 'relay', kind: ActuatorKind.RELAY },
];

/**
 * A virtual microcontroller speaking the link protocol on a transport: it says Hello (also
 * unasked, with seq 0, when it boots), streams a microphone (audio from a WAV file or generated)
 * and an IMU, drives an LED and a relay on Command with Ack/Nack, answers Ping, and can misbehave
 * on purpose: bit errors and garbage bursts, stalls, disconnects, reboots.
 */
export class VirtualMcu extends TypedEmitter<VirtualMcuEvents> {
  readonly transport: Transport;
  readonly #link: FramedLink;
  readonly #o: Required<Omit<VirtualMcuOptions, 'transport' | 'audio' | 'faults' | 'imuHz'>> & {
    audio: Int16Array | false;
    imuHz: number;
  };
  #faults: ChannelFaults;
  readonly #random: () => number;
  readonly #state = new Map<number, number>();
  #timers: ReturnType<typeof setInterval>[] = [];
  #reopenTimer?: ReturnType<typeof setInterval>;
  #stalledUntil = 0;
  #running = false;
  #audioPos = 0;
  #imuN = 0;
  #sentBatches = 0;

  constructor(options: VirtualMcuOptions) {
    super();
    this.transport = options.transport;
    this.#o = {
      firmwareName: options.firmwareName ?? 'ew-sim',
      firmwareVersion: options.firmwareVersion ?? '1.0.0',
      protocolVersion: options.protocolVersion ?? PROTOCOL_VERSION,
      uniqueId: options.uniqueId ?? Uint8Array.from([0x53, 0x49, 0x4d, 0x00, 0x00, 0x00, 0x00, 0x01]),
      maxRxPayload: options.maxRxPayload ?? MAX_PAYLOAD,
      audio: options.audio ?? false,
      audioWindow: options.audioWindow ?? 512,
      imuHz: options.imuHz === false ? 0 : (options.imuHz ?? 100),
      imuBatch: options.imuBatch ?? 10,
      autoStream: options.autoStream ?? true,
      speed: options.speed ?? 1,
      seed: options.seed ?? 1,
      reopenEveryMs: options.reopenEveryMs ?? 0,
    };
    this.#faults = { ...(options.faults ?? {}) };
    this.#random = seededRandom(this.#o.seed);
    this.#link = new FramedLink(this.transport, { maxPayload: this.#o.maxRxPayload });
    this.#link.on('message', (msg) => this.#onMessage(msg));
    this.#link.on('malformed', () => this.#send({ seq: 0, body: { type: 'log', level: 2, text: 'malformed frame' } }));
    this.transport.on('close', (err) => {
      if (err && this.#running && this.#o.reopenEveryMs > 0) this.#scheduleReopen();
    });
  }

  /** The Hello this device sends. */
  get hello(): HelloInfo {
    const sensors: SensorDescriptor[] = [];
    if (this.#o.audio)
      sensors.push({ id: SIM_SENSORS.MIC, name: 'mic', format: SampleFormat.INT16_LE, rateHz: 16000, channels: 1 });
    if (this.#o.imuHz > 0)
      sensors.push({
        id: SIM_SENSORS.IMU,
        name: 'imu',
        format: SampleFormat.INT16_LE,
        rateHz: this.#o.imuHz,
        channels: 6,
      });
    return {
      firmwareName: this.#o.firmwareName,
      firmwareVersion: this.#o.firmwareVersion,
      protocolVersion: this.#o.protocolVersion,
      uniqueId: this.#o.uniqueId,
      sensors,
      actuators: ACTUATORS.map((a) => ({ ...a })),
      maxRxPayload: this.#o.maxRxPayload,
    };
  }

  /** Actuator values by id (0 off, 1 on). */
  get actuators(): ReadonlyMap<number, number> {
    return this.#state;
  }

  get stats(): LinkStats & { batches: number } {
    return { ...this.#link.stats, batches: this.#sentBatches };
  }

  /** Opens the transport (if needed), says Hello with seq 0 (boot) and starts streaming. */
  async start(): Promise<void> {
    this.#running = true;
    if (!this.transport.isOpen) await this.transport.open();
    this.#boot();
  }

  /** Stops streaming and closes the transport; `start()` may follow again. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#stopStreams();
    clearInterval(this.#reopenTimer);
    this.#reopenTimer = undefined;
    await this.transport.close();
  }

  /** Simulates a reset: actuators off, a new boot Hello with seq 0. */
  reboot(): void {
    this.#state.clear();
    this.#boot();
  }

  /** Goes silent (no answers, no streams) for `ms` milliseconds; Infinity until {@link resume}. */
  stall(ms = Number.POSITIVE_INFINITY): void {
    this.#stalledUntil = performance.now() + ms;
  }

  resume(): void {
    this.#stalledUntil = 0;
  }

  /** Replaces the output faults (bit error rate, garbage bursts). */
  setFaults(faults: ChannelFaults): void {
    this.#faults = { ...faults };
  }

  /** Drops the connection from the device side (closes its transport). */
  async disconnect(): Promise<void> {
    this.#stopStreams();
    await this.transport.close();
  }

  /** Sends one audio window now (what the stream timer does every 32 ms). */
  emitAudioWindow(): void {
    const audio = this.#o.audio;
    if (!audio || audio.length === 0) return;
    const n = this.#o.audioWindow;
    const bytes = new Uint8Array(n * 2);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) view.setInt16(i * 2, audio[(this.#audioPos + i) % audio.length]!, true);
    const firstSampleUs = Math.round((this.#audioPos * 1e6) / 16000);
    this.#audioPos += n;
    this.#batch({ type: 'sensorBatch', sensorId: SIM_SENSORS.MIC, firstSampleUs, sampleCount: n, samples: bytes });
  }

  /** Sends one IMU batch now: a slow rotation with a little vibration. */
  emitImuBatch(): void {
    const n = this.#o.imuBatch;
    const bytes = new Uint8Array(n * 12);
    const view = new DataView(bytes.buffer);
    const rate = this.#o.imuHz || 100;
    for (let s = 0; s < n; s++) {
      const t = (this.#imuN + s) / rate;
      const vals = [
        Math.sin(t) * 2000,
        Math.cos(t) * 2000,
        16384 + Math.sin(t * 50) * 100,
        Math.cos(t * 0.5) * 500,
        Math.sin(t * 0.5) * 500,
        Math.sin(t * 0.2) * 100,
      ];
      for (let c = 0; c < 6; c++) view.setInt16((s * 6 + c) * 2, Math.round(vals[c]!), true);
    }
    const firstSampleUs = Math.round((this.#imuN * 1e6) / rate);
    this.#imuN += n;
    this.#batch({ type: 'sensorBatch', sensorId: SIM_SENSORS.IMU, firstSampleUs, sampleCount: n, samples: bytes });
  }

  /** Sends a Log message. */
  log(level: number, text: string): void {
    this.#send({ seq: 0, body: { type: 'log', level, text } });
  }

  #batch(body: LinkBody): void {
    if (this.#send({ seq: 0, body })) this.#sentBatches++;
  }

  #boot(): void {
    this.#send({ seq: 0, body: { type: 'hello', ...this.hello } });
    this.emit('boot');
    this.#startStreams();
  }

  #startStreams(): void {
    this.#stopStreams();
    if (!this.#o.autoStream) return;
    const speed = this.#o.speed;
    if (this.#o.audio)
      this.#timers.push(setInterval(() => this.emitAudioWindow(), ((this.#o.audioWindow / 16000) * 1000) / speed));
    if (this.#o.imuHz > 0)
      this.#timers.push(setInterval(() => this.emitImuBatch(), ((this.#o.imuBatch / this.#o.imuHz) * 1000) / speed));
  }

  #stopStreams(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }

  #scheduleReopen(): void {
    this.#stopStreams();
    if (this.#reopenTimer) return;
    this.#reopenTimer = setInterval(() => {
      if (!this.#running) return;
      this.transport.open().then(
        () => {
          clearInterval(this.#reopenTimer);
          this.#reopenTimer = undefined;
          this.#link.resetReceiver();
          if (this.#running) this.#boot();
        },
        () => undefined,
      );
    }, this.#o.reopenEveryMs);
  }

  get #stalled(): boolean {
    return this.#stalledUntil > performance.now();
  }

  /** Frames and writes a message with the output faults applied; false when nothing was sent. */
  #send(msg: LinkMessage): boolean {
    if (this.#stalled || !this.transport.isOpen) return false;
    let bytes = encodeFrame(encodeLinkMessage(msg), MAX_PAYLOAD);
    if (this.#faults.bitErrorRate || this.#faults.garbageRate || this.#faults.dropRate)
      bytes = applyChannelFaults(bytes, this.#faults, this.#random);
    if (bytes.length === 0) return false;
    this.#link.sendRaw(bytes).catch(() => undefined);
    return true;
  }

  #onMessage(msg: LinkMessage): void {
    if (this.#stalled || !this.#running) return;
    this.emit('message', msg);
    const b = msg.body;
    const nack = (reason: number, detail: string) =>
      this.#send({ seq: msg.seq, body: { type: 'nack', ackSeq: msg.seq, reason, detail } });
    switch (b.type) {
      case 'helloRequest':
        this.#send({ seq: msg.seq, body: { type: 'hello', ...this.hello } });
        return;
      case 'ping':
        this.#send({ seq: msg.seq, body: { type: 'pong', timeUs: b.timeUs } });
        return;
      case 'command': {
        const act = ACTUATORS.find((a) => a.id === b.actuatorId);
        if (!act) return void nack(NackReason.UNKNOWN_ACTUATOR, `no actuator ${b.actuatorId}`);
        if (b.value !== 0 && b.value !== 1) return void nack(NackReason.BAD_VALUE, `${act.name} takes 0 or 1`);
        this.#state.set(act.id, b.value);
        this.#send({ seq: msg.seq, body: { type: 'ack', ackSeq: msg.seq } });
        this.emit('actuator', { id: act.id, name: act.name, value: b.value, durationMs: b.durationMs });
        return;
      }
      case 'result':
        this.#send({ seq: msg.seq, body: { type: 'ack', ackSeq: msg.seq } });
        return;
      case 'ack':
      case 'nack':
      case 'pong':
        return;
      default:
        if (msg.seq !== 0) nack(NackReason.UNSUPPORTED, `device does not take ${b.type}`);
    }
  }
}
