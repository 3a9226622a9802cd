import {
  closeSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { EdgewardenError } from '../errors';
import { crc32c } from '../util/crc32c';
import { syncDir } from '../util/durable-file';
import { SYSTEM_TIMERS, type Timers } from './backoff';

/** When appended records reach the disk: fsync per record, at most every `groupMs`, or never (page cache only). */
export type OutboxDurability = 'always' | 'group' | 'none';

/** Options of {@link Outbox.open}. */
export interface OutboxOptions {
  /** Most entries held; the oldest are dropped first (counted). Default 1000. */
  maxEntries?: number;
  /** Default 'group': a process kill loses nothing (writes are in the page cache), power loss at most `groupMs`. */
  durability?: OutboxDurability;
  /** fsync interval for 'group' (default 1000 ms). */
  groupMs?: number;
  /** Largest payload accepted (default 256 KiB). */
  maxPayloadBytes?: number;
  timers?: Timers;
}

/** One queued message. */
export interface OutboxEntry {
  seq: number;
  timeUnixMs: number;
  payload: Uint8Array;
}

/** What was found and repaired when the outbox was opened after a crash. */
export interface OutboxRecovery {
  /** Bytes of an incomplete or damaged tail that were cut off. */
  truncatedBytes: number;
  /** The lock of a process that is gone was taken over. */
  staleLockPid?: number;
}

const PUT = 1;
const ACK = 2;
const REMOVE = 3;
const DROP = 4;
const META = 5;
const LOG = 'outbox.log';
const LOCK = 'lock';

function fail(message: string, cause?: unknown): never {
  throw new EdgewardenError('EW_TELEMETRY_OUTBOX', message, cause === undefined ? {} : { cause });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `u32 len ‖ u8 type ‖ body ‖ u32 crc32c(type ‖ body)`, len = 1 + body length, little-endian. */
function frame(type: number, body: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(4 + 1 + body.length + 4);
  b.writeUInt32LE(1 + body.length, 0);
  b[4] = type;
  b.set(body, 5);
  b.writeUInt32LE(crc32c(b, 0, 4, 5 + body.length), 5 + body.length);
  return b;
}

function u64s(...values: number[]): Buffer {
  const b = Buffer.allocUnsafe(8 * values.length);
  values.forEach((v, i) => {
    b.writeBigUInt64LE(BigInt(v), i * 8);
  });
  return b;
}

/**
 * A durable, bounded, on-disk queue of messages keyed by a strictly increasing seq, one per broker.
 * Append-only log of CRC-checked records (put, cumulative ack, remove, drop); every mutation is a
 * synchronous write, so a process kill loses nothing that a method returned from; fsync per the
 * durability policy. Compacted (rewritten and atomically renamed) when dead records pile up.
 * One process at a time: a lock file holds the owner's pid (a dead owner's lock is taken over).
 */
export class Outbox {
  readonly dir: string;
  readonly maxEntries: number;
  readonly recovery: OutboxRecovery;
  private readonly durability: OutboxDurability;
  private readonly groupMs: number;
  private readonly maxPayload: number;
  private readonly timers: Timers;
  private fd: number;
  private readonly entries = new Map<number, OutboxEntry>();
  /** Seqs in put order (= ascending); removed ones are skipped lazily from `head`. */
  private order: number[] = [];
  private head = 0;
  private _dropped = 0;
  private _lastSeq = 0;
  private _ackedUpTo = 0;
  private records = 0;
  private dirty = false;
  private syncTimer: unknown;
  private closed = false;

  private constructor(dir: string, opts: OutboxOptions, fd: number, recovery: OutboxRecovery) {
    this.dir = dir;
    this.maxEntries = opts.maxEntries ?? 1000;
    this.durability = opts.durability ?? 'group';
    this.groupMs = opts.groupMs ?? 1000;
    this.maxPayload = opts.maxPayloadBytes ?? 256 * 1024;
    this.timers = opts.timers ?? SYSTEM_TIMERS;
    this.fd = fd;
    this.recovery = recovery;
  }

  /** Opens (creating) the outbox in `dir`, replaying its log and cutting off a torn tail. */
  static async open(dir: string, opts: OutboxOptions = {}): Promise<Outbox> {
    return Outbox.openSync(dir, opts);
  }

  /** Synchronous {@link Outbox.open}. */
  static openSync(dir: string, opts: OutboxOptions = {}): Outbox {
    if (opts.maxEntries !== undefined && (!Number.isSafeInteger(opts.maxEntries) || opts.maxEntries < 1)) {
      fail('maxEntries must be a positive integer');
    }
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (cause) {
      fail(`cannot create outbox directory ${dir}`, cause);
    }
    const recovery: OutboxRecovery = { truncatedBytes: 0 };
    const stale = takeLock(join(dir, LOCK));
    if (stale !== undefined) recovery.staleLockPid = stale;
    let fd: number;
    try {
      fd = openSync(join(dir, LOG), 'a+', 0o600);
    } catch (cause) {
      rmSync(join(dir, LOCK), { force: true });
      return fail(`cannot open ${join(dir, LOG)}`, cause);
    }
    const box = new Outbox(dir, opts, fd, recovery);
    box.replay();
    return box;
  }

  /** Entries held now. */
  get depth(): number {
    return this.entries.size;
  }

  /** Entries dropped because the bound was reached, since the outbox was created (cumulative). */
  get dropped(): number {
    return this._dropped;
  }

  /** Highest seq ever put (survives restarts and compaction). */
  get lastSeq(): number {
    return this._lastSeq;
  }

  /** Highest cumulative acknowledgement seen. */
  get ackedUpTo(): number {
    return this._ackedUpTo;
  }

  /**
   * Appends an entry. `seq` must exceed every seq put before. When the outbox is full the oldest
   * entry is dropped first; `build` is then called with the depth and cumulative drop count as they
   * are BEFORE this entry is added, so the payload can report them honestly.
   */
  put(seq: number, timeUnixMs: number, build: (s: { depth: number; dropped: number }) => Uint8Array): OutboxEntry {
    this.assertOpen();
    if (!Number.isSafeInteger(seq) || seq <= this._lastSeq)
      fail(`seq ${seq} must exceed the last seq ${this._lastSeq}`);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.first();
      if (!oldest) break;
      this.entries.delete(oldest.seq);
      this._dropped++;
      this.append(DROP, u64s(oldest.seq, this._dropped));
    }
    const payload = build({ depth: this.entries.size, dropped: this._dropped });
    if (payload.length > this.maxPayload) fail(`payload of ${payload.length} bytes exceeds ${this.maxPayload}`);
    const entry = { seq, timeUnixMs, payload };
    const body = Buffer.allocUnsafe(16 + payload.length);
    body.writeBigUInt64LE(BigInt(seq), 0);
    body.writeBigInt64LE(BigInt(timeUnixMs), 8);
    body.set(payload, 16);
    this.append(PUT, body);
    this.entries.set(seq, entry);
    this.order.push(seq);
    this._lastSeq = seq;
    // Offline for long, drops pile up as records too: keep the file proportional to what is held.
    this.maybeCompact();
    return entry;
  }

  /** Removes every entry with seq ≤ `upTo` (a collector receipt). Returns how many were removed. */
  ackUpTo(upTo: number): number {
    this.assertOpen();
    if (!Number.isSafeInteger(upTo) || upTo <= this._ackedUpTo) return 0;
    let n = 0;
    for (let e = this.first(); e && e.seq <= upTo; e = this.first()) {
      this.entries.delete(e.seq);
      n++;
    }
    this._ackedUpTo = upTo;
    this.append(ACK, u64s(upTo));
    this.maybeCompact();
    return n;
  }

  /** Removes one entry (a PUBACK from a broker without receipts). */
  remove(seq: number): boolean {
    this.assertOpen();
    if (!this.entries.delete(seq)) return false;
    this.append(REMOVE, u64s(seq));
    this.maybeCompact();
    return true;
  }

  /** The entry with this seq, if held. */
  get(seq: number): OutboxEntry | undefined {
    return this.entries.get(seq);
  }

  /** The oldest entry held. */
  first(): OutboxEntry | undefined {
    while (this.head < this.order.length) {
      const e = this.entries.get(this.order[this.head]!);
      if (e) return e;
      this.head++;
    }
    this.trimOrder();
    return undefined;
  }

  /** The first entry with seq ≥ `seq`, in O(log n). */
  firstAtOrAfter(seq: number): OutboxEntry | undefined {
    let lo = this.head;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.order[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.order.length; i++) {
      const e = this.entries.get(this.order[i]!);
      if (e) return e;
    }
    return undefined;
  }

  /** Entries held, oldest first. */
  *[Symbol.iterator](): IterableIterator<OutboxEntry> {
    for (let i = this.head; i < this.order.length; i++) {
      const e = this.entries.get(this.order[i]!);
      if (e) yield e;
    }
  }

  /** fsyncs now. */
  flush(): void {
    if (this.closed || !this.dirty) return;
    fsyncSync(this.fd);
    this.dirty = false;
  }

  /** Flushes, releases the lock and closes the file. */
  close(): void {
    if (this.closed) return;
    if (this.syncTimer !== undefined) this.timers.clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    if (this.durability !== 'none') this.flush();
    this.closed = true;
    closeSync(this.fd);
    rmSync(join(this.dir, LOCK), { force: true });
  }

  /** Rewrites the log with only what is live; atomic (temp file, fsync, rename). */
  compact(): void {
    this.assertOpen();
    const parts: Buffer[] = [frame(META, u64s(this._lastSeq, this._dropped, this._ackedUpTo))];
    for (const e of this) {
      const body = Buffer.allocUnsafe(16 + e.payload.length);
      body.writeBigUInt64LE(BigInt(e.seq), 0);
      body.writeBigInt64LE(BigInt(e.timeUnixMs), 8);
      body.set(e.payload, 16);
      parts.push(frame(PUT, body));
    }
    const tmp = join(this.dir, `${LOG}.tmp`);
    writeFileSync(tmp, Buffer.concat(parts), { mode: 0o600 });
    const tfd = openSync(tmp, 'r+');
    if (this.durability !== 'none') fsyncSync(tfd);
    closeSync(tfd);
    renameSync(tmp, join(this.dir, LOG));
    if (this.durability !== 'none') syncDir(this.dir);
    closeSync(this.fd);
    this.fd = openSync(join(this.dir, LOG), 'a+', 0o600);
    this.records = parts.length;
    this.order = [...this.entries.keys()];
    this.head = 0;
  }

  private assertOpen(): void {
    if (this.closed) throw new EdgewardenError('EW_TELEMETRY_CLOSED', 'outbox closed');
  }

  private append(type: number, body: Uint8Array): void {
    writeSync(this.fd, frame(type, body));
    this.records++;
    if (this.durability === 'always') {
      fsyncSync(this.fd);
    } else if (this.durability === 'group') {
      this.dirty = true;
      this.syncTimer ??= this.timers.setTimeout(() => {
        this.syncTimer = undefined;
        if (!this.closed) this.flush();
      }, this.groupMs);
    }
  }

  private maybeCompact(): void {
    if (this.records > Math.max(1024, 4 * (this.entries.size + 1))) this.compact();
  }

  private trimOrder(): void {
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  private replay(): void {
    const buf = readFileSync(join(this.dir, LOG));
    let off = 0;
    while (off + 4 <= buf.length) {
      const len = buf.readUInt32LE(off);
      if (len < 1 || len > this.maxPayload + 64 || off + 4 + len + 4 > buf.length) break;
      const crc = buf.readUInt32LE(off + 4 + len);
      if (crc32c(buf, 0, off + 4, off + 4 + len) !== crc) break;
      const type = buf[off + 4]!;
      const body = buf.subarray(off + 5, off + 4 + len);
      if (!this.apply(type, body)) break;
      this.records++;
      off += 4 + len + 4;
    }
    if (off < buf.length) {
      // A torn or damaged tail: a kill mid-write. Cut it so appends continue from a clean record.
      this.recovery.truncatedBytes = buf.length - off;
      ftruncateSync(this.fd, off);
      if (this.durability !== 'none') fsyncSync(this.fd);
    }
    this.order = [...this.entries.keys()].sort((a, b) => a - b);
  }

  private apply(type: number, body: Buffer): boolean {
    const u = (i: number) => Number(body.readBigUInt64LE(i * 8));
    switch (type) {
      case PUT: {
        if (body.length < 16) return false;
        const seq = u(0);
        const payload = new Uint8Array(body.subarray(16));
        this.entries.set(seq, { seq, timeUnixMs: Number(body.readBigInt64LE(8)), payload });
        this._lastSeq = Math.max(this._lastSeq, seq);
        return true;
      }
      case ACK: {
        if (body.length !== 8) return false;
        const upTo = u(0);
        for (const seq of [...this.entries.keys()]) if (seq <= upTo) this.entries.delete(seq);
        this._ackedUpTo = Math.max(this._ackedUpTo, upTo);
        return true;
      }
      case REMOVE:
        if (body.length !== 8) return false;
        this.entries.delete(u(0));
        return true;
      case DROP:
        if (body.length !== 16) return false;
        this.entries.delete(u(0));
        this._dropped = Math.max(this._dropped, u(1));
        return true;
      case META:
        if (body.length !== 24) return false;
        this._lastSeq = Math.max(this._lastSeq, u(0));
        this._dropped = Math.max(this._dropped, u(1));
        this._ackedUpTo = Math.max(this._ackedUpTo, u(2));
        return true;
      default:
        return false;
    }
  }
}

/** Takes the lock; returns the pid of a dead previous owner whose lock was taken over. */
function takeLock(path: string): number | undefined {
  for (let i = 0; i < 2; i++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') fail(`cannot create lock ${path}`, e);
    }
    let pid = Number.NaN;
    try {
      const fd = openSync(path, 'r');
      pid = fstatSync(fd).size > 0 ? Number(readFileSync(fd, 'utf8')) : Number.NaN;
      closeSync(fd);
    } catch {
      // Vanished between the two calls: retry.
    }
    if (Number.isInteger(pid) && pid !== process.pid && pidAlive(pid)) {
      fail(`outbox ${path} is in use by process ${pid}`);
    }
    rmSync(path, { force: true });
    if (Number.isInteger(pid)) {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return pid;
    }
  }
  return fail(`cannot take lock ${path}`);
}
