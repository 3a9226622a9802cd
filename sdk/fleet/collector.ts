import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { EdgewardenError } from '../errors';
import { verifyConsistency } from '../provenance/merkle';
import { encodeDeviceCommand, encodeReceipt } from '../telemetry/control';
import type { Heartbeat } from '../telemetry/heartbeat';
import { deviceTopic, fleetFilter } from '../telemetry/topics';
import { type Clock, SYSTEM_CLOCK } from '../util/clock';
import type { RejectCode } from './codes';
import { type ComplianceVerdict, evaluateCompliance, type FleetPolicy } from './compliance';
import { Metrics } from './metrics';
import { type DeviceState, Registry, readEnrollmentDir } from './registry';
import type {
  AlertRecord,
  DeviceRecord,
  HeartbeatRow,
  HeartbeatSummary,
  ModelSummary,
  Store,
  StoredHeartbeat,
} from './store';
import { VerifierPool } from './verifier-pool';
import {
  type CheckpointInfo,
  checkSignatureInline,
  type Rejection,
  type VerifiedHeartbeat,
  type VerifiedLifecycle,
  type VerifiedMessage,
  type VerifyMessageOptions,
  verifyDeviceMessage,
} from './verify-message';

/** The MQTT side the collector needs (telemetry's `MqttClient` is one). */
export interface CollectorMqtt {
  publish(topic: string, payload: Uint8Array, o?: { qos?: 0 | 1; retain?: boolean }): Promise<void>;
  subscribe(filters: string | string[], o?: { qos?: 0 | 1 }): Promise<void>;
  on(event: 'message', fn: (m: { topic: string; payload: Uint8Array }) => void): unknown;
  off(event: 'message', fn: (m: { topic: string; payload: Uint8Array }) => void): unknown;
}

/** Options of {@link Collector}. */
export interface CollectorOptions {
  store: Store;
  /** The MQTT connection; absent: the collector only handles what {@link Collector.handle} is given. */
  mqtt?: CollectorMqtt;
  /** Fleet to serve (default '+': every fleet on the broker). */
  fleet?: string;
  /**
   * Shared-subscription group: with one, the collector subscribes `$share/GROUP/…` so several
   * collectors split the messages. Leave it out on brokers without shared subscriptions (aedes).
   */
  shareGroup?: string;
  /** Enrollment directory: one public key file per device (allowlist). */
  enrollDir?: string;
  /** Trust on first use: a birth that carries its own key enrolls the device as pending. */
  tofu?: boolean;
  /** What the fleet requires (allowed model digests). */
  policy?: FleetPolicy;
  clock?: Clock;
  /** Allowed future skew of signed timestamps (default 5 min). */
  maxSkewMs?: number;
  /** Largest message accepted (default: the largest signed heartbeat, about 68 KB). */
  maxMessageBytes?: number;
  /** A device with no message for this long is offline (default 35 s: three 10 s heartbeats and slack). */
  offlineAfterMs?: number;
  /** Most heartbeats per store transaction (default 2000). */
  batchMaxRows?: number;
  /** How long a seq gap may stay open before the device is asked to backfill it (default 2 s). */
  gapGraceMs?: number;
  /** Backfill requests per gap before it is given up as lost (default 5). */
  gapMaxAsks?: number;
  /** Period of the housekeeping tick (gaps, online/offline); 0 = no timer, call tick() yourself (default 1 s). */
  tickMs?: number;
  /** How often tick() re-reads the fleet for online/offline changes (default 5 s of clock time). */
  onlineSweepMs?: number;
  /** Name in receipts (default a random id). */
  collectorId?: string;
  /** QoS of receipts and commands (default 1). */
  receiptQos?: 0 | 1;
  /**
   * Worker threads for signature verification (default: one less than the CPUs, at most 4; 0 =
   * verify on the main thread).
   */
  verifyThreads?: number;
}

/** What one message came to. */
export type HandleOutcome =
  | { accepted: true; kind: string; deviceId: string }
  | { accepted: false; code: RejectCode | 'duplicate'; message: string; deviceId?: string };

/** A device as the API shows it. */
export interface DeviceView {
  id: string;
  fleet: string | null;
  online: boolean;
  compliance: ComplianceVerdict['state'];
  complianceReasons: string[];
  lastSeq: number | null;
  /** ISO 8601 time of the last accepted message, or null. */
  lastSeen: string | null;
  lastSeenMs: number | null;
  models: ModelSummary[];
  health: HeartbeatSummary['health'] | null;
  board: HeartbeatSummary['board'] | null;
  sdkVersion: string | null;
  pending: boolean;
  historyRewritten: boolean;
  bdSeq: number | null;
  dead: boolean;
  storedSeq: number | null;
  checkpoint: { treeSize: number; rootHash: string } | null;
  outboxDepth: number | null;
  dropped: number | null;
}

