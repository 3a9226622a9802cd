import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgewardenError } from '../errors';
import type { Signer } from '../provenance/signer';
import { type Clock, SYSTEM_CLOCK } from '../util/clock';
import type { Timers } from './backoff';
import { u8 } from './bytes';
import type { HeartbeatInput, ShareLevel } from './heartbeat';
import type { MqttClientOptions } from './mqtt-client';
import { brokerName, MqttPublisher, type MqttPublisherOptions } from './mqtt-publisher';
import type { OutboxOptions } from './outbox';
import type { Publisher, PublisherStats } from './publisher';

/** One broker of the agent configuration. */
export interface BrokerConfig {
  url: string;
  /** Folder name and label; default host-port of the URL. Must be unique. */
  name?: string;
  share?: ShareLevel;
  /** Default true: heartbeats leave the outbox on the collector's receipt, not on PUBACK. */
  receipts?: boolean;
  username?: string;
  password?: string;
  /** TLS material as PEM text (read the files before). */
  ca?: string;
  cert?: string;
  key?: string;
  protocolVersion?: 4 | 5;
  clientId?: string;
}

/** What the agent fills in; Telemetry adds identity, seq and time. */
export type HeartbeatContent = Omit<
  HeartbeatInput,
  | 'deviceKeyid'
  | 'fleet'
  | 'bootId'
  | 'seq'
  | 'bdSeq'
  | 'outboxDepth'
  | 'dropped'
  | 'historical'
  | 'share'
  | 'timeUnixMs'
> & { timeUnixMs?: number };

/** Options of {@link Telemetry.start}. */
export interface TelemetryOptions {
  /** The device's outbox root (`home/outbox`): one folder per broker, and the seq state. */
  dir: string;
  signer: Signer;
  fleet: string;
  /** Default: 16 random bytes per process start. */
  bootId?: Uint8Array;
  brokers: BrokerConfig[];
  outbox?: Omit<OutboxOptions, 'timers'>;
  drain?: { ratePerS?: number; burst?: number };
  receiptTimeoutMs?: number;
  backoff?: MqttClientOptions['backoff'];
  clock?: Clock;
  timers?: Timers;
  /** Extra publishers (a MemoryPublisher in tests). */
  publishers?: Publisher[];
}

/**
 * The device side of telemetry: assigns each heartbeat the next device-wide seq (persisted, and
 * never below what an outbox already holds) and fans it out to every broker, each with its own
 * outbox and privacy level.
 */
export class Telemetry {
  readonly publishers: readonly Publisher[];
  readonly bootId: Uint8Array;
  private readonly o: TelemetryOptions;
  private readonly clock: Clock;
  private seq: number;
  private closed = false;

  private constructor(o: TelemetryOptions, publishers: Publisher[], bootId: Uint8Array, seq: number) {
    this.o = o;
    this.publishers = publishers;
    this.bootId = bootId;
    this.clock = o.clock ?? SYSTEM_CLOCK;
    this.seq = seq;
  }

  /** Opens every broker's outbox and starts connecting (in the background: offline is fine). */
  static async start(o: TelemetryOptions): Promise<Telemetry> {
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    const bootId = o.bootId ?? new Uint8Array(randomBytes(16));
    const names = new Set<string>();
    const publishers: Publisher[] = [];
    try {
      for (const b of o.brokers) {
        const name = b.name ?? brokerName(b.url);
        if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || name === 'seq.json') {
          throw new EdgewardenError('EW_TELEMETRY_OPTIONS', `broker name ${JSON.stringify(name)} is not valid`);
        }
        if (names.has(name)) {
          throw new EdgewardenError('EW_TELEMETRY_OPTIONS', `two brokers are named ${name}: give each a name`);
        }
        names.add(name);
        const mqtt: NonNullable<MqttPublisherOptions['mqtt']> = {};
        for (const k of ['username', 'password', 'ca', 'cert', 'key', 'protocolVersion', 'clientId'] as const) {
          if (b[k] !== undefined) (mqtt as Record<string, unknown>)[k] = b[k];
        }
        if (o.backoff) mqtt.backoff = o.backoff;
        const po: MqttPublisherOptions = {
          url: b.url,
          name,
          signer: o.signer,
          fleet: o.fleet,
          bootId,
          dir: join(o.dir, name),
          share: b.share ?? 'full',
          receipts: b.receipts ?? true,
          mqtt,
        };
        if (o.outbox) po.outbox = o.outbox;
        if (o.drain) po.drain = o.drain;
        if (o.receiptTimeoutMs !== undefined) po.receiptTimeoutMs = o.receiptTimeoutMs;
        if (o.clock) po.clock = o.clock;
        if (o.timers) po.timers = o.timers;
        publishers.push(await MqttPublisher.start(po));
      }
    } catch (e) {
      await Promise.allSettled(publishers.map((p) => p.close()));
      throw e;
    }
    publishers.push(...(o.publishers ?? []));
    let seq = 0;
    try {
      const s = JSON.parse(readFileSync(join(o.dir, 'seq.json'), 'utf8')) as { seq?: unknown };
      if (Number.isSafeInteger(s.seq)) seq = s.seq as number;
    } catch {
      // First start (or a cut state file): the outboxes below still hold the highest seq used.
    }
    for (const p of publishers) seq = Math.max(seq, p.stats().lastSeq);
    return new Telemetry(o, publishers, bootId, seq);
  }

  /** The seq the next heartbeat gets. */
  get nextSeq(): number {
    return this.seq + 1;
  }

  /**
   * Queues one heartbeat on every broker (each reduces it to its share level and records its own
   * outbox depth and drop count in it). Returns the seq it was given. Sending happens in the background.
   */
  async publish(content: HeartbeatContent): Promise<number> {
    if (this.closed) throw new EdgewardenError('EW_TELEMETRY_CLOSED', 'telemetry closed');
    const seq = this.seq + 1;
    this.seq = seq;
    // Each broker's outbox records the highest seq durably with the entry itself; seq.json only
    // matters for a device with no broker, so it is refreshed now and then and on close.
    if (seq % 64 === 1) this.saveSeq();
    const input: HeartbeatInput = {
      ...content,
      deviceKeyid: u8(this.o.signer.keyId),
      fleet: this.o.fleet,
      bootId: this.bootId,
      seq,
      bdSeq: 0,
      timeUnixMs: content.timeUnixMs ?? this.clock.now(),
    };
    const results = await Promise.allSettled(this.publishers.map((p) => p.publish(input)));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return seq;
  }

  /** Changes a broker's privacy level at run time (see MqttPublisher.setShare). */
  setShare(name: string, level: ShareLevel): void {
    const p = this.publishers.find((x) => x.name === name);
    if (!(p instanceof MqttPublisher)) {
      throw new EdgewardenError('EW_TELEMETRY_OPTIONS', `no MQTT broker named ${JSON.stringify(name)}`);
    }
    p.setShare(level);
  }

  /** Per-broker stats (outbox depth and drops go into each broker's next heartbeat). */
  stats(): PublisherStats[] {
    return this.publishers.map((p) => p.stats());
  }

  /** Clean death on every connected broker, then closes every outbox. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.saveSeq();
    await Promise.allSettled(this.publishers.map((p) => p.close()));
  }

  private saveSeq(): void {
    const file = join(this.o.dir, 'seq.json');
    writeFileSync(`${file}.tmp`, JSON.stringify({ seq: this.seq }), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
}
