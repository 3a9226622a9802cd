import { EdgewardenError } from '../errors';
import type { LinkCode } from '../link/codes';
import { TypedEmitter } from '../link/emitter';
import type { Transport, TransportEvents } from '../link/transport';

/** Faults applied to the bytes travelling in one direction of a {@link MemoryLink}. */
export interface ChannelFaults {
  /** Probability that each bit is flipped. */
  bitErrorRate?: number;
  /** Probability, per write, that a burst of random bytes is inserted before it. */
  garbageRate?: number;
  /** Largest garbage burst in bytes (default 32). */
  garbageMaxBytes?: number;
  /** Probability that a whole write is lost. */
  dropRate?: number;
  /** True: nothing gets through (a stalled or silent peer). */
  stalled?: boolean;
}

export type Direction = 'hostToDevice' | 'deviceToHost';

/** A seeded PRNG (mulberry32), so fault patterns reproduce. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const linkError = (code: LinkCode, message: string) => new EdgewardenError<LinkCode>(code, message);

/**
 * Returns `data` as it arrives through a faulty channel: maybe dropped, bits flipped at the given
 * rate, a garbage burst in front. Never modifies `data`.
 */
export function applyChannelFaults(data: Uint8Array, f: ChannelFaults, rnd: () => number): Uint8Array {
  if (f.stalled) return new Uint8Array(0);
  if (f.dropRate && rnd() < f.dropRate) return new Uint8Array(0);
  let out = Uint8Array.from(data);
  if (f.bitErrorRate) {
    const p = f.bitErrorRate;
    for (let bit = Math.floor(Math.log(1 - rnd()) / Math.log(1 - p)); bit < out.length * 8; ) {
      out[bit >> 3]! ^= 1 << (bit & 7);
      bit += 1 + Math.floor(Math.log(1 - rnd()) / Math.log(1 - p));
    }
  }
  if (f.garbageRate && rnd() < f.garbageRate) {
    const n = 1 + Math.floor(rnd() * (f.garbageMaxBytes ?? 32));
    const joined = new Uint8Array(n + out.length);
    for (let i = 0; i < n; i++) joined[i] = Math.floor(rnd() * 256);
    joined.set(out, n);
    out = joined;
  }
  return out;
}

/** One end of a {@link MemoryLink}. */
export class MemoryTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly description: string;
  #open = false;
  /** @internal */ peer!: MemoryTransport;
  readonly #link: MemoryLink;
  readonly #direction: Direction;

  /** @internal use {@link createMemoryTransportPair} */
  constructor(link: MemoryLink, name: string, direction: Direction) {
    super();
    this.#link = link;
    this.description = `memory:${name}`;
    this.#direction = direction;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  async open(): Promise<void> {
    if (!this.#link.plugged) throw linkError('EW_LINK_OPEN', `${this.description} is unplugged`);
    this.#open = true;
  }

  async write(data: Uint8Array): Promise<void> {
    if (!this.#open) throw linkError('EW_LINK_NOT_OPEN', `${this.description} is not open`);
    const bytes = this.#link.applyFaults(this.#direction, data);
    if (bytes.length === 0) return;
    // Asynchronous like a real port, but on the microtask queue so that fake timers do not hold it.
    queueMicrotask(() => {
      if (this.peer.#open) this.peer.emit('data', bytes);
    });
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    this.emit('close', undefined);
  }

  /** @internal */
  lose(): void {
    if (!this.#open) return;
    this.#open = false;
    this.emit('close', linkError('EW_LINK_DISCONNECTED', `${this.description} was unplugged`));
  }
}

/**
 * A cable with two ends, `host` and `device`, in memory: what one end writes the other receives,
 * with optional faults per direction. `unplug()` closes both ends with an error and makes `open()`
 * fail until `replug()`.
 */
export class MemoryLink {
  readonly host: MemoryTransport;
  readonly device: MemoryTransport;
  #plugged = true;
  readonly #faults: Record<Direction, ChannelFaults> = { hostToDevice: {}, deviceToHost: {} };
  readonly #random: () => number;
  /** Bytes written per direction, before faults. */
  readonly written: Record<Direction, number> = { hostToDevice: 0, deviceToHost: 0 };

  constructor(options: { seed?: number; faults?: Partial<Record<Direction, ChannelFaults>> } = {}) {
    this.#random = seededRandom(options.seed ?? 1);
    this.host = new MemoryTransport(this, 'host', 'hostToDevice');
    this.device = new MemoryTransport(this, 'device', 'deviceToHost');
    this.host.peer = this.device;
    this.device.peer = this.host;
    for (const d of ['hostToDevice', 'deviceToHost'] as const) this.setFaults(d, options.faults?.[d] ?? {});
  }

  get plugged(): boolean {
    return this.#plugged;
  }

  /** Replaces the faults of one direction. */
  setFaults(direction: Direction, faults: ChannelFaults): void {
    this.#faults[direction] = { ...faults };
  }

  /** Silences one direction (or both) until called again with `false`. */
  stall(direction: Direction | 'both', stalled = true): void {
    for (const d of direction === 'both' ? (['hostToDevice', 'deviceToHost'] as const) : [direction])
      this.#faults[d] = { ...this.#faults[d], stalled };
  }

  /** Pulls the cable: both ends close with an error; open() fails until {@link replug}. */
  unplug(): void {
    this.#plugged = false;
    this.host.lose();
    this.device.lose();
  }

  replug(): void {
    this.#plugged = true;
  }

  /** @internal */
  applyFaults(direction: Direction, data: Uint8Array): Uint8Array {
    this.written[direction] += data.length;
    return applyChannelFaults(data, this.#faults[direction], this.#random);
  }
}

/** Creates an in-memory transport pair for tests: `const { host, device } = createMemoryTransportPair()`. */
export function createMemoryTransportPair(
  options: { seed?: number; faults?: Partial<Record<Direction, ChannelFaults>> } = {},
): MemoryLink {
  return new MemoryLink(options);
}