/** Events of {@link Collector} (the SSE endpoint forwards them). */
export interface CollectorEvents {
  heartbeat: [{ deviceId: string; fleet: string; seq: number; bdSeq: number; timeMs: number; receivedMs: number }];
  device: [DeviceView];
  alert: [AlertRecord];
  rejected: [{ code: string; topic: string; deviceId?: string; message: string }];
}

interface Pending {
  row: HeartbeatRow;
  resolve(inserted: boolean): void;
  reject(e: unknown): void;
}

interface Gap {
  fleet: string;
  from: number;
  to: number;
  sinceMs: number;
  asks: number;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const REJECTED = 'edgewarden_heartbeats_rejected_total';
const MSG_REJECTED = 'edgewarden_messages_rejected_total';

/**
 * The fleet collector: subscribes to every device's birth, death, heartbeat and checkpoint topics,
 * verifies each envelope against enrolled keys, rejects forgeries, replays, stale and inconsistent
 * messages (each counted under its code), stores heartbeats in batches, sends receipts once they are
 * durable, asks for backfill of seq gaps, and keeps online/offline and compliance per device.
 * Never throws from a message handler.
 */
export class Collector extends EventEmitter<CollectorEvents> {
  readonly metrics = new Metrics();
  readonly registry: Registry;
  readonly collectorId: string;
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly o: CollectorOptions;
  private queue: Pending[] = [];
  private flushing = false;
  private flushScheduled = false;
  private readonly gaps = new Map<string, Gap>();
  private readonly alerted = new Set<string>();
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  private readonly turns = new Map<string, Promise<void>>();
  private readonly pool: VerifierPool | undefined;
  private lastSweepMs = Number.NEGATIVE_INFINITY;
  private readonly onMessage = (m: { topic: string; payload: Uint8Array }) => {
    void this.handle(m.topic, m.payload);
  };

  private constructor(o: CollectorOptions) {
    super();
    this.o = o;
    this.store = o.store;
    this.clock = o.clock ?? SYSTEM_CLOCK;
    this.registry = new Registry(o.store, () => this.clock.now());
    this.collectorId = o.collectorId ?? `collector-${randomBytes(4).toString('hex')}`;
    const threads = o.verifyThreads ?? Math.min(4, Math.max(0, availableParallelism() - 1));
    this.pool = threads > 0 ? new VerifierPool(threads) : undefined;
    const m = this.metrics;
    m.counter('edgewarden_heartbeats_accepted_total', 'Heartbeats verified and stored.');
    m.counter(REJECTED, 'Heartbeat-topic messages rejected, by code.');
    m.counter('edgewarden_messages_accepted_total', 'Device messages accepted, by kind (hb, birth, death, ckpt).');
    m.counter(MSG_REJECTED, 'Device messages rejected, by kind and code.');
    m.counter('edgewarden_receipts_sent_total', 'Receipts published to devices.');
    m.counter('edgewarden_backfill_requests_total', 'Backfill commands published for seq gaps.');
    m.counter('edgewarden_publish_errors_total', 'Receipts or commands that could not be published.');
    m.counter('edgewarden_handler_errors_total', 'Messages whose handling failed (store or internal error), by code.');
    m.counter('edgewarden_store_batches_total', 'Heartbeat batches written to the store.');
    m.counter(
      'edgewarden_checkpoints_unverified_total',
      'Newer checkpoints accepted without a proof from a known one.',
    );
    m.counter('edgewarden_alerts_total', 'Alerts raised, by code.');
    m.gauge('edgewarden_devices_online', 'Devices online (as this collector last evaluated them).', () => {
      let n = 0;
      for (const s of this.registry.all()) if (s.online) n++;
      return n;
    });
    m.gauge('edgewarden_devices_known', 'Devices known to this collector.', () => this.registry.size);
    m.gauge('edgewarden_store_queue', 'Heartbeats verified and waiting for the store.', () => this.queue.length);
  }

