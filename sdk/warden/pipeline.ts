import { performance } from 'node:perf_hooks';
import type { TensorMap } from '../engine/tensor';
import { EdgewardenError } from '../errors';
import type { AuditLog } from '../provenance/audit-log';
import type { ProvenanceBundle } from '../provenance/bundle';
import { type CheckpointFields, decodeCheckpoint, signCheckpoint } from '../provenance/checkpoint';
import { type Envelope, encodeEnvelope, PAYLOAD_TYPES, pae, signEnvelope } from '../provenance/dsse';
import { leafHash } from '../provenance/merkle';
import { encodeRecord, RECORD_VERSION, type RecordDecision, type RecordFields } from '../provenance/record';
import type { Signer } from '../provenance/signer';
import type { Clock } from '../util/clock';
import { SDK_VERSION } from '../version';
import { planCanonical, writeCanonical } from './canonical';
import type { DigestWorker } from './sign-worker';
import type { ProvenanceMode } from './types';

/** One inference to record. Its tensors are copied during {@link ProvenancePipeline.submit}. */
export interface PipelineItem {
  modelName: string;
  modelDigest: Uint8Array;
  executionProvider: string;
  runtimeVersion: string;
  policyDigest: Uint8Array;
  decision: RecordDecision;
  timeUnixMs: number;
  monotonicNs: bigint;
  labels: Record<string, string>;
  inputs: TensorMap;
  outputs: TensorMap;
}

interface Queued extends Omit<PipelineItem, 'inputs' | 'outputs'> {
  resolve(b: ProvenanceBundle): void;
  reject(e: unknown): void;
}

interface AwaitingCheckpoint {
  item: Queued;
  index: number;
  record: Uint8Array;
  durable: Promise<void>;
}

export interface PipelineOptions {
  mode: ProvenanceMode;
  log: AuditLog;
  signer: Signer;
  worker: DigestWorker;
  clock: Clock;
  bootId: Uint8Array;
  clockSynced: () => boolean;
  salted: boolean;
  checkpointEvery: number;
  checkpointMs: number;
  /** Above this many bytes of tensors waiting for digests, infer() waits (backpressure). */
  maxBacklogBytes?: number;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
// Tensor copies are gathered into chunks, each a reusable shared slot, and one small message per
// chunk tells the worker to digest it: a transfer per inference cost about 8% of the inference
// thread on a 0.6 ms model, a fresh transferred chunk still ~3%; a message naming a slot is noise.
const SLOT_BYTES = 4 << 20;
const MAX_SLOTS = 8;
const CHUNK_ITEMS = 256;
const CHUNK_MS = 20;

/**
 * The provenance path behind the inference path. Inferences enqueue canonical tensor copies and
 * return; the worker digests them in batches (and signs records in per-output mode) while the next
 * inference runs; back on this thread records are encoded, chained and appended to the audit log in
 * inference order, checkpoints are cut and bundles resolve once their entries are durable.
 */
export class ProvenancePipeline {
  private chunk: Buffer | undefined;
  /** Shared slot the current chunk lives in; -1 for a one-off buffer (a tensor larger than a slot). */
  private chunkSlot = -1;
  private readonly slots: { buf: Buffer; busy: boolean }[] = [];
  private used = 0;
  private chunkItems: Queued[] = [];
  private ranges: number[] = [];
  private chunkTimer: ReturnType<typeof setTimeout> | undefined;
  /** Digest replies are handled strictly in the order the chunks were posted. */
  private digestChain: Promise<void> = Promise.resolve();
  private inFlightBytes = 0;
  private lastDurable: Promise<void> | undefined;
  private lastPost = Number.NEGATIVE_INFINITY;
  /** Appends happen strictly in this chain, so the log order is the inference order. */
  private appendChain: Promise<void> = Promise.resolve();
  private checkpointChain: Promise<unknown> = Promise.resolve();
  private awaiting: AwaitingCheckpoint[] = [];
  /** Bundles not yet settled, and who waits for that number to reach zero (flush). */
  private outstanding = 0;
  private settledWaiters: (() => void)[] = [];
  private nextIndex: number;
  private prevLeaf: Uint8Array;
  private sinceCheckpoint = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private latest: Envelope | undefined;
  private latestSize = -1;
  private failure: Error | undefined;
  private roomWaiters: (() => void)[] = [];
  private readonly maxBacklog: number;

