import { EventEmitter } from 'node:events';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgewardenError } from '../errors';
import { encodeEnvelope, PAYLOAD_TYPES, signEnvelope } from '../provenance/dsse';
import { deviceIdOf } from '../provenance/keys';
import type { Signer } from '../provenance/signer';
import { type Clock, SYSTEM_CLOCK } from '../util/clock';
import { SYSTEM_TIMERS, type Timers } from './backoff';
import { u8 } from './bytes';
import { type DeviceCommand, decodeDeviceCommand, decodeReceipt, type Receipt } from './control';
import {
  buildHeartbeat,
  decodeHeartbeat,
  type HeartbeatInput,
  reduceForShare,
  SHARE_LEVELS,
  type ShareLevel,
} from './heartbeat';

/** Higher = sees less. */
const SHARE_RANK: Record<ShareLevel, number> = { full: 0, summary: 1, none: 2 };

import { type LifecycleFields, signLifecycle } from './lifecycle';
import { createMqttClient, type MqttClient, type MqttClientOptions, type MqttMessage } from './mqtt-client';
import { Outbox, type OutboxEntry, type OutboxOptions, type OutboxRecovery } from './outbox';
import type { Publisher, PublisherStats } from './publisher';
import { TokenBucket } from './token-bucket';
import { deviceTopic } from './topics';

/** Options of {@link MqttPublisher.start}. */
export interface MqttPublisherOptions {
  url: string;
  /** Names this broker in stats and its outbox folder; default host-port of the URL. */
  name?: string;
  signer: Signer;
  fleet: string;
  /** Identifies this boot; default 16 random bytes chosen by Telemetry. */
  bootId: Uint8Array;
  /** This broker's folder: outbox log, lock, bd_seq state. */
  dir: string;
  /** What this broker may see (default full). */
  share?: ShareLevel;
  /** A heartbeat leaves the outbox on the collector's receipt (default true) or, when false, on PUBACK. */
  receipts?: boolean;
  /** Connection options (TLS, credentials, protocol version, client id, backoff, ...). */
  mqtt?: Omit<MqttClientOptions, 'will' | 'timers'>;
  outbox?: Omit<OutboxOptions, 'timers'>;
  /** Drain pacing: at most `ratePerS` heartbeats a second after a burst of `burst` (defaults 20, 20). */
  drain?: { ratePerS?: number; burst?: number };
  /** Re-send what was PUBACKed but not receipted after this long without receipt progress (default 30 s). */
  receiptTimeoutMs?: number;
  /** Most unacknowledged publishes at once (default 16). */
  maxInflight?: number;
  clock?: Clock;
  timers?: Timers;
}

/** Events of {@link MqttPublisher}. */
export interface MqttPublisherEvents {
  connect: [{ bdSeq: number }];
  close: [];
  receipt: [Receipt];
  command: [DeviceCommand];
  error: [EdgewardenError];
}