  /** Creates a collector: migrates the store, loads devices and enrollment, subscribes. */
  static async start(o: CollectorOptions): Promise<Collector> {
    const c = new Collector(o);
    await o.store.migrate();
    await c.registry.loadAll();
    if (o.enrollDir) {
      for (const k of await readEnrollmentDir(o.enrollDir)) {
        const s = await c.registry.enroll({ deviceId: k.deviceId, publicKey: k.publicKey, status: 'approved' });
        if (s.key?.status === 'pending') await c.approve(k.deviceId);
      }
    }
    if (o.mqtt) {
      o.mqtt.on('message', c.onMessage);
      const fleet = o.fleet ?? '+';
      await o.mqtt.subscribe(
        (['birth', 'death', 'hb', 'ckpt'] as const).map((k) => fleetFilter(fleet, k, o.shareGroup)),
        { qos: 1 },
      );
    }
    const tickMs = o.tickMs ?? 1000;
    if (tickMs > 0) {
      c.timer = setInterval(() => void c.tick(), tickMs);
      c.timer.unref?.();
    }
    return c;
  }

  private get policy(): FleetPolicy {
    return this.o.policy ?? {};
  }

  /**
   * Handles one message from a device topic. Resolves with what became of it; never rejects
   * (a failure is counted under `edgewarden_handler_errors_total`).
   */
  async handle(topic: string, payload: Uint8Array): Promise<HandleOutcome> {
    this.inflight++;
    // Messages of one device are checked in arrival order (a birth before the heartbeat after it);
    // only the wait for the store overlaps, so batches still fill up.
    const dev = topic.split('/')[3] ?? '';
    const prev = this.turns.get(dev);
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    this.turns.set(dev, mine);
    try {
      if (prev) await prev;
      let out: HandleOutcome | { stored: Promise<HandleOutcome> };
      try {
        out = await this.handleInner(topic, payload);
      } finally {
        release();
        if (this.turns.get(dev) === mine) this.turns.delete(dev);
      }
      return 'stored' in out ? await out.stored : out;
    } catch (e) {
      const code = e instanceof EdgewardenError && e.code === 'EW_FLEET_STORE' ? 'EW_FLEET_STORE' : 'EW_FLEET_INTERNAL';
      this.metrics.inc('edgewarden_handler_errors_total', { code });
      return { accepted: false, code: 'EW_FLEET_INTERNAL', message: (e as Error)?.message ?? String(e) };
    } finally {
      if (--this.inflight === 0 && this.queue.length === 0) this.wakeIdle();
    }
  }

  private async handleInner(
    topic: string,
    payload: Uint8Array,
  ): Promise<HandleOutcome | { stored: Promise<HandleOutcome> }> {
    // A device that another collector (or an operator) enrolled is loaded from the store on first sight.
    const parts = topic.split('/');
    if (parts.length === 5 && parts[3] && !this.registry.get(parts[3])?.key) await this.registry.ensure(parts[3]);
    const now = this.clock.now();
    const v = await this.verify(topic, payload, now);
    if (!v.ok) return this.rejected(topic, kindOf(topic), v.code, v.message, v.deviceId);
    if (v.kind === 'birth') return this.onBirth(topic, v, now);
    // Everything but a TOFU birth needs an enrolled key (verifyDeviceMessage guarantees one here).
    const state = this.registry.get(v.deviceId)!;
    if (state.key?.status === 'pending') await this.registry.refreshPending(state);
    const pending = state.key?.status === 'pending';
    if (v.kind === 'hb') {
      if (pending) return this.rejected(topic, v.kind, 'EW_FLEET_PENDING', 'device awaits approval', v.deviceId);
      return this.onHeartbeat(topic, payload, v, state, now);
    }
    if (v.kind === 'ckpt') {
      if (pending) return this.rejected(topic, v.kind, 'EW_FLEET_PENDING', 'device awaits approval', v.deviceId);
      const bad = await this.checkCheckpoint(state, v.checkpoint, undefined, undefined, now);
      if (bad) return this.rejected(topic, v.kind, 'EW_FLEET_CHECKPOINT_INCONSISTENT', bad, v.deviceId);
      return this.accepted('ckpt', v.deviceId);
    }
    // A pending device's death is still recorded: it tells the operator the device went away.
    return this.onDeath(topic, v, state, now);
  }