  constructor(private readonly o: PipelineOptions) {
    this.nextIndex = o.log.size;
    this.prevLeaf = o.log.lastLeafHash;
    this.latest = o.log.latestCheckpoint();
    if (this.latest) this.latestSize = decodeCheckpoint(this.latest.payload).treeSize;
    this.maxBacklog = o.maxBacklogBytes ?? 64 * 1024 * 1024;
  }

  /** Set once the pipeline has failed; the warden then refuses to run (no unsigned outputs). */
  get error(): Error | undefined {
    return this.failure ?? this.o.worker.error;
  }

  /** True when so many tensor bytes wait for digests that the next inference should wait. */
  get congested(): boolean {
    const slotsFull = this.slots.length === MAX_SLOTS && this.slots.every((s) => s.busy);
    return slotsFull || this.inFlightBytes + this.used > this.maxBacklog;
  }

  /** Resolves when the backlog is below its bound again. */
  room(): Promise<void> {
    if (!this.congested) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  latestCheckpoint(): Envelope | undefined {
    return this.latest;
  }

  /** Copies one inference's tensors into the current chunk; the promise resolves with its bundle. */
  submit(item: PipelineItem): Promise<ProvenanceBundle> {
    if (this.error) return Promise.reject(this.error);
    const { inputs, outputs, ...meta } = item;
    const pin = planCanonical(inputs);
    const pout = planCanonical(outputs);
    const need = pin.size + pout.size;
    if (this.chunk && this.used + need > this.chunk.length) this.post();
    if (!this.chunk) this.acquire(need);
    if (!this.chunk) throw new EdgewardenError('EW_WARDEN_PIPELINE', 'no chunk buffer');
    const a = this.used;
    const b = writeCanonical(pin, this.chunk, a);
    this.used = writeCanonical(pout, this.chunk, b);
    this.ranges.push(a, b - a, b, this.used - b);
    this.outstanding++;
    const p = new Promise<ProvenanceBundle>((resolve, reject) => {
      this.chunkItems.push({
        ...meta,
        resolve: (b) => {
          this.settle();
          resolve(b);
        },
        reject: (e) => {
          this.settle();
          reject(e);
        },
      });
    });
    // A sporadic inference goes to the worker at once (low latency); a tight loop fills a chunk.
    if (this.chunkItems.length >= CHUNK_ITEMS || performance.now() - this.lastPost >= CHUNK_MS) this.post();
    else this.chunkTimer ??= setTimeout(() => this.post(), CHUNK_MS);
    return p;
  }

  private settle(): void {
    if (--this.outstanding === 0) for (const w of this.settledWaiters.splice(0)) w();
  }

  /** Makes the current chunk a free shared slot (a new one up to MAX_SLOTS), else a one-off buffer. */
  private acquire(need: number): void {
    this.used = 0;
    if (need <= SLOT_BYTES) {
      let i = this.slots.findIndex((s) => !s.busy);
      if (i < 0 && this.slots.length < MAX_SLOTS) {
        const sab = new SharedArrayBuffer(SLOT_BYTES);
        i = this.slots.push({ buf: Buffer.from(sab), busy: false }) - 1;
        this.o.worker.addSlot(i, sab);
      }
      const slot = this.slots[i];
      if (slot) {
        slot.busy = true;
        this.chunk = slot.buf;
        this.chunkSlot = i;
        return;
      }
    }
    // Every slot is in flight (the caller ignored backpressure) or the tensors are huge: a buffer of
    // its own, transferred (allocUnsafeSlow: the Buffer owns its whole ArrayBuffer).
    this.chunk = Buffer.allocUnsafeSlow(Math.max(need, 1));
    this.chunkSlot = -1;
  }

  /** Sends the current chunk to the worker. */
  private post(): void {
    if (this.chunkTimer) {
      clearTimeout(this.chunkTimer);
      this.chunkTimer = undefined;
    }
    const chunk = this.chunk;
    const items = this.chunkItems;
    if (!chunk || items.length === 0) return;
    const ranges = this.ranges;
    const bytes = this.used;
    const slot = this.chunkSlot;
    this.lastPost = performance.now();
    this.chunk = undefined;
    this.used = 0;
    this.chunkItems = [];
    this.ranges = [];
    this.inFlightBytes += bytes;
    const digests = this.o.worker.digest(slot >= 0 ? slot : (chunk.buffer as ArrayBuffer), ranges);
    digests.catch(() => {});
    this.digestChain = this.digestChain
      .then(() => digests)
      .then(
        (d) => this.onDigests(items, d),
        (err) => this.fail(err, items),
      )
      .finally(() => {
        const s = this.slots[slot];
        if (s) s.busy = false;
        this.inFlightBytes -= bytes;
        if (!this.congested) for (const w of this.roomWaiters.splice(0)) w();
      });
  }

  private buildRecord(it: Queued, inputDigest: Uint8Array, outputDigest: Uint8Array): Uint8Array {
    const ns = it.monotonicNs <= MAX_SAFE ? Number(it.monotonicNs) : Number(it.monotonicNs % (MAX_SAFE + 1n));
    const fields: RecordFields = {
      version: RECORD_VERSION,
      deviceKeyid: this.o.signer.keyId,
      index: this.nextIndex,
      timeUnixMs: it.timeUnixMs,
      bootId: this.o.bootId,
      monotonicNs: ns,
      clockSynced: this.o.clockSynced(),
      modelDigest: it.modelDigest,
      modelName: it.modelName,
      policyDigest: it.policyDigest,
      decision: it.decision,
      inputDigest,
      outputDigest,
      executionProvider: it.executionProvider,
      runtimeVersion: it.runtimeVersion,
      sdkVersion: SDK_VERSION,
      prevLeafHash: this.prevLeaf,
      labels: it.labels,
      salted: this.o.salted,
    };
    return encodeRecord(fields);
  }

  private onDigests(batch: Queued[], digests: Uint8Array): void {
    const batched = this.o.mode === 'batched';
    const records: { item: Queued; index: number; bytes: Uint8Array }[] = [];
    for (let i = 0; i < batch.length; i++) {
      const it = batch[i] as Queued;
      const index = this.nextIndex;
      let bytes: Uint8Array;
      try {
        bytes = this.buildRecord(it, digests.subarray(64 * i, 64 * i + 32), digests.subarray(64 * i + 32, 64 * i + 64));
      } catch (err) {
        // A record that cannot be encoded (e.g. labels over the bounds) fails alone; the chain goes on.
        it.reject(err);
        continue;
      }
      this.nextIndex++;
      if (batched) {
        // Appended at once: the log computes the leaf hash that chains the next record.
        const leaf = this.append(it, index, bytes);
        if (!leaf) return;
        this.prevLeaf = leaf;
      } else {
        this.prevLeaf = leafHash(bytes);
        records.push({ item: it, index, bytes });
      }
    }
    if (batched) return;
    // Per-output: sign every record (in the worker when it holds the key), then append in order.
    const sigs: Promise<Uint8Array[]> = this.o.worker.canSign
      ? this.o.worker
          .sign(records.map((r) => pae(PAYLOAD_TYPES.record, r.bytes)))
          .then((all) => records.map((_, i) => all.slice(64 * i, 64 * i + 64)))
      : Promise.all(records.map((r) => signEnvelope(this.o.signer, PAYLOAD_TYPES.record, r.bytes))).then((envs) =>
          envs.map((e) => e.signatures[0]?.sig as Uint8Array),
        );
    this.appendChain = this.appendChain.then(async () => {
      let list: Uint8Array[];
      try {
        list = await sigs;
      } catch (err) {
        this.fail(
          err,
          records.map((r) => r.item),
        );
        return;
      }
      const done: { item: Queued; env: Envelope }[] = [];
      for (let i = 0; i < records.length; i++) {
        const r = records[i] as (typeof records)[0];
        const env: Envelope = {
          payload: r.bytes,
          payloadType: PAYLOAD_TYPES.record,
          signatures: [{ keyid: this.o.signer.keyId, sig: list[i] as Uint8Array }],
        };
        if (!this.append(r.item, r.index, r.bytes, env)) return;
        done.push({ item: r.item, env });
      }
      // Entries become durable in log order: when the batch's last one is, all are.
      this.lastDurable?.then(
        () => {
          for (const d of done) d.item.resolve({ mode: 'per-output', record: d.env });
        },
        (err) => {
          for (const d of done) d.item.reject(err);
        },
      );
    });
  }

  /**
   * Appends one record (in batched mode it then waits for a checkpoint). Returns its leaf hash, and
   * leaves its durability promise in `lastDurable`; undefined when the pipeline has failed.
   */
  private append(item: Queued, index: number, bytes: Uint8Array, env?: Envelope): Uint8Array | undefined {
    if (this.failure) {
      item.reject(this.failure);
      return undefined;
    }
    let entry: { index: number; leafHash: Uint8Array; durable: Promise<void> };
    try {
      entry = this.o.log.appendRecord(bytes, env ? encodeEnvelope(env) : undefined);
      if (entry.index !== index) {
        throw new EdgewardenError('EW_WARDEN_PIPELINE', `audit log appended at ${entry.index}, expected ${index}`);
      }
    } catch (err) {
      this.fail(err, [item]);
      return undefined;
    }
    if (this.o.mode === 'batched') this.awaiting.push({ item, index, record: bytes, durable: entry.durable });
    this.sinceCheckpoint++;
    if (this.sinceCheckpoint >= this.o.checkpointEvery) {
      void this.cut().catch(() => {});
    } else if (!this.timer) {
      // Ref'd on purpose: a process awaiting a batched bundle must stay alive until the checkpoint.
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.cut().catch(() => {});
      }, this.o.checkpointMs);
    }
    this.lastDurable = entry.durable;
    return entry.leafHash;
  }

