import { createHash, type Hash } from 'node:crypto';
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { EdgewardenError } from '../errors';
import { type Clock, SYSTEM_CLOCK } from '../util/clock';
import { syncDir } from '../util/durable-file';
import { writeBase } from './audit-base';
import {
  ENTRY_KIND,
  type EntryKind,
  FRAME_OVERHEAD,
  MAX_ENTRY_BODY,
  segmentName,
  segmentNumber,
  writeFrame,
} from './audit-format';
import type { LeafReader } from './audit-leaves';
import { readResume, writeResume } from './audit-resume';
import { type AuditDamage, type SegmentDigest, scanAuditLog, type TornTail } from './audit-scan';
import { decodeCheckpoint } from './checkpoint';
import { decodeEnvelope, type Envelope, encodeEnvelope, PAYLOAD_TYPES } from './dsse';
import { leafHash, type MerkleTree } from './merkle';
import { readChainFields } from './record';

/** When an appended entry counts as durable. */
export type Durability = 'always' | 'group' | 'none';

export interface AuditLogOptions {
  /** `always`: fsync before `durable` resolves (concurrent appends share one fsync); `group` (default):
   * fsync every `groupMs`; `none`: written to the OS, never fsynced except on roll, flush and close. */
  durability?: Durability;
  /** Group-commit interval in ms (default 100). Uses the global setTimeout, so fake timers drive it. */
  groupMs?: number;
  /** Roll to a new segment file past this size (default 64 MiB). */
  segmentBytes?: number;
  clock?: Clock;
  /** This device's keyid: on open, a record naming another device is reported as damage (spliced). */
  deviceKeyid?: Uint8Array;
  /**
   * Retention in days: on open and whenever a segment is sealed, the oldest sealed segments last
   * written more than this long ago are deleted, after the base that lets the chain and the tree go
   * on without them is saved (see audit-base.ts). Records are kept at least this long (a policy's
   * `audit.retainDays` is such a minimum). Unset: everything is kept. Never applied to a damaged log.
   * Ages come from the system clock (file times): a segment written before the clock was set (dated
   * before 2025) counts as written at the first pass that sees a set clock.
   */
  retainDays?: number;
}

const DAY_MS = 86_400_000;
/** 2025-01-01: a file time before it was written by a clock that had not been set. */
const SANE_CLOCK_MS = Date.UTC(2025, 0, 1);

/** What open did about a torn tail: the bytes it dropped. */
export type AuditRecovery = TornTail;

/** The result of {@link AuditLog.appendRecord}. */
export interface AppendResult {
  index: number;
  leafHash: Uint8Array;
  /** Resolves when the entry is on disk as the durability mode defines; rejects on a write error. */
  durable: Promise<void>;
}

interface Generation {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

function newGeneration(): Generation {
  let resolveFn!: () => void;
  let rejectFn!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolveFn = res;
    rejectFn = rej;
  });
  // Callers may ignore `durable`; an unobserved rejection must not crash the process.
  promise.catch(() => {});
  return { promise, resolve: resolveFn, reject: rejectFn };
}

const CHUNK_BYTES = 256 * 1024;
const openDirs = new Set<string>();