  /**
   * Runs {@link verifyDeviceMessage}. With a verifier pool, a first pass assumes every signature is
   * good and records them; the pool then checks them off-thread. Only when one fails does a second
   * pass run with the real answers, so its rejection is exactly the one the inline path gives.
   */
  private async verify(topic: string, payload: Uint8Array, now: number): Promise<VerifiedMessage | Rejection> {
    const opts: VerifyMessageOptions = {
      nowMs: now,
      ...(this.o.maxSkewMs !== undefined ? { maxSkewMs: this.o.maxSkewMs } : {}),
      ...(this.o.maxMessageBytes !== undefined ? { maxBytes: this.o.maxMessageBytes } : {}),
      seenCheckpoint: (id) => this.registry.get(id)?.seenCheckpoint,
    };
    const pool = this.pool;
    if (!pool) return verifyDeviceMessage(topic, payload, this.registry.lookup, opts);
    const checks: Promise<boolean>[] = [];
    const first = verifyDeviceMessage(topic, payload, this.registry.lookup, {
      ...opts,
      checkSignature: (key, raw, msg, sig) => {
        checks.push(raw ? pool.verify(raw, msg, sig) : Promise.resolve(checkSignatureInline(key, raw, msg, sig)));
        return true;
      },
    });
    if (checks.length === 0) return first;
    const results = await Promise.all(checks);
    if (results.every(Boolean)) return first;
    let i = 0;
    return verifyDeviceMessage(topic, payload, this.registry.lookup, {
      ...opts,
      checkSignature: () => results[i++] ?? false,
    });
  }

  private async onBirth(topic: string, v: VerifiedLifecycle, now: number): Promise<HandleOutcome> {
    let state = this.registry.get(v.deviceId);
    if (!v.enrolled) {
      if (!this.o.tofu || !v.publicKey) {
        return this.rejected(topic, 'birth', 'EW_FLEET_UNKNOWN_KEY', 'device is not enrolled', v.deviceId);
      }
      state = await this.registry.enroll({
        deviceId: v.deviceId,
        publicKey: v.publicKey,
        status: 'pending',
        fleet: v.fleet,
      });
      await this.alert(v.deviceId, 'device_pending', `new device ${v.deviceId} in fleet ${v.fleet} awaits approval`);
    }
    const l = v.lifecycle;
    const outcome = await this.store.recordBirth({
      deviceId: v.deviceId,
      fleet: v.fleet,
      bdSeq: l.bdSeq,
      timeMs: l.timeUnixMs,
      receivedMs: now,
      bootId: hex(l.bootId),
    });
    if (outcome === 'stale') {
      return this.rejected(
        topic,
        'birth',
        'EW_FLEET_STALE',
        `birth bd_seq ${l.bdSeq} is older than the current one`,
        v.deviceId,
      );
    }
    if (outcome === 'duplicate')
      return { accepted: false, code: 'duplicate', message: 'birth already seen', deviceId: v.deviceId };
    if (state) state.bdSeq = l.bdSeq;
    this.metrics.inc('edgewarden_messages_accepted_total', { kind: 'birth' });
    await this.emitDevice(v.deviceId, true);
    return { accepted: true, kind: 'birth', deviceId: v.deviceId };
  }

  private async onDeath(topic: string, v: VerifiedLifecycle, state: DeviceState, now: number): Promise<HandleOutcome> {
    const l = v.lifecycle;
    const ok = await this.store.recordDeath({ deviceId: v.deviceId, bdSeq: l.bdSeq, clean: l.clean, receivedMs: now });
    if (!ok) {
      return this.rejected(
        topic,
        'death',
        'EW_FLEET_BD_SEQ',
        `death bd_seq ${l.bdSeq} does not match the current birth (${state.bdSeq ?? 'none'})`,
        v.deviceId,
      );
    }
    this.metrics.inc('edgewarden_messages_accepted_total', { kind: 'death' });
    await this.emitDevice(v.deviceId, true);
    return { accepted: true, kind: 'death', deviceId: v.deviceId };
  }