  /** Cuts a checkpoint over every appended record (serialized with other cuts) and resolves the bundles it covers. */
  cut(): Promise<Envelope> {
    const run = async (): Promise<Envelope> => {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      const log = this.o.log;
      const size = log.size;
      this.sinceCheckpoint = 0;
      let env = this.latest;
      if (!env || size !== this.latestSize) {
        const fields: CheckpointFields = {
          deviceKeyid: this.o.signer.keyId,
          treeSize: size,
          rootHash: log.tree.root(size),
          timeUnixMs: this.o.clock.now(),
          bootId: this.o.bootId,
        };
        env = await signCheckpoint(this.o.signer, fields);
        await log.appendCheckpoint(env);
        this.latest = env;
        this.latestSize = size;
      }
      const covered = this.awaiting.filter((a) => a.index < size);
      this.awaiting = this.awaiting.filter((a) => a.index >= size);
      const checkpoint = env;
      const bundles = covered.map(
        (a): ProvenanceBundle => ({
          mode: 'batched',
          record: { payload: a.record, payloadType: PAYLOAD_TYPES.record, signatures: [] },
          inclusion: { leafIndex: a.index, treeSize: size, hashes: log.tree.inclusionProof(a.index, size) },
          checkpoint,
        }),
      );
      // Entries become durable in log order: when the last one is, all are.
      const last = covered[covered.length - 1];
      last?.durable.then(
        () => {
          for (let i = 0; i < covered.length; i++)
            (covered[i] as AwaitingCheckpoint).item.resolve(bundles[i] as ProvenanceBundle);
        },
        (err) => {
          for (const a of covered) a.item.reject(err);
        },
      );
      return env;
    };
    const p = this.checkpointChain.then(run, run);
    this.checkpointChain = p.catch(() => {});
    p.catch((err) => this.fail(err, []));
    return p;
  }

  /** Waits until every submitted inference has been digested, signed and appended. */
  async drain(): Promise<void> {
    this.post();
    await this.digestChain;
    await this.appendChain;
  }

  /** Everything queued becomes durable and covered by a checkpoint; every outstanding bundle settles. */
  async flush(): Promise<void> {
    await this.drain();
    if (!this.failure && this.o.log.size > 0 && (this.o.log.size !== this.latestSize || this.awaiting.length > 0))
      await this.cut();
    if (this.outstanding > 0) await new Promise<void>((resolve) => this.settledWaiters.push(resolve));
  }

  private fail(err: unknown, items: Queued[]): void {
    const e =
      err instanceof EdgewardenError ? err : new EdgewardenError('EW_WARDEN_PIPELINE', String(err), { cause: err });
    this.failure ??= e;
    for (const it of items) it.reject(e);
    for (const a of this.awaiting.splice(0)) a.item.reject(e);
    for (const it of this.chunkItems.splice(0)) it.reject(e);
    this.chunk = undefined;
    this.used = 0;
    this.ranges = [];
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Stops timers (after flush). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.chunkTimer) clearTimeout(this.chunkTimer);
    this.timer = undefined;
    this.chunkTimer = undefined;
  }
}