function ioError(message: string, cause?: unknown): EdgewardenError {
  return new EdgewardenError('EW_PROVENANCE_AUDIT_IO', message, cause === undefined ? {} : { cause });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The device's append-only audit log: segment files of CRC-framed entries, the RFC 9162 Merkle tree
 * over its records, and the hash chain between them. One process appends at a time (a LOCK file
 * holds its pid). Open rebuilds the tree, drops a torn tail (recording a recovery event) and reports
 * damage before the tail without ever changing those bytes.
 */
export class AuditLog {
  /** The first damage found before the tail on open; appends continue in a new segment. */
  readonly damage: AuditDamage | undefined;
  /** The torn tail dropped on open, if there was one. */
  readonly recovery: AuditRecovery | undefined;
  /**
   * Records that open restored from the resume point (saved at the last close or segment roll)
   * instead of parsing them; 0 when it scanned the log from its first byte.
   */
  readonly resumed: number;
  readonly durability: Durability;

  private fd: number;
  private segNo: number;
  private segSize: number;
  private chunk = new Uint8Array(CHUNK_BYTES);
  private used = 0;
  private gen: Generation | undefined;
  private draining = false;
  private drainDone: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closeLater: number[] = [];
  private failed: EdgewardenError | undefined;
  private closed = false;
  private closing = false;
  private forceSync = false;
  private lastLeaf: Uint8Array;
  /** The device every record of this log names (set by the first record). */
  private device: Uint8Array | undefined;
  private latest: Envelope | undefined;
  private readonly groupMs: number;
  private readonly segmentBytes: number;
  private readonly clock: Clock;
  /** For the resume point: the SHA-256 of every earlier segment, and the running one of this segment. */
  private readonly sealed: SegmentDigest[];
  private activeHash: Hash | undefined;
  private recoveries: number;
  /** Index of the first record of the segment being written. */
  private segFirst: number;
  /** Where blocks of records start: the spilled tree reads older blocks back through it. */
  private readonly leaves: LeafReader;
  /** Segment number and byte offset of the frame the last push wrote. */
  private frameSeg = 0;
  private frameAt = 0;
  private readonly retainMs: number | undefined;
  /** Why the last retention pass removed nothing though it should have (kept for `retentionError`). */
  #retentionError: EdgewardenError | undefined;

  private constructor(
    readonly dir: string,
    readonly tree: MerkleTree,
    init: {
      fd: number;
      segNo: number;
      segSize: number;
      lastLeaf: Uint8Array;
      latest: Envelope | undefined;
      damage: AuditDamage | undefined;
      recovery: AuditRecovery | undefined;
      deviceKeyid: Uint8Array | undefined;
      opts: AuditLogOptions;
      resumed: number;
      sealed: SegmentDigest[];
      activeHash: Hash | undefined;
      recoveries: number;
      segFirst: number;
      leaves: LeafReader;
    },
  ) {
    this.segFirst = init.segFirst;
    this.leaves = init.leaves;
    // A block read back may still sit in the write buffer: write it out first (no fsync).
    this.leaves.beforeRead = () => {
      if (this.used > 0 && !this.failed && !this.closed) this.writeOut();
    };
    this.retainMs = init.opts.retainDays === undefined ? undefined : init.opts.retainDays * DAY_MS;
    this.resumed = init.resumed;
    this.sealed = init.sealed;
    this.activeHash = init.activeHash;
    this.recoveries = init.recoveries;
    this.fd = init.fd;
    this.segNo = init.segNo;
    this.segSize = init.segSize;
    this.lastLeaf = init.lastLeaf;
    this.device = init.deviceKeyid;
    this.latest = init.latest;
    this.damage = init.damage;
    this.recovery = init.recovery;
    this.durability = init.opts.durability ?? 'group';
    this.groupMs = init.opts.groupMs ?? 100;
    this.segmentBytes = init.opts.segmentBytes ?? 64 * 1024 * 1024;
    this.clock = init.opts.clock ?? SYSTEM_CLOCK;
  }

  /**
   * Opens (creating if needed) the log in `dir`. Throws `EW_PROVENANCE_AUDIT_LOCKED` when another
   * live process has it open, `EW_PROVENANCE_AUDIT_IO` when it cannot be read or written.
   */
  static async open(dir: string, opts: AuditLogOptions = {}): Promise<AuditLog> {
    const durability = opts.durability ?? 'group';
    if (!['always', 'group', 'none'].includes(durability)) {
      throw new EdgewardenError('EW_PROVENANCE_AUDIT_IO', `unknown durability ${String(durability)}`);
    }
    const days = opts.retainDays;
    if (days !== undefined && !(typeof days === 'number' && days > 0 && Number.isFinite(days))) {
      throw new EdgewardenError('EW_PROVENANCE_AUDIT_IO', `retainDays must be a positive number, got ${String(days)}`);
    }
    const abs = resolve(dir);
    try {
      mkdirSync(abs, { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw ioError(`cannot create audit directory ${abs}`, cause);
    }
    lock(abs);
    try {
      const scan = await scanAuditLog(abs, {
        readSync: true,
        segmentDigests: true,
        resume: readResume(abs),
        ...(opts.deviceKeyid ? { deviceKeyid: opts.deviceKeyid } : {}),
      });
      let segNo = 0;
      let segSize = 0;
      let recovery: AuditRecovery | undefined;
      const lastName = scan.segments.at(-1);
      if (lastName) segNo = segmentNumber(lastName);
      if (scan.damage) {
        // Never touch damaged bytes: continue in a fresh segment after the last one.
        if (lastName) segNo++;
      } else if (lastName) {
        segSize = scan.lastSegmentGoodBytes;
        if (scan.torn) {
          const fdT = openSync(join(abs, lastName), 'r+');
          try {
            ftruncateSync(fdT, scan.torn.offset);
            fdatasyncSync(fdT);
          } finally {
            closeSync(fdT);
          }
          recovery = scan.torn;
        }
      }
      // Left by a removal that a crash interrupted after the new base was saved (kept as evidence
      // when the log is damaged).
      for (const name of scan.damage ? [] : scan.staleSegments) {
        try {
          unlinkSync(join(abs, name));
        } catch {}
      }
      const fd = openSync(join(abs, segmentName(segNo)), 'a', 0o600);
      const log = new AuditLog(abs, scan.tree, {
        fd,
        segNo,
        segSize,
        lastLeaf: scan.lastLeafHash,
        latest: scan.checkpoints.at(-1)?.envelope,
        damage: scan.damage,
        recovery,
        deviceKeyid: scan.deviceKeyid,
        opts: { ...opts, durability },
        resumed: scan.resumed,
        // After damage the log goes on in a fresh segment and saves no resume point: every open
        // scans in full and reports the damage again.
        sealed: scan.damage ? [] : (scan.sealed ?? []),
        activeHash: scan.damage ? undefined : (scan.activeHash ?? createHash('sha256')),
        recoveries: scan.recoveries,
        // With no segment yet, lastSegmentFirst is the tree's size too.
        segFirst: scan.damage ? scan.tree.size : scan.lastSegmentFirst,
        leaves: scan.leaves,
      });
      // A removal at open is saved in a new resume point at once (the old one no longer applies).
      if (log.applyRetention()) log.saveResume();
      if (recovery) {
        log.recoveries++;
        const event = { timeUnixMs: log.clock.now(), ...recovery };
        log.push(ENTRY_KIND.recovery, new Uint8Array(Buffer.from(JSON.stringify(event), 'utf8')));
        await log.flush();
      }
      return log;
    } catch (e) {
      unlock(abs);
      if (e instanceof EdgewardenError) throw e;
      throw ioError(`cannot open the audit log in ${abs}`, e);
    }
  }

  /** Number of records (leaves). */
  get size(): number {
    return this.tree.size;
  }

  /** Index of the first record still kept (0 unless retention removed older segments). */
  get base(): number {
    return this.tree.base;
  }

  /** Why retention could not remove what it should have, the last time it ran (the log goes on). */
  get retentionError(): EdgewardenError | undefined {
    return this.#retentionError;
  }

  /** Leaf hash of the last record; empty when there is none. */
  get lastLeafHash(): Uint8Array {
    return this.lastLeaf.length > 32 ? this.lastLeaf.subarray(0, 32) : this.lastLeaf;
  }

  /**
   * Appends a record (its protobuf bytes; with `signedEnvelope`, the binary DSSE envelope around those
   * same bytes, stored instead). Synchronous: the record is in the tree on return. The record must carry
   * `index = size` and `prev_leaf_hash = lastLeafHash`, or `EW_PROVENANCE_AUDIT_CHAIN` is thrown.
   */
  appendRecord(recordBytes: Uint8Array, signedEnvelope?: Uint8Array): AppendResult {
    this.checkWritable();
    const chain = readChainFields(recordBytes);
    const index = this.tree.size;
    if (!chain || chain.index !== index || Buffer.compare(chain.prevLeafHash, this.lastLeafHash) !== 0) {
      throw new EdgewardenError(
        'EW_PROVENANCE_AUDIT_CHAIN',
        `record must have index ${index} and the previous leaf hash (got index ${chain?.index})`,
      );
    }
    if (this.device && Buffer.compare(chain.deviceKeyid, this.device) !== 0) {
      throw new EdgewardenError(
        'EW_PROVENANCE_AUDIT_CHAIN',
        `this log holds records of device ${Buffer.from(this.device).toString('hex').slice(0, 32)}; a new key needs a new audit directory`,
      );
    }
    if (signedEnvelope) {
      const env = decodeEnvelope(signedEnvelope);
      if (env.payloadType !== PAYLOAD_TYPES.record || Buffer.compare(env.payload, recordBytes) !== 0) {
        throw new EdgewardenError('EW_PROVENANCE_MALFORMED', 'signed envelope does not wrap these record bytes');
      }
    }
    const leaf = leafHash(recordBytes);
    const durable = this.push(
      signedEnvelope ? ENTRY_KIND.signedRecord : ENTRY_KIND.record,
      signedEnvelope ?? recordBytes,
    );
    this.leaves.note(index, this.frameSeg, this.frameAt);
    this.tree.append(leaf);
    this.lastLeaf = leaf;
    this.device ??= new Uint8Array(chain.deviceKeyid);
    return { index, leafHash: leaf, durable };
  }

  /**
   * {@link appendRecord} for a record whose chain the caller has already kept and whose leaf hash
   * and tree nodes it has already computed: `hashes` as {@link MerkleTree.appendHashed} takes them.
   * The warden's worker chains, hashes and (per-output) wraps the records it encodes, and the
   * pipeline passes the first record of each of its chunks through `appendRecord`, which checks all
   * of it again. Here only the frame is written; nothing is parsed or hashed. Returns the entry's
   * durability promise.
   */
  appendHashed(recordBytes: Uint8Array, hashes: Uint8Array, signedEnvelope?: Uint8Array): Promise<void> {
    this.checkWritable();
    const durable = this.push(
      signedEnvelope ? ENTRY_KIND.signedRecord : ENTRY_KIND.record,
      signedEnvelope ?? recordBytes,
    );
    this.leaves.note(this.tree.size, this.frameSeg, this.frameAt);
    try {
      this.tree.appendHashed(hashes);
    } catch (err) {
      // The frame is written but the tree refused it: nothing after it could be trusted to chain.
      this.failed = err instanceof EdgewardenError ? err : ioError('the audit tree refused a record', err);
      throw this.failed;
    }
    this.lastLeaf = hashes; // its first 32 bytes (a view is made only when asked for)
    return durable;
  }

  /**
   * Appends a signed checkpoint; resolves when it is durable. Its root must match this log's tree at
   * its size (`EW_PROVENANCE_AUDIT_CHECKPOINT` otherwise), so the log never holds a checkpoint that
   * would later read as tampering.
   */
  appendCheckpoint(envelope: Envelope): Promise<void> {
    this.checkWritable();
    if (envelope.payloadType !== PAYLOAD_TYPES.checkpoint) {
      throw new EdgewardenError('EW_PROVENANCE_PAYLOAD_TYPE', 'not a checkpoint envelope');
    }
    const cp = decodeCheckpoint(envelope.payload);
    if (this.device && Buffer.compare(cp.deviceKeyid, this.device) !== 0) {
      throw new EdgewardenError('EW_PROVENANCE_AUDIT_CHECKPOINT', 'checkpoint of another device than this log holds');
    }
    if (cp.treeSize > this.tree.size || Buffer.compare(this.tree.root(cp.treeSize), cp.rootHash) !== 0) {
      throw new EdgewardenError(
        'EW_PROVENANCE_AUDIT_CHECKPOINT',
        `checkpoint does not match the log at size ${cp.treeSize}`,
      );
    }
    const p = this.push(ENTRY_KIND.checkpoint, encodeEnvelope(envelope));
    this.latest = envelope;
    this.device ??= new Uint8Array(cp.deviceKeyid);
    return p;
  }

  /** The last checkpoint appended (or found on open). */
  latestCheckpoint(): Envelope | undefined {
    return this.latest;
  }

  /** Writes and fsyncs everything appended so far, whatever the durability mode. */
  async flush(): Promise<void> {
    if (this.failed) throw this.failed;
    // An empty generation still gets an fsync: data written earlier in `none` mode becomes durable too.
    this.gen ??= newGeneration();
    const g = this.gen;
    this.forceSync = true;
    this.startDrain();
    await g.promise;
  }

  /** Flushes, then closes the files and releases the lock. Appends after close throw. */
  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    try {
      await this.flush();
      this.saveResume();
    } finally {
      this.closed = true;
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      await this.drainDone;
      for (const fd of [...this.closeLater, this.fd]) {
        try {
          closeSync(fd);
        } catch {}
      }
      this.closeLater = [];
      unlock(this.dir);
    }
  }

  /**
   * Deletes the oldest sealed segments written before the retention period, oldest first (never the
   * segment being written, never with damage found: that evidence stays). The base is saved first;
   * the tree then forgets what only the removed records needed.
   */
  private applyRetention(): boolean {
    if (this.retainMs === undefined || this.damage || this.failed || !this.activeHash) return false;
    const now = this.clock.now();
    const cutoff = now - this.retainMs;
    let n = 0;
    try {
      for (; n < this.sealed.length; n++) {
        const path = join(this.dir, this.sealed[n]!.name);
        const written = statSync(path).mtimeMs;
        if (written < SANE_CLOCK_MS) {
          // Written while the clock was unset (a board without a real-time clock, before time sync):
          // its age is unknown, so it counts from now and is kept for a whole period.
          if (now >= SANE_CLOCK_MS) utimesSync(path, now / 1000, now / 1000);
          break;
        }
        if (written >= cutoff) break;
      }
    } catch (cause) {
      this.#retentionError = ioError('retention: cannot stat a sealed segment', cause);
      return false;
    }
    if (n === 0) return false;
    const keep = n < this.sealed.length ? this.sealed[n]! : { name: segmentName(this.segNo), first: this.segFirst };
    const removed = this.sealed.slice(0, n);
    if (keep.first > 0) {
      try {
        writeBase(this.dir, {
          firstIndex: keep.first,
          firstSegment: keep.name,
          deviceKeyid: this.device,
          edge: this.tree.edgeBytes(keep.first),
        });
        // The tree reads what it needs of the removed records now, while they are still there.
        this.tree.prune(keep.first);
      } catch (cause) {
        // Nothing was removed. A base already renamed into place makes the next open finish the job.
        this.#retentionError = ioError(
          'retention: cannot save the audit base (or read back what it needs); nothing was removed',
          cause,
        );
        return false;
      }
      this.leaves.rebase(keep.first, segmentNumber(keep.name));
    }
    this.sealed.splice(0, n);
    for (const seg of removed) {
      try {
        unlinkSync(join(this.dir, seg.name));
      } catch {
        // Older than the base's first segment: the next open deletes it.
      }
    }
    syncDir(this.dir);
    this.#retentionError = undefined;
    return true;
  }

  /** Saves the resume point for the next open (everything appended is written by now). */
  private saveResume(): void {
    if (!this.activeHash || this.failed || this.used > 0) return;
    writeResume(this.dir, {
      segments: [
        ...this.sealed,
        {
          name: segmentName(this.segNo),
          first: this.segFirst,
          bytes: this.segSize,
          sha256: this.activeHash.copy().digest(),
        },
      ],
      tree: this.tree,
      leaves: this.leaves,
      deviceKeyid: this.device,
      latest: this.latest,
      recoveries: this.recoveries,
    });
  }

  private checkWritable(): void {
    if (this.closed || this.closing) throw ioError('the audit log is closed');
    if (this.failed) throw this.failed;
  }

  /** Frames an entry into the write buffer and schedules the write per durability mode. */
  private push(kind: EntryKind, content: Uint8Array): Promise<void> {
    const frameLen = content.length + 1 + FRAME_OVERHEAD;
    if (content.length + 1 > MAX_ENTRY_BODY) throw new EdgewardenError('EW_PROVENANCE_MALFORMED', 'entry too large');
    if (this.segSize + this.used + frameLen > this.segmentBytes && this.segSize + this.used > 0) this.roll();
    if (this.used + frameLen > this.chunk.length) {
      this.writeOut();
      if (frameLen > this.chunk.length) this.chunk = new Uint8Array(frameLen);
    }
    this.frameSeg = this.segNo;
    this.frameAt = this.segSize + this.used;
    this.used += writeFrame(this.chunk, this.used, kind, content);
    this.gen ??= newGeneration();
    const g = this.gen;
    this.schedule();
    return g.promise;
  }

  private schedule(): void {
    if (this.durability === 'group') {
      if (!this.timer && !this.draining) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.startDrain();
        }, this.groupMs);
      }
    } else if (!this.flushQueued && !this.draining) {
      // Everything appended in this tick shares one write (and one fsync in `always`).
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        this.startDrain();
      });
    }
  }

  /** Writes the buffered frames to the current segment (page cache). */
  private writeOut(): void {
    let off = 0;
    try {
      while (off < this.used) off += writeSync(this.fd, this.chunk, off, this.used - off);
    } catch (cause) {
      this.failed = ioError(`cannot write the audit log in ${this.dir}`, cause);
      throw this.failed;
    }
    this.activeHash?.update(this.chunk.subarray(0, this.used));
    this.segSize += this.used;
    this.used = 0;
  }

  /** Ends the current segment (written and fsynced) and starts the next. */
  private roll(): void {
    this.writeOut();
    try {
      fdatasyncSync(this.fd);
    } catch (cause) {
      this.failed = ioError('cannot fsync the audit log', cause);
      throw this.failed;
    }
    // An async fsync may still be running on the old descriptor: close it once that is done.
    if (this.draining) this.closeLater.push(this.fd);
    else closeSync(this.fd);
    if (this.activeHash) {
      this.sealed.push({
        name: segmentName(this.segNo),
        first: this.segFirst,
        bytes: this.segSize,
        sha256: this.activeHash.digest(),
      });
      this.activeHash = createHash('sha256');
    }
    this.segNo++;
    this.fd = openSync(join(this.dir, segmentName(this.segNo)), 'a', 0o600);
    this.segSize = 0;
    this.segFirst = this.tree.size;
    this.applyRetention();
    // A sealed segment is a good place for a resume point: a crash later rescans at most one segment.
    this.saveResume();
  }

  private startDrain(): void {
    if (this.draining) return;
    this.draining = true;
    this.drainDone = this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.gen) {
        const g = this.gen;
        this.gen = undefined;
        const sync = this.durability !== 'none' || this.forceSync;
        this.forceSync = false;
        try {
          if (this.failed) throw this.failed;
          this.writeOut();
          if (sync) {
            const fd = this.fd;
            await new Promise<void>((res, rej) => fdatasync(fd, (err) => (err ? rej(err) : res())));
          }
          g.resolve();
        } catch (cause) {
          this.failed ??= ioError('cannot write or fsync the audit log', cause);
          g.reject(this.failed);
        }
        // In group mode the next batch waits for its own timer, unless a flush asked for it now.
        if (this.durability === 'group' && !this.forceSync) break;
      }
    } finally {
      this.draining = false;
      for (const fd of this.closeLater) {
        try {
          closeSync(fd);
        } catch {}
      }
      this.closeLater = [];
      if (this.gen && !this.closed) this.schedule();
    }
  }
}

function lockPath(dir: string): string {
  return join(dir, 'LOCK');
}

/** Takes the directory's LOCK file, replacing one left by a dead process. */
function lock(dir: string): void {
  if (openDirs.has(dir)) {
    throw new EdgewardenError('EW_PROVENANCE_AUDIT_LOCKED', `audit log ${dir} is already open in this process`);
  }
  const path = lockPath(dir);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx', mode: 0o600 });
      openDirs.add(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`cannot create ${path}`, e);
    }
    let pid = Number.NaN;
    try {
      pid = Number(readFileSync(path, 'utf8').trim());
    } catch {}
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
      throw new EdgewardenError('EW_PROVENANCE_AUDIT_LOCKED', `audit log ${dir} is open in process ${pid}`, {
        details: { pid },
      });
    }
    try {
      unlinkSync(path); // stale: its process is gone
    } catch {}
  }
  throw new EdgewardenError('EW_PROVENANCE_AUDIT_LOCKED', `cannot take the lock of ${dir}`);
}

function unlock(dir: string): void {
  openDirs.delete(dir);
  try {
    unlinkSync(lockPath(dir));
  } catch {}
}