  private async onHeartbeat(
    topic: string,
    payload: Uint8Array,
    v: VerifiedHeartbeat,
    state: DeviceState,
    now: number,
  ): Promise<HandleOutcome | { stored: Promise<HandleOutcome> }> {
    const hb = v.heartbeat;
    if (state.bdSeq !== null && hb.bdSeq < state.bdSeq && !hb.historical) {
      return this.rejected(
        topic,
        'hb',
        'EW_FLEET_STALE',
        `heartbeat signed for bd_seq ${hb.bdSeq}, current birth is ${state.bdSeq}`,
        v.deviceId,
      );
    }
    if (state.storedSeq !== null && hb.seq <= state.storedSeq) {
      this.sendReceipt(v.fleet, v.deviceId, state.storedSeq);
      return this.rejected(topic, 'hb', 'EW_FLEET_REPLAY', `seq ${hb.seq} is already stored`, v.deviceId);
    }
    if (v.checkpoint) {
      const bad = await this.checkCheckpoint(state, v.checkpoint, hb.previousTreeSize, hb.consistencyProof, now);
      if (bad) return this.rejected(topic, 'hb', 'EW_FLEET_CHECKPOINT_INCONSISTENT', bad, v.deviceId);
      state.seenCheckpoint = hb.checkpoint;
    }
    if (hb.bdSeq > (state.bdSeq ?? -1)) state.bdSeq = hb.bdSeq;
    const row: HeartbeatRow = {
      deviceId: v.deviceId,
      fleet: v.fleet,
      bdSeq: hb.bdSeq,
      seq: hb.seq,
      timeMs: hb.timeUnixMs,
      receivedMs: now,
      historical: hb.historical,
      envelope: payload,
      summary: summarize(hb, v.checkpoint),
    };
    const stored = this.enqueue(row).then((inserted) =>
      inserted
        ? this.accepted('hb', v.deviceId)
        : this.rejected(topic, 'hb', 'EW_FLEET_REPLAY', `seq ${hb.seq} is already stored`, v.deviceId),
    );
    return { stored };
  }

  private accepted(kind: string, deviceId: string): HandleOutcome {
    if (kind === 'hb') this.metrics.inc('edgewarden_heartbeats_accepted_total');
    this.metrics.inc('edgewarden_messages_accepted_total', { kind });
    return { accepted: true, kind, deviceId };
  }

  private rejected(topic: string, kind: string, code: RejectCode, message: string, deviceId?: string): HandleOutcome {
    if (kind === 'hb') this.metrics.inc(REJECTED, { code });
    this.metrics.inc(MSG_REJECTED, { kind, code });
    const ev = deviceId === undefined ? { code, topic, message } : { code, topic, message, deviceId };
    this.emit('rejected', ev);
    return deviceId === undefined ? { accepted: false, code, message } : { accepted: false, code, message, deviceId };
  }

  /**
   * Checks a checkpoint against the newest one seen for the device. Returns why it is inconsistent
   * (and flags the device, raises an alert), or undefined when it is consistent or cannot be judged.
   */
  private async checkCheckpoint(
    state: DeviceState,
    cp: CheckpointInfo,
    previousSize: number | undefined,
    proof: Uint8Array[] | undefined,
    now: number,
  ): Promise<string | undefined> {
    const last = state.checkpoint;
    let bad: string | undefined;
    let record = false;
    if (!last) record = true;
    else if (cp.treeSize === last.size) {
      if (Buffer.compare(cp.rootHash, last.root) !== 0) bad = `two different roots for tree size ${cp.treeSize}`;
    } else if (cp.treeSize < last.size) {
      const known = await this.store.checkpointRoot(state.id, cp.treeSize);
      if (known !== undefined && known !== hex(cp.rootHash))
        bad = `a different root for earlier tree size ${cp.treeSize}`;
      record = known === undefined;
    } else {
      // Growth: needs a proof from a checkpoint we know.
      let from: { size: number; root: Uint8Array } | undefined;
      if (previousSize !== undefined && previousSize > 0 && proof && proof.length > 0) {
        if (previousSize === last.size) from = last;
        else {
          const root = await this.store.checkpointRoot(state.id, previousSize);
          if (root !== undefined) from = { size: previousSize, root: Buffer.from(root, 'hex') };
        }
      }
      if (from) {
        if (!verifyConsistency(from.size, cp.treeSize, from.root, cp.rootHash, proof ?? [])) {
          bad = `tree size ${cp.treeSize} is not consistent with tree size ${from.size}`;
        }
      } else this.metrics.inc('edgewarden_checkpoints_unverified_total');
      record = !bad;
    }
    if (bad) {
      await this.store.flagHistoryRewritten(state.id);
      await this.alert(state.id, 'history_rewritten', `device ${state.id}: ${bad}`);
      await this.emitDevice(state.id, true);
      return bad;
    }
    if (record) {
      if (!state.checkpoint || cp.treeSize > state.checkpoint.size)
        state.checkpoint = { size: cp.treeSize, root: cp.rootHash };
      await this.store.recordCheckpoint({
        deviceId: state.id,
        treeSize: cp.treeSize,
        rootHash: hex(cp.rootHash),
        timeMs: now,
      });
    }
    return undefined;
  }