/** `host-port` of a broker URL, safe as a folder name. */
export function brokerName(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}-${u.port || (u.protocol === 'mqtts:' ? '8883' : '1883')}`.replace(/[^A-Za-z0-9_.-]/g, '_');
  } catch (cause) {
    throw new EdgewardenError('EW_TELEMETRY_OPTIONS', `broker URL ${JSON.stringify(url)} does not parse`, { cause });
  }
}

/**
 * Publishes heartbeats to one MQTT broker through its own durable outbox. Per connection: bumps
 * and persists bd_seq, registers a pre-signed death as the will (retained), publishes a signed birth
 * (retained), then drains the outbox in seq order at a bounded rate (older entries marked
 * historical). Subscribes to its `receipt` (cumulative stored_seq → entries leave the outbox) and
 * `cmd` (rebirth, backfill) topics. Reconnects with backoff; what was not receipted is re-sent.
 */
export class MqttPublisher extends EventEmitter<MqttPublisherEvents> implements Publisher {
  readonly name: string;
  private _share: ShareLevel;
  readonly deviceId: string;
  readonly outbox: Outbox;
  readonly client: MqttClient;
  private readonly o: MqttPublisherOptions;
  private readonly keyid: Uint8Array;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly bucket: TokenBucket;
  private readonly receipts: boolean;
  private readonly topics: { hb: string; birth: string; death: string; receipt: string; cmd: string };
  private bdSeq: number;
  private birth: Uint8Array | undefined;
  private epoch = 0;
  private live = false;
  /** Next seq to send on this connection; everything below it was sent (or is gone). */
  private cursor = 0;
  private inflight = 0;
  private chain: Promise<void> = Promise.resolve();
  private pumpTimer: unknown;
  private receiptTimer: unknown;
  private _sent = 0;
  private _lastReceipt = 0;
  private closed = false;

  private constructor(o: MqttPublisherOptions, outbox: Outbox, bdSeq: number) {
    super();
    this.on('error', () => {});
    this.o = o;
    this.name = o.name ?? brokerName(o.url);
    this._share = o.share ?? 'full';
    this.keyid = u8(o.signer.keyId);
    this.deviceId = deviceIdOf(this.keyid);
    this.outbox = outbox;
    this.bdSeq = bdSeq;
    this.clock = o.clock ?? SYSTEM_CLOCK;
    this.timers = o.timers ?? SYSTEM_TIMERS;
    this.receipts = o.receipts ?? true;
    this.bucket = new TokenBucket(o.drain?.ratePerS ?? 20, o.drain?.burst ?? 20, () => this.clock.now());
    const t = (k: Parameters<typeof deviceTopic>[2]) => deviceTopic(o.fleet, this.deviceId, k);
    this.topics = { hb: t('hb'), birth: t('birth'), death: t('death'), receipt: t('receipt'), cmd: t('cmd') };
    this.client = createMqttClient(o.url, {
      clientId: `ew-${this.deviceId}`,
      ...o.mqtt,
      timers: this.timers,
      will: () => this.prepareConnection(),
    });
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => this.onClose());
    this.client.on('message', (m) => this.onMessage(m));
    this.client.on('error', (e) => this.emit('error', e));
    void this.client.subscribe([this.topics.receipt, this.topics.cmd]);
  }

  /** Opens this broker's outbox and starts connecting in the background. */
  static async start(o: MqttPublisherOptions): Promise<MqttPublisher> {
    if (o.share !== undefined && !['full', 'summary', 'none'].includes(o.share)) {
      throw new EdgewardenError('EW_TELEMETRY_OPTIONS', `share must be full, summary or none, not ${o.share}`);
    }
    brokerName(o.url);
    const outbox = await Outbox.open(o.dir, { ...o.outbox, ...(o.timers ? { timers: o.timers } : {}) });
    let bdSeq = 0;
    try {
      const state = JSON.parse(readFileSync(join(o.dir, 'state.json'), 'utf8')) as { bdSeq?: unknown };
      if (Number.isSafeInteger(state.bdSeq)) bdSeq = state.bdSeq as number;
    } catch {
      // First start, or a state file cut by a crash: bd_seq restarts from 0 and the collector sees a new birth.
    }
    return new MqttPublisher(o, outbox, bdSeq);
  }

  /** What this broker may see. */
  get share(): ShareLevel {
    return this._share;
  }

  /**
   * Changes what this broker may see (a new policy). Applies to heartbeats queued before too: each
   * is reduced again when sent, so a tighter level takes effect at once (a looser one cannot restore
   * what was already removed).
   */
  setShare(level: ShareLevel): void {
    if (!SHARE_LEVELS.includes(level)) {
      throw new EdgewardenError('EW_TELEMETRY_OPTIONS', `share must be full, summary or none, not ${level}`);
    }
    this._share = level;
  }

  /** What the outbox repaired when it was opened. */
  get recovery(): OutboxRecovery {
    return this.outbox.recovery;
  }

  /** bd_seq of the current (or last) connection. */
  get currentBdSeq(): number {
    return this.bdSeq;
  }

  async publish(input: HeartbeatInput): Promise<void> {
    if (this.closed) throw new EdgewardenError('EW_TELEMETRY_CLOSED', 'publisher closed');
    const reduced = reduceForShare(input, this._share);
    this.outbox.put(input.seq, input.timeUnixMs, ({ depth, dropped }) =>
      buildHeartbeat({ ...reduced, bdSeq: this.bdSeq, outboxDepth: depth, dropped, historical: false }),
    );
    this.pump();
  }

  stats(): PublisherStats {
    return {
      name: this.name,
      share: this._share,
      connected: this.live,
      outboxDepth: this.outbox.depth,
      dropped: this.outbox.dropped,
      lastSeq: this.outbox.lastSeq,
      bdSeq: this.bdSeq,
      lastReceiptSeq: this._lastReceipt,
      sent: this._sent,
    };
  }

  /**
   * Default: publishes a clean death (same bd_seq), disconnects cleanly (the broker drops the will)
   * and closes the outbox. `abrupt: true` drops the socket instead, so the broker fires the will.
   */
  async close(o: { abrupt?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    if (!o.abrupt && this.live) {
      try {
        const death = await this.lifecycle('death', true);
        await withTimeout(
          this.client.publish(this.topics.death, death, { qos: 1, retain: true }),
          o.timeoutMs ?? 2000,
          this.timers,
        );
      } catch {
        // Best effort: the will covers a goodbye that could not be sent.
      }
    }
    await this.client.end({ abrupt: o.abrupt ?? false });
    this.live = false;
    this.outbox.close();
  }

  private lifecycle(kind: LifecycleFields['kind'], clean = false): Promise<Uint8Array> {
    return signLifecycle(this.o.signer, {
      kind,
      deviceKeyid: this.keyid,
      fleet: this.o.fleet,
      bdSeq: this.bdSeq,
      timeUnixMs: this.clock.now(),
      bootId: this.o.bootId,
      clean,
      // A birth names the key, so a collector with trust on first use can enroll the device.
      ...(kind === 'birth' ? { publicKey: this.o.signer.publicKey } : {}),
    }).then(encodeEnvelope);
  }

  /** Called before every connection attempt: a new bd_seq, persisted before the broker can see it. */
  private async prepareConnection() {
    this.bdSeq++;
    const file = join(this.o.dir, 'state.json');
    writeFileSync(`${file}.tmp`, JSON.stringify({ bdSeq: this.bdSeq }), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    this.birth = await this.lifecycle('birth');
    const death = await this.lifecycle('death');
    return { topic: this.topics.death, payload: death, qos: 1 as const, retain: true };
  }

  private onConnect(): void {
    this.epoch++;
    this.inflight = 0;
    this.chain = Promise.resolve();
    const epoch = this.epoch;
    const birth = this.birth!;
    this.client.publish(this.topics.birth, birth, { qos: 1, retain: true }).then(
      () => {
        if (epoch !== this.epoch || this.closed) return;
        this.live = true;
        this.cursor = this.outbox.first()?.seq ?? this.outbox.lastSeq + 1;
        this.emit('connect', { bdSeq: this.bdSeq });
        this.pump();
      },
      () => {
        // The connection went away before the birth was acknowledged; the next connect retries.
      },
    );
  }

  private onClose(): void {
    this.epoch++;
    this.live = false;
    this.inflight = 0;
    this.clearTimers();
    if (!this.closed) this.emit('close');
  }

  private clearTimers(): void {
    if (this.pumpTimer !== undefined) this.timers.clearTimeout(this.pumpTimer);
    if (this.receiptTimer !== undefined) this.timers.clearTimeout(this.receiptTimer);
    this.pumpTimer = undefined;
    this.receiptTimer = undefined;
  }

  private onMessage(m: MqttMessage): void {
    try {
      if (m.topic === this.topics.receipt) {
        const r = decodeReceipt(m.payload);
        // Never acknowledge beyond what was queued: a confused collector must not empty the outbox.
        const upTo = Math.min(r.storedSeq, this.outbox.lastSeq);
        this._lastReceipt = Math.max(this._lastReceipt, r.storedSeq);
        if (upTo > this.outbox.ackedUpTo) this.outbox.ackUpTo(upTo);
        this.emit('receipt', r);
      } else if (m.topic === this.topics.cmd) {
        const c = decodeDeviceCommand(m.payload);
        this.emit('command', c);
        if (c.kind === 'rebirth' && this.live && this.birth) {
          this.client.publish(this.topics.birth, this.birth, { qos: 1, retain: true }).catch(() => {});
        } else if (c.kind === 'backfill') {
          // Go back to the oldest requested entry still held; everything after it is re-sent in order.
          const from = this.outbox.firstAtOrAfter(c.fromSeq);
          if (from && from.seq <= c.toSeq && from.seq < this.cursor) this.cursor = from.seq;
          this.pump();
        }
      }
    } catch (e) {
      if (e instanceof EdgewardenError) this.emit('error', e);
    }
  }

  /** Sends what is due, in seq order, within the in-flight window and the drain rate. */
  private pump(): void {
    if (!this.live || this.closed) return;
    const max = this.o.maxInflight ?? 16;
    while (this.inflight < max) {
      const e = this.outbox.firstAtOrAfter(this.cursor);
      if (!e) return;
      if (!this.bucket.take()) {
        this.pumpTimer ??= this.timers.setTimeout(() => {
          this.pumpTimer = undefined;
          this.pump();
        }, this.bucket.waitMs());
        return;
      }
      this.cursor = e.seq + 1;
      this.send(e);
    }
  }

  private send(e: OutboxEntry): void {
    const epoch = this.epoch;
    const historical = e.seq < this.outbox.lastSeq;
    this.inflight++;
    // Signing may be asynchronous (a hardware signer): chain sends so publishes leave in seq order.
    this.chain = this.chain.then(async () => {
      let bytes: Uint8Array;
      try {
        bytes = await this.sign(e, historical);
      } catch (cause) {
        // An entry that cannot be re-encoded will never get better: drop it, visibly.
        this.outbox.remove(e.seq);
        this.emit('error', new EdgewardenError('EW_TELEMETRY_MALFORMED', `outbox entry ${e.seq} unusable`, { cause }));
        if (epoch === this.epoch) this.inflight--;
        return;
      }
      if (epoch !== this.epoch) return;
      this.client.publish(this.topics.hb, bytes, { qos: 1 }).then(
        () => {
          if (epoch !== this.epoch) return;
          this._sent++;
          this.inflight--;
          if (!this.receipts) this.outbox.remove(e.seq);
          else this.armReceiptTimer();
          this.pump();
        },
        () => {
          // Connection lost: onClose resets, and the next connection re-sends from the oldest entry.
        },
      );
    });
  }

  private async sign(e: OutboxEntry, historical: boolean): Promise<Uint8Array> {
    const hb = decodeHeartbeat(e.payload);
    const level = SHARE_RANK[hb.share] > SHARE_RANK[this._share] ? hb.share : this._share;
    const payload = buildHeartbeat({ ...reduceForShare(hb, level), bdSeq: this.bdSeq, historical });
    return encodeEnvelope(await signEnvelope(this.o.signer, PAYLOAD_TYPES.heartbeat, payload));
  }

  /** No receipt progress for receiptTimeoutMs: go back and re-send everything not yet receipted. */
  private armReceiptTimer(): void {
    if (this.receiptTimer !== undefined || this.closed) return;
    const armedAt = this.outbox.ackedUpTo;
    this.receiptTimer = this.timers.setTimeout(() => {
      this.receiptTimer = undefined;
      if (!this.live) return;
      const first = this.outbox.first();
      if (!first || first.seq >= this.cursor) return;
      if (this.outbox.ackedUpTo === armedAt) {
        this.cursor = first.seq;
        this.pump();
      }
      this.armReceiptTimer();
    }, this.o.receiptTimeoutMs ?? 30_000);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, timers: Timers): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = timers.setTimeout(() => reject(new EdgewardenError('EW_TELEMETRY_NOT_CONNECTED', 'timed out')), ms);
    p.then(
      (v) => {
        timers.clearTimeout(t);
        resolve(v);
      },
      (e) => {
        timers.clearTimeout(t);
        reject(e);
      },
    );
  });
}
