import type { TensorMap } from '../engine/tensor';
import { EdgewardenError } from '../errors';
import type { AuditLog } from '../provenance/audit-log';
import type { InclusionProof, ProvenanceBundle } from '../provenance/bundle';
import { type CheckpointFields, decodeCheckpoint, signCheckpoint } from '../provenance/checkpoint';
import { type Envelope, encodeEnvelope, PAYLOAD_TYPES, signEnvelope } from '../provenance/dsse';
import type { MerkleTree } from '../provenance/merkle';
import { RECORD_LIMITS, RECORD_VERSION, type RecordDecision } from '../provenance/record';
import type { Signer } from '../provenance/signer';
import type { Clock } from '../util/clock';
import { SDK_VERSION } from '../version';
import { canonicalSize, writeCanonicalMap } from './canonical';
import { type ChunkResult, type DigestWorker, ITEM_HEADER_BYTES } from './sign-worker';
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

/** One submitted inference until its bundle settles. */
class Pending {
  promise!: Promise<ProvenanceBundle>;
  resolve!: (b: ProvenanceBundle) => void;
  reject!: (e: unknown) => void;
  settled = false;
  index = 0;
  record: Uint8Array | undefined;
  durable: Promise<void> | undefined;
}

const swallow = () => {};

/** A rejected promise that does not count as unhandled when the application ignores it. */
function rejected(err: unknown): Promise<never> {
  const p = Promise.reject(err);
  p.catch(swallow);
  return p;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
// Tensor copies are gathered into chunks: reusable (non-shared) 4 MiB buffers, transferred to the
// worker with one message per chunk and transferred back with its answer. Measured on the 2-core
// box (PaddleOCR classifier, 110 KB input): copying into a SharedArrayBuffer slot cost ~30 µs per
// inference on the inference thread (V8 copies into shared memory with relaxed atomic stores), into
// an ordinary buffer ~8 µs; a message per inference cost ~8% of the thread, one per chunk is noise.
const BUF_BYTES = 4 << 20;
const MAX_BUFS = 8;
const CHUNK_ITEMS = 256;
// How long a chunk gathers inferences in a tight loop before it goes to the worker. Every message
// wakes the worker's thread, and on the 2-core EPYC VM waking the other core slows ONNX Runtime on
// this one (a message per inference to a thread that does nothing with it: 10% slower inferences;
// a loop on the other core: 11%). Batched bundles wait for a checkpoint (1 s by default) anyway, so
// their chunks gather longer: 7 alternating runs of `edgewarden bench --json --cold 0 --rounds 6`
// each, batched ratio median 0.941 at 20 ms, 0.954 at 50 ms (4 runs), 0.952 at 100 ms. A per-output
// bundle resolves as soon as the worker has signed it, so its chunk keeps the shorter wait (50 ms
// would have raised that ratio from 0.93 to 0.958, for up to 30 ms more before each bundle).
const CHUNK_MS = { batched: 50, 'per-output': 20 } as const;
/** Past this many dictionary entries the worker's dictionary is cleared (bounded memory). */
const DICT_MAX = 4096;
const OUTCOME: Record<string, number> = { allowed: 1, blocked: 2, redacted: 3 };
const utf8 = (s: string) => Buffer.from(s, 'utf8');
const pad8 = (n: number) => (n + 7) & ~7;

function malformed(message: string): EdgewardenError {
  return new EdgewardenError('EW_PROVENANCE_MALFORMED', `record: ${message}`);
}

function checkString(name: string, v: unknown, max: number = RECORD_LIMITS.maxStringLength): void {
  if (typeof v !== 'string' || v.length > max) throw malformed(`${name} is not a string of at most ${max} characters`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hasOwnKeys(o: object): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

/**
 * The inclusion proof of a batched bundle, computed from the log's in-memory Merkle tree the first
 * time `hashes` is read (then kept as a plain data property, and the tree let go). Cutting a
 * checkpoint therefore costs no proof computation on the inference thread (3-6 µs per leaf at 50k+
 * leaves); a proof is computed when a verifier, a result file or the application reads it. The
 * tree is append-only, so the proof of (index, size) never changes. `hashes` is an own enumerable
 * property (spread, JSON and structured clone see it); the accessor functions are shared.
 */
class LazyInclusionProof implements InclusionProof {
  declare hashes: Uint8Array[];
  #tree: MerkleTree | undefined;

  constructor(
    tree: MerkleTree,
    readonly leafIndex: number,
    readonly treeSize: number,
  ) {
    this.#tree = tree;
    Object.defineProperty(this, 'hashes', LazyInclusionProof.lazy);
  }

  private static settle(p: LazyInclusionProof, hashes: Uint8Array[]): Uint8Array[] {
    Object.defineProperty(p, 'hashes', { value: hashes, enumerable: true, writable: true, configurable: true });
    p.#tree = undefined;
    return hashes;
  }

  private static readonly lazy: PropertyDescriptor = {
    enumerable: true,
    configurable: true,
    get(this: LazyInclusionProof): Uint8Array[] {
      const tree = this.#tree as MerkleTree;
      // Read only after retention removed the record (days later): no proof can be made any more, and
      // an accessor must not throw (spread, JSON); the empty proof fails verification (INCLUSION).
      if (this.leafIndex < tree.base) return LazyInclusionProof.settle(this, []);
      return LazyInclusionProof.settle(this, tree.inclusionProof(this.leafIndex, this.treeSize));
    },
    set(this: LazyInclusionProof, hashes: Uint8Array[]): void {
      LazyInclusionProof.settle(this, hashes);
    },
  };
}

/**
 * The provenance path behind the inference path. An inference writes a small header and one copy
 * of its tensors (the canonical digest layout) into the current chunk and returns; the worker
 * digests the tensors, encodes and chains the records (and signs them, per-output) while the next
 * inferences run; back on this thread the records are appended to the audit log in inference order,
 * checkpoints are cut and bundles resolve once their entries are durable.
 */
export class ProvenancePipeline {
  private chunk: ArrayBuffer | undefined;
  private view: Buffer | undefined;
  private f64: Float64Array | undefined;
  private used = 0;
  private chunkItems: Pending[] = [];
  private readonly free: ArrayBuffer[] = [];
  private chunkTimer: ReturnType<typeof setTimeout> | undefined;
  /** Chunk answers are handled strictly in the order the chunks were posted. */
  private digestChain: Promise<void> = Promise.resolve();
  private inFlightBytes = 0;
  private inFlightChunks = 0;
  private lastDurable: Promise<void> | undefined;
  private lastPost = Number.NEGATIVE_INFINITY;
  /** Appends happen strictly in this chain, so the log order is the inference order. */
  private appendChain: Promise<void> = Promise.resolve();
  private checkpointChain: Promise<unknown> = Promise.resolve();
  private awaiting: Pending[] = [];
  /** Bundles not yet settled, and who waits for that number to reach zero (flush). */
  private outstanding = 0;
  private settledWaiters: (() => void)[] = [];
  private nextIndex: number;
  private sinceCheckpoint = 0;
  /** A cut asked for by append() or the timer that has not started yet: at most one waits. */
  private cutWaiting = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private latest: Envelope | undefined;
  private latestSize = -1;
  private failure: Error | undefined;
  private roomWaiters: (() => void)[] = [];
  private readonly maxBacklog: number;
  private readonly signInWorker: boolean;
  // The dictionary shared with the worker: repeated strings, byte strings, models and label sets
  // travel once, then by id.
  private defs: unknown[] = [];
  private resetDict = false;
  private nextId = 1;
  private readonly strings = new Map<string, number>();
  private readonly bytes = new Map<Uint8Array, { id: number; copy: Uint8Array }>();
  private readonly models = new Map<
    Uint8Array,
    { id: number; name: string; ep: string; rt: string; copy: Uint8Array }
  >();
  private readonly labelSets = new Map<object, number>();

  constructor(private readonly o: PipelineOptions) {
    this.nextIndex = o.log.size;
    this.latest = o.log.latestCheckpoint();
    if (this.latest) this.latestSize = decodeCheckpoint(this.latest.payload).treeSize;
    this.maxBacklog = o.maxBacklogBytes ?? 64 * 1024 * 1024;
    this.signInWorker = o.mode === 'per-output' && o.worker.canSign;
    o.worker.startChain({
      version: RECORD_VERSION,
      keyid: o.signer.keyId,
      bootId: o.bootId,
      sdkVersion: SDK_VERSION,
      salted: o.salted,
      index: o.log.size,
      prevLeaf: o.log.lastLeafHash,
      frontier: o.log.tree.frontier(),
    });
  }

  /** Set once the pipeline has failed; the warden then refuses to run (no unsigned outputs). */
  get error(): Error | undefined {
    return this.failure ?? this.o.worker.error;
  }

  /** True when so many tensor bytes wait for digests that the next inference should wait. */
  get congested(): boolean {
    return this.inFlightChunks >= MAX_BUFS || this.inFlightBytes + this.used > this.maxBacklog;
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
    if (this.error) return rejected(this.error);
    const inSize = canonicalSize(item.inputs);
    const outSize = canonicalSize(item.outputs);
    const need = ITEM_HEADER_BYTES + pad8(inSize + outSize);
    if (this.chunk && this.used + need > this.chunk.byteLength) this.post();
    if (!this.chunk) this.acquire(need);
    const view = this.view as Buffer;
    const f64 = this.f64 as Float64Array;
    const h = this.used >>> 3;
    try {
      // What encodeRecord would refuse is refused here, before the record leaves this thread.
      const outcome = OUTCOME[item.decision?.outcome];
      if (outcome === undefined) throw malformed('decision outcome is not allowed, blocked or redacted');
      if (!Number.isSafeInteger(item.timeUnixMs)) throw malformed('timeUnixMs is not a safe integer');
      f64[h] = item.timeUnixMs;
      const ns = item.monotonicNs;
      f64[h + 1] = ns <= MAX_SAFE ? Number(ns) : Number(ns % (MAX_SAFE + 1n));
      f64[h + 2] = this.o.clockSynced() ? 1 : 0;
      f64[h + 3] = outcome;
      f64[h + 4] = this.model(item);
      f64[h + 5] = this.byteString('policyDigest', item.policyDigest, RECORD_LIMITS.maxPolicyDigestBytes);
      f64[h + 6] = this.string('decision.ruleId', item.decision.ruleId);
      f64[h + 7] = this.string('decision.authority', item.decision.authority);
      f64[h + 8] = this.labels(item.labels);
    } catch (err) {
      // This record fails alone (as encodeRecord would have failed it); nothing was written.
      return rejected(err);
    }
    f64[h + 9] = inSize;
    f64[h + 10] = outSize;
    const b = writeCanonicalMap(item.inputs, view, this.used + ITEM_HEADER_BYTES);
    writeCanonicalMap(item.outputs, view, b);
    this.used += need;
    this.outstanding++;
    const pending = new Pending();
    const p = new Promise<ProvenanceBundle>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    pending.promise = p;
    this.chunkItems.push(pending);
    // A sporadic inference goes to the worker at once (low latency); a tight loop fills a chunk.
    const wait = CHUNK_MS[this.o.mode];
    if (this.chunkItems.length >= CHUNK_ITEMS || performance.now() - this.lastPost >= wait) this.post();
    else this.chunkTimer ??= setTimeout(() => this.post(), wait);
    return p;
  }

  private ok(p: Pending, bundle: ProvenanceBundle): void {
    if (p.settled) return;
    p.settled = true;
    p.record = undefined;
    p.durable = undefined;
    this.settle();
    p.resolve(bundle);
  }

  private ko(p: Pending, err: unknown): void {
    if (p.settled) return;
    p.settled = true;
    this.settle();
    // An application that ignores its bundles must not crash on a failed one; handled here, at
    // failure, instead of a catch per inference on the hot path.
    p.promise.catch(swallow);
    p.reject(err);
  }

  private settle(): void {
    if (--this.outstanding === 0) for (const w of this.settledWaiters.splice(0)) w();
  }

  private def(value: unknown): number {
    const id = this.nextId++;
    this.defs.push(id, value);
    return id;
  }

  private string(name: string, s: string): number {
    const known = this.strings.get(s);
    if (known !== undefined) return known;
    checkString(name, s);
    const id = this.def(utf8(s));
    this.strings.set(s, id);
    return id;
  }

  private byteString(name: string, b: Uint8Array, max: number): number {
    const known = this.bytes.get(b);
    // Keyed by identity, compared by content: a caller may refill the same array.
    if (known && sameBytes(known.copy, b)) return known.id;
    if (!(b instanceof Uint8Array) || b.length > max) throw malformed(`${name} has ${b?.length} bytes`);
    const copy = new Uint8Array(b);
    const id = this.def(copy);
    this.bytes.set(b, { id, copy });
    return id;
  }

  private model(item: PipelineItem): number {
    const d = item.modelDigest;
    const known = this.models.get(d);
    if (
      known &&
      known.name === item.modelName &&
      known.ep === item.executionProvider &&
      known.rt === item.runtimeVersion &&
      sameBytes(known.copy, d)
    )
      return known.id;
    checkString('modelName', item.modelName);
    checkString('executionProvider', item.executionProvider);
    checkString('runtimeVersion', item.runtimeVersion);
    if (!(d instanceof Uint8Array) || (d.length !== 0 && d.length !== 32))
      throw malformed(`modelDigest has ${d?.length} bytes`);
    const copy = new Uint8Array(d);
    const id = this.def([utf8(item.modelName), copy, utf8(item.executionProvider), utf8(item.runtimeVersion)]);
    this.models.set(d, { id, name: item.modelName, ep: item.executionProvider, rt: item.runtimeVersion, copy });
    return id;
  }

  /** A label set's id (-1: none). Frozen sets are sent once; others with each record that uses them. */
  private labels(labels: Record<string, string>): number {
    if (labels === undefined || labels === null || !hasOwnKeys(labels)) {
      if (labels === null || (labels !== undefined && typeof labels !== 'object'))
        throw malformed('labels is not an object');
      return -1;
    }
    const frozen = Object.isFrozen(labels);
    if (frozen) {
      const known = this.labelSets.get(labels);
      if (known !== undefined) return known;
    }
    const keys = Object.keys(labels);
    if (keys.length > RECORD_LIMITS.maxLabels) throw malformed(`more than ${RECORD_LIMITS.maxLabels} labels`);
    const flat: Uint8Array[] = [];
    for (const k of keys) {
      checkString('label key', k, RECORD_LIMITS.maxLabelKeyLength);
      const v = labels[k];
      checkString(`label ${JSON.stringify(k)}`, v, RECORD_LIMITS.maxLabelValueLength);
      flat.push(utf8(k), utf8(v as string));
    }
    const id = this.def(flat);
    if (frozen) this.labelSets.set(labels, id);
    return id;
  }

  /** Makes the current chunk a pooled buffer (a new one when none is free), or a one-off buffer for huge tensors. */
  private acquire(need: number): void {
    this.used = 0;
    const buf = need <= BUF_BYTES ? (this.free.pop() ?? new ArrayBuffer(BUF_BYTES)) : new ArrayBuffer(pad8(need));
    this.chunk = buf;
    this.view = Buffer.from(buf);
    this.f64 = new Float64Array(buf);
    // A chunk boundary is where the worker can forget its dictionary (it clears it before reading
    // this chunk's definitions).
    if (this.nextId > DICT_MAX) {
      this.strings.clear();
      this.bytes.clear();
      this.models.clear();
      this.labelSets.clear();
      this.nextId = 1;
      this.resetDict = true;
    }
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
    const bytes = this.used;
    this.lastPost = performance.now();
    this.chunk = undefined;
    this.view = undefined;
    this.f64 = undefined;
    this.used = 0;
    this.chunkItems = [];
    this.inFlightBytes += bytes;
    this.inFlightChunks++;
    const answer = this.o.worker.chunk({
      buf: chunk,
      used: bytes,
      count: items.length,
      defs: this.defs,
      reset: this.resetDict,
      sign: this.signInWorker,
    });
    this.defs = [];
    this.resetDict = false;
    answer.catch(() => {});
    this.digestChain = this.digestChain
      .then(() => answer)
      .then(
        (res) => {
          // Back in the pool for the next chunk (a one-off buffer for huge tensors is dropped).
          if (res.buf.byteLength === BUF_BYTES && this.free.length < MAX_BUFS) this.free.push(res.buf);
          try {
            this.onRecords(items, res);
          } catch (err) {
            // A malformed answer: nothing after it can be trusted to chain.
            this.fail(err, items);
          }
        },
        (err) => this.fail(err, items),
      )
      .finally(() => {
        this.inFlightBytes -= bytes;
        this.inFlightChunks--;
        if (!this.congested) for (const w of this.roomWaiters.splice(0)) w();
      });
  }

  private onRecords(batch: Pending[], res: ChunkResult): void {
    const out = res.out;
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const batched = this.o.mode === 'batched';
    const keyid = this.o.signer.keyId;
    const signed: { item: Pending; index: number; bytes: Uint8Array }[] = [];
    const done: { item: Pending; env: Envelope }[] = [];
    let pos = 0;
    // The first record of each answer goes through the log's full check (chain, device, leaf hash
    // recomputed and compared with the worker's); the rest are appended with the worker's hashes.
    let checkedOne = false;
    for (let i = 0; i < batch.length; i++) {
      const it = batch[i] as Pending;
      const status = dv.getUint8(pos);
      const len = dv.getUint32(pos + 1, true);
      pos += 5;
      if (status !== 0) {
        // A record that cannot be encoded fails alone; the chain goes on without it.
        this.ko(
          it,
          malformed(
            Buffer.from(out.buffer, out.byteOffset + pos, len)
              .toString('utf8')
              .replace(/^record: /, ''),
          ),
        );
        pos += len;
        continue;
      }
      const bytes = out.subarray(pos, pos + len);
      pos += len;
      let envBytes: Uint8Array | undefined;
      if (this.signInWorker) {
        const envLen = dv.getUint32(pos, true);
        envBytes = out.subarray(pos + 4, pos + 4 + envLen);
        pos += 4 + envLen;
      }
      // The leaf hash and the tree nodes it completes, one view (see MerkleTree.appendHashed).
      const hashes = out.subarray(pos + 1, pos + 33 + 32 * (out[pos] as number));
      pos += 1 + hashes.length;
      const index = this.nextIndex++;
      const check = !checkedOne;
      checkedOne = true;
      // After a failed append the rest of the batch is rejected by append() itself.
      if (batched) {
        this.append(it, index, bytes, undefined, hashes, check);
      } else if (envBytes) {
        const env: Envelope = {
          payload: bytes,
          payloadType: PAYLOAD_TYPES.record,
          signatures: [{ keyid, sig: envBytes.subarray(envBytes.length - 64) }],
        };
        if (this.append(it, index, bytes, envBytes, hashes, check)) done.push({ item: it, env });
      } else {
        signed.push({ item: it, index, bytes });
      }
    }
    if (batched) return;
    if (this.signInWorker) {
      this.resolveWhenDurable(done);
      return;
    }
    // Per-output with a signer that keeps its key (e.g. hardware): sign here through Signer.sign,
    // then append in order.
    const sigs = Promise.all(signed.map((r) => signEnvelope(this.o.signer, PAYLOAD_TYPES.record, r.bytes)));
    this.appendChain = this.appendChain.then(async () => {
      let envs: Envelope[];
      try {
        envs = await sigs;
      } catch (err) {
        this.fail(
          err,
          signed.map((r) => r.item),
        );
        return;
      }
      const ready: { item: Pending; env: Envelope }[] = [];
      for (let i = 0; i < signed.length; i++) {
        const r = signed[i] as (typeof signed)[0];
        const env = envs[i] as Envelope;
        if (this.append(r.item, r.index, r.bytes, encodeEnvelope(env))) ready.push({ item: r.item, env });
      }
      this.resolveWhenDurable(ready);
    });
  }

  /** Entries become durable in log order: when the batch's last one is, all are. */
  private resolveWhenDurable(done: { item: Pending; env: Envelope }[]): void {
    if (done.length === 0) return;
    this.lastDurable?.then(
      () => {
        for (const d of done) this.ok(d.item, { mode: 'per-output', record: d.env });
      },
      (err) => {
        for (const d of done) this.ko(d.item, err);
      },
    );
  }

  /**
   * Appends one record (in batched mode it then waits for a checkpoint), leaving its durability
   * promise in `lastDurable`. False when the pipeline has failed.
   */
  private append(
    item: Pending,
    index: number,
    bytes: Uint8Array,
    envBytes?: Uint8Array,
    hashes?: Uint8Array,
    check = true,
  ): boolean {
    if (this.failure) {
      this.ko(item, this.failure);
      return false;
    }
    const log = this.o.log;
    let durable: Promise<void>;
    try {
      if (log.size !== index) {
        throw new EdgewardenError('EW_WARDEN_PIPELINE', `audit log is at ${log.size}, expected ${index}`);
      }
      if (hashes && !check) {
        durable = log.appendHashed(bytes, hashes, envBytes);
      } else {
        const entry = log.appendRecord(bytes, envBytes);
        if (hashes && !sameBytes(entry.leafHash, hashes.subarray(0, 32))) {
          throw new EdgewardenError('EW_WARDEN_PIPELINE', `the worker's leaf hash of record ${index} is wrong`);
        }
        durable = entry.durable;
      }
    } catch (err) {
      this.fail(err, [item]);
      return false;
    }
    if (this.o.mode === 'batched') {
      item.index = index;
      item.record = bytes;
      item.durable = durable;
      this.awaiting.push(item);
    }
    this.sinceCheckpoint++;
    if (this.sinceCheckpoint >= this.o.checkpointEvery) {
      this.requestCut();
    } else if (!this.timer) {
      // Ref'd on purpose: a process awaiting a batched bundle must stay alive until the checkpoint.
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.requestCut();
      }, this.o.checkpointMs);
    }
    this.lastDurable = durable;
    return true;
  }

  /**
   * Queues a cut unless one is already waiting to start. A cut waits for its checkpoint to be
   * durable (up to a group-commit interval), and records keep coming meanwhile: without this, every
   * append past the threshold queued a cut of its own, thousands of them in a fast loop, each
   * holding its closures and promises until its turn (measured: 21,000 waiting at 25,000 records).
   * The waiting cut covers everything appended before it starts.
   */
  private requestCut(): void {
    if (this.cutWaiting) return;
    this.cutWaiting = true;
    void this.cut().catch(() => {});
  }

  /** Cuts a checkpoint over every appended record (serialized with other cuts) and resolves the bundles it covers. */
  cut(): Promise<Envelope> {
    const run = async (): Promise<Envelope> => {
      this.cutWaiting = false;
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
      // Awaiting entries are in index order: the covered ones are a prefix.
      let n = 0;
      while (n < this.awaiting.length && (this.awaiting[n] as Pending).index < size) n++;
      const covered = this.awaiting.slice(0, n);
      this.awaiting = this.awaiting.slice(n);
      const checkpoint = env;
      const tree = log.tree;
      // Entries become durable in log order: when the last one is, all are.
      const last = covered[covered.length - 1];
      last?.durable?.then(
        () => {
          for (const a of covered) {
            this.ok(a, {
              mode: 'batched',
              record: { payload: a.record as Uint8Array, payloadType: PAYLOAD_TYPES.record, signatures: [] },
              inclusion: new LazyInclusionProof(tree, a.index, size),
              checkpoint,
            });
          }
        },
        (err) => {
          for (const a of covered) this.ko(a, err);
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

  private fail(err: unknown, items: Pending[]): void {
    const e =
      err instanceof EdgewardenError ? err : new EdgewardenError('EW_WARDEN_PIPELINE', String(err), { cause: err });
    this.failure ??= e;
    for (const it of items) this.ko(it, e);
    for (const a of this.awaiting.splice(0)) this.ko(a, e);
    for (const it of this.chunkItems.splice(0)) this.ko(it, e);
    this.chunk = undefined;
    this.view = undefined;
    this.f64 = undefined;
    this.used = 0;
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