  private enqueue(row: HeartbeatRow): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      if (this.queue.length >= (this.o.batchMaxRows ?? 2000)) void this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          void this.flush();
        });
      }
    });
  }

  /** Writes queued heartbeats as one batch; then receipts, events and gap tracking. */
  private async flush(): Promise<void> {
    if (this.flushing || this.queue.length === 0) return;
    this.flushing = true;
    const batch = this.queue.splice(0, this.o.batchMaxRows ?? 2000);
    try {
      const result = await this.store.storeHeartbeats(batch.map((p) => p.row));
      this.metrics.inc('edgewarden_store_batches_total');
      const maxSeq = new Map<string, HeartbeatRow>();
      const fleets = new Map<string, string>();
      batch.forEach((p, i) => {
        const r = p.row;
        fleets.set(r.deviceId, r.fleet);
        if (result.inserted[i]) {
          const cur = maxSeq.get(r.deviceId);
          if (!cur || r.seq > cur.seq) maxSeq.set(r.deviceId, r);
          this.emit('heartbeat', {
            deviceId: r.deviceId,
            fleet: r.fleet,
            seq: r.seq,
            bdSeq: r.bdSeq,
            timeMs: r.timeMs,
            receivedMs: r.receivedMs,
          });
        }
        p.resolve(result.inserted[i] === true);
      });
      const now = this.clock.now();
      for (const [id, stored] of result.storedSeq) {
        const state = this.registry.get(id);
        if (state && (state.storedSeq === null || stored > state.storedSeq)) state.storedSeq = stored;
        const fleet = fleets.get(id)!;
        this.sendReceipt(fleet, id, stored);
        const newest = maxSeq.get(id);
        if (newest && newest.seq > stored + 1 && !this.gaps.has(id)) {
          this.gaps.set(id, { fleet, from: stored + 1, to: newest.seq - 1, sinceMs: now, asks: 0 });
        }
        if (newest && state) this.refreshOnline(state, newest.summary, true);
      }
    } catch (e) {
      for (const p of batch) p.reject(e);
    } finally {
      this.flushing = false;
      if (this.queue.length > 0) void this.flush();
      else if (this.inflight === 0) this.wakeIdle();
    }
  }

  private sendReceipt(fleet: string, deviceId: string, storedSeq: number): void {
    const payload = encodeReceipt({ storedSeq, timeUnixMs: this.clock.now(), collector: this.collectorId });
    this.publish(deviceTopic(fleet, deviceId, 'receipt'), payload, 'edgewarden_receipts_sent_total');
  }

  private publish(topic: string, payload: Uint8Array, counter: string): void {
    const mqtt = this.o.mqtt;
    if (!mqtt || this.closed) return;
    this.metrics.inc(counter);
    mqtt.publish(topic, payload, { qos: this.o.receiptQos ?? 1 }).catch(() => {
      this.metrics.inc('edgewarden_publish_errors_total');
    });
  }

  /**
   * Housekeeping (the timer calls it every `tickMs`; tests call it with a fake clock): asks devices
   * to backfill seq gaps that stayed open past the grace period, gives up on gaps asked for too often
   * (an alert, and receipts move past them so the device's outbox can drain), and emits online/offline
   * changes.
   */
  async tick(): Promise<void> {
    if (this.closed) return;
    const now = this.clock.now();
    const grace = this.o.gapGraceMs ?? 2000;
    try {
      for (const [id, gap] of [...this.gaps]) {
        if (now - gap.sinceMs < grace) continue;
        const stored = await this.store.storedSeq(id);
        const state = this.registry.get(id);
        if (stored !== undefined && state && (state.storedSeq === null || stored > state.storedSeq))
          state.storedSeq = stored;
        if (stored !== undefined && stored >= gap.to) {
          this.gaps.delete(id);
          this.sendReceipt(gap.fleet, id, stored);
          continue;
        }
        const from = Math.max(gap.from, (stored ?? gap.from - 1) + 1);
        if (gap.asks >= (this.o.gapMaxAsks ?? 5)) {
          this.gaps.delete(id);
          const moved = await this.store.skipTo(id, gap.to + 1);
          if (state && moved !== undefined) state.storedSeq = moved;
          await this.alert(id, 'heartbeats_lost', `device ${id}: seq ${from}..${gap.to} never arrived`);
          if (moved !== undefined) this.sendReceipt(gap.fleet, id, moved);
          continue;
        }
        gap.asks++;
        gap.sinceMs = now;
        gap.from = from;
        this.publish(
          deviceTopic(gap.fleet, id, 'cmd'),
          encodeDeviceCommand({ kind: 'backfill', fromSeq: from, toSeq: gap.to }),
          'edgewarden_backfill_requests_total',
        );
      }
      if (now - this.lastSweepMs >= (this.o.onlineSweepMs ?? 5000)) {
        this.lastSweepMs = now;
        // One read of the whole fleet: devices that other collectors keep alive count too.
        for (const rec of await this.store.listDevices()) {
          const s = this.registry.get(rec.id) ?? this.registry.put(rec);
          const online = this.isOnline(rec, now);
          if (online !== s.online) {
            s.online = online;
            this.emit('device', this.view(rec, now));
          }
        }
      }
    } catch {
      this.metrics.inc('edgewarden_handler_errors_total', { code: 'EW_FLEET_STORE' });
    }
  }

  /** Pending gaps (device → seq range), for tests and the API. */
  openGaps(): { deviceId: string; from: number; to: number; asks: number }[] {
    return [...this.gaps].map(([deviceId, g]) => ({ deviceId, from: g.from, to: g.to, asks: g.asks }));
  }

  /** Updates the cached online flag and compliance from a fresh heartbeat summary; emits a change. */
  private refreshOnline(s: DeviceState, summary: HeartbeatSummary | undefined, live: boolean): void {
    if (!live) return;
    const wasOnline = s.online;
    s.online = true;
    if (!summary) return;
    const prev = s.compliance;
    const verdict = evaluateCompliance(stubRecord(s, summary), this.policy);
    s.compliance = verdict.state;
    if (verdict.state !== prev || !wasOnline) {
      void this.emitDevice(s.id, false).catch(() => {});
      if (verdict.state === 'non_compliant' && prev !== 'non_compliant') {
        void this.alert(s.id, 'non_compliant', `device ${s.id} is not compliant: ${verdict.reasons.join('; ')}`).catch(
          () => {},
        );
      }
    }
  }

  private async emitDevice(id: string, refresh: boolean): Promise<void> {
    if (this.listenerCount('device') === 0 && !refresh) return;
    const rec = await this.store.getDevice(id);
    if (!rec) return;
    const now = this.clock.now();
    const s = this.registry.get(id);
    if (s) {
      s.online = this.isOnline(rec, now);
      if (refresh) s.compliance = evaluateCompliance(rec, this.policy).state;
    }
    this.emit('device', this.view(rec, now));
  }

  private async alert(deviceId: string | null, code: string, message: string): Promise<void> {
    const key = `${deviceId}/${code}/${message}`;
    if (this.alerted.has(key)) return;
    this.alerted.add(key);
    if (this.alerted.size > 50_000) this.alerted.clear();
    const a = await this.store.addAlert({ timeMs: this.clock.now(), deviceId, code, message });
    this.metrics.inc('edgewarden_alerts_total', { code });
    this.emit('alert', a);
  }

  /** Approves a TOFU device: its messages are accepted from now on. */
  async approve(deviceId: string): Promise<boolean> {
    const ok = await this.store.approve(deviceId);
    if (!ok) return false;
    const rec = await this.store.getDevice(deviceId);
    if (rec) this.registry.put(rec);
    await this.emitDevice(deviceId, true);
    return true;
  }

  private isOnline(rec: DeviceRecord, now: number): boolean {
    if (rec.dead || rec.lastSeenMs === null) return false;
    return now - rec.lastSeenMs <= (this.o.offlineAfterMs ?? 35_000);
  }

  /** The API view of a device record. */
  view(rec: DeviceRecord, now = this.clock.now()): DeviceView {
    const verdict = evaluateCompliance(rec, this.policy);
    const hb = rec.lastHeartbeat;
    return {
      id: rec.id,
      fleet: rec.fleet,
      online: this.isOnline(rec, now),
      compliance: verdict.state,
      complianceReasons: verdict.reasons,
      lastSeq: rec.lastSeq,
      lastSeen: rec.lastSeenMs === null ? null : new Date(rec.lastSeenMs).toISOString(),
      lastSeenMs: rec.lastSeenMs,
      models: hb?.models ?? [],
      health: hb?.health ?? null,
      board: hb?.board ?? null,
      sdkVersion: hb?.sdkVersion ?? null,
      pending: rec.status === 'pending',
      historyRewritten: rec.historyRewritten,
      bdSeq: rec.bdSeq,
      dead: rec.dead,
      storedSeq: rec.storedSeq,
      checkpoint:
        rec.checkpointSize === null || rec.checkpointRoot === null
          ? null
          : { treeSize: rec.checkpointSize, rootHash: rec.checkpointRoot },
      outboxDepth: hb?.outboxDepth ?? null,
      dropped: hb?.dropped ?? null,
    };
  }

  /** Every device of the store (the whole fleet, whichever collector stored it). */
  async devices(): Promise<DeviceView[]> {
    const now = this.clock.now();
    return (await this.store.listDevices()).map((r) => this.view(r, now));
  }

  async device(id: string): Promise<DeviceView | undefined> {
    const rec = await this.store.getDevice(id);
    return rec ? this.view(rec) : undefined;
  }

  heartbeats(id: string, limit = 100): Promise<StoredHeartbeat[]> {
    return this.store.listHeartbeats(id, Math.max(1, Math.min(10_000, limit)));
  }

  alerts(limit = 100): Promise<AlertRecord[]> {
    return this.store.listAlerts(Math.max(1, Math.min(10_000, limit)));
  }

  /** Accepted count and rejections by code, over every message kind. */
  stats(): { accepted: number; heartbeatsAccepted: number; rejected: Record<string, number>; errors: number } {
    return {
      accepted: this.metrics.get('edgewarden_messages_accepted_total'),
      heartbeatsAccepted: this.metrics.get('edgewarden_heartbeats_accepted_total'),
      rejected: this.metrics.byLabel(MSG_REJECTED, 'code'),
      errors: this.metrics.get('edgewarden_handler_errors_total'),
    };
  }

  /** Resolves when no message is being handled and nothing waits for the store. */
  idle(): Promise<void> {
    if (this.inflight === 0 && this.queue.length === 0 && !this.flushing) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    if (this.inflight !== 0 || this.queue.length !== 0 || this.flushing) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Stops the timer and the subscription handler, waits for in-flight work. Does not close the store or MQTT. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.o.mqtt?.off('message', this.onMessage);
    if (this.timer) clearInterval(this.timer);
    await this.idle();
    this.closed = true;
    await this.pool?.close();
  }
}

function kindOf(topic: string): string {
  const k = topic.split('/')[4];
  return k === 'hb' || k === 'birth' || k === 'death' || k === 'ckpt' ? k : 'other';
}

function summarize(hb: Heartbeat, cp: CheckpointInfo | undefined): HeartbeatSummary {
  const s: HeartbeatSummary = {
    timeMs: hb.timeUnixMs,
    sdkVersion: hb.sdkVersion,
    bootId: hex(hb.bootId),
    models: hb.models.map((m) => ({
      name: m.name,
      digest: `sha256:${hex(m.digest)}`,
      inferences: m.inferences,
      blocked: m.blocked,
      errors: m.errors,
      p50Us: m.p50Us,
      p99Us: m.p99Us,
      executionProvider: m.executionProvider,
    })),
    policyDigest: hb.policyDigest.length ? `sha256:${hex(hb.policyDigest)}` : '',
    compliance: { state: hb.compliance.state, reasons: hb.compliance.reasons },
    outboxDepth: hb.outboxDepth,
    dropped: hb.dropped,
    historical: hb.historical,
    share: hb.share,
    policyRefusals: hb.policyRefusals,
    auditAlerts: hb.auditAlerts,
  };
  if (hb.board) s.board = hb.board;
  if (hb.health) s.health = hb.health;
  if (cp) s.checkpoint = { treeSize: cp.treeSize, rootHash: hex(cp.rootHash) };
  return s;
}

/** Just enough of a record to evaluate compliance from a fresh summary without a store read. */
function stubRecord(s: DeviceState, summary: HeartbeatSummary): DeviceRecord {
  return {
    id: s.id,
    fleet: null,
    keyid: null,
    publicKey: null,
    status: s.key?.status ?? 'approved',
    firstSeenMs: null,
    bdSeq: s.bdSeq,
    bornMs: null,
    birthTimeMs: null,
    bootId: null,
    dead: false,
    deathClean: null,
    diedMs: null,
    lastSeenMs: null,
    lastSeq: null,
    lastBdSeq: null,
    lastHeartbeat: summary,
    storedSeq: s.storedSeq,
    historyRewritten: false,
    checkpointSize: null,
    checkpointRoot: null,
  };
}
