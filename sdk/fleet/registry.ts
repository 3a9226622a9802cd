import type { KeyObject } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgewardenError } from '../errors';
import type { Envelope } from '../provenance/dsse';
import { deviceIdOf, keyIdOf, rawPublicKey, toPublicKey } from '../provenance/keys';
import type { DeviceRecord, Store } from './store';
import type { EnrolledKey } from './verify-message';

/** What the collector keeps in memory per device, so the hot path needs no database read. */
export interface DeviceState {
  id: string;
  key: EnrolledKey | undefined;
  /** Current birth's bd_seq, as this collector last saw it. */
  bdSeq: number | null;
  storedSeq: number | null;
  checkpoint: { size: number; root: Uint8Array } | undefined;
  /** The embedded checkpoint envelope last verified (skips re-verifying identical bytes). */
  seenCheckpoint: Envelope | undefined;
  /** Last computed online flag and compliance state (to emit changes). */
  online: boolean;
  compliance: string;
  /** Wall time of the last store read for a pending device (approval is polled, rate-limited). */
  checkedMs: number;
}

/** An enrollment (allowlist) key file: one public key per device. */
export interface EnrollmentKey {
  deviceId: string;
  keyid: Uint8Array;
  publicKey: Uint8Array;
  key: KeyObject;
  file: string;
}

/**
 * Reads an enrollment directory: every `*.pub` / `*.pem` file is one device's SPKI PEM public key;
 * the device id is the hex of the first 16 bytes of its keyid (the file name does not matter).
 */
export async function readEnrollmentDir(dir: string): Promise<EnrollmentKey[]> {
  let names: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
    names = (await readdir(dir)).filter((f) => f.endsWith('.pub') || f.endsWith('.pem')).sort();
  } catch (cause) {
    throw new EdgewardenError('EW_FLEET_OPTIONS', `enrollment directory ${dir} cannot be read`, { cause });
  }
  const out: EnrollmentKey[] = [];
  for (const name of names) {
    const file = join(dir, name);
    let key: KeyObject;
    try {
      key = toPublicKey(await readFile(file, 'utf8'));
    } catch (cause) {
      throw new EdgewardenError('EW_FLEET_OPTIONS', `${file} is not an Ed25519 public key (SPKI PEM)`, { cause });
    }
    const publicKey = rawPublicKey(key);
    const keyid = keyIdOf(publicKey);
    out.push({ deviceId: deviceIdOf(keyid), keyid, publicKey, key, file });
  }
  return out;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** The collector's device cache, backed by the store (the source of truth shared by collectors). */
export class Registry {
  private readonly byId = new Map<string, DeviceState>();
  private readonly byKeyId = new Map<string, EnrolledKey>();
  /** Device ids looked up in the store and not found, with the time (negative cache). */
  private readonly missing = new Map<string, number>();
  /** Store reads for devices not in the cache, at most this many a second. */
  static readonly LOOKUPS_PER_SECOND = 200;
  private lookupSecond = 0;
  private lookups = 0;

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /** Key lookup for {@link verifyDeviceMessage}. */
  readonly lookup = (keyidHex: string): EnrolledKey | undefined => this.byKeyId.get(keyidHex);

  get(id: string): DeviceState | undefined {
    return this.byId.get(id);
  }

  all(): IterableIterator<DeviceState> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }

  /** Loads every device of the store. */
  async loadAll(): Promise<void> {
    for (const d of await this.store.listDevices()) this.put(d);
  }

  /** Records an enrollment in the store (insert only) and caches the device. */
  async enroll(e: {
    deviceId: string;
    publicKey: Uint8Array;
    status: 'approved' | 'pending';
    fleet?: string;
  }): Promise<DeviceState> {
    const keyid = keyIdOf(e.publicKey);
    const rec = await this.store.enroll({
      deviceId: e.deviceId,
      keyid: hex(keyid),
      publicKey: hex(e.publicKey),
      status: e.status,
      nowMs: this.now(),
      ...(e.fleet ? { fleet: e.fleet } : {}),
    });
    return this.put(rec);
  }

  /**
   * Makes sure a device known to the store (enrolled, approved or seen by another collector) is in
   * the cache. Unknown ids are re-checked at most once per `retryMs`.
   */
  async ensure(id: string, retryMs = 1000): Promise<DeviceState | undefined> {
    const have = this.byId.get(id);
    if (have?.key) return have;
    const miss = this.missing.get(id);
    if (miss !== undefined && this.now() - miss < retryMs) return have;
    // Garbage on made-up device topics must not turn into one database read per message.
    const second = Math.floor(this.now() / 1000);
    if (second !== this.lookupSecond) {
      this.lookupSecond = second;
      this.lookups = 0;
    }
    if (++this.lookups > Registry.LOOKUPS_PER_SECOND) return have;
    const rec = await this.store.getDevice(id);
    if (!rec?.publicKey) {
      this.missing.set(id, this.now());
      if (this.missing.size > 100_000) this.missing.clear();
      return have;
    }
    this.missing.delete(id);
    return this.put(rec);
  }

  /** Re-reads a pending device (at most once per `everyMs`) so an approval made elsewhere takes effect. */
  async refreshPending(s: DeviceState, everyMs = 1000): Promise<void> {
    if (s.key?.status !== 'pending' || this.now() - s.checkedMs < everyMs) return;
    s.checkedMs = this.now();
    const rec = await this.store.getDevice(s.id);
    if (rec?.status === 'approved') s.key.status = 'approved';
  }

  /** Caches (or refreshes) a device from its store record. */
  put(rec: DeviceRecord): DeviceState {
    let s = this.byId.get(rec.id);
    if (!s) {
      s = {
        id: rec.id,
        key: undefined,
        bdSeq: rec.bdSeq,
        storedSeq: rec.storedSeq,
        checkpoint: undefined,
        seenCheckpoint: undefined,
        online: false,
        compliance: 'unknown',
        checkedMs: 0,
      };
      this.byId.set(rec.id, s);
    }
    if (rec.bdSeq !== null && (s.bdSeq === null || rec.bdSeq > s.bdSeq)) s.bdSeq = rec.bdSeq;
    if (rec.storedSeq !== null && (s.storedSeq === null || rec.storedSeq > s.storedSeq)) s.storedSeq = rec.storedSeq;
    if (
      rec.checkpointSize !== null &&
      rec.checkpointRoot &&
      (!s.checkpoint || rec.checkpointSize > s.checkpoint.size)
    ) {
      s.checkpoint = { size: rec.checkpointSize, root: Buffer.from(rec.checkpointRoot, 'hex') };
    }
    if (rec.publicKey && rec.keyid) {
      if (!s.key) {
        const raw = new Uint8Array(Buffer.from(rec.publicKey, 'hex'));
        s.key = { deviceId: rec.id, key: toPublicKey(raw), status: rec.status, raw };
        this.byKeyId.set(rec.keyid, s.key);
      } else s.key.status = rec.status;
    }
    s.checkedMs = this.now();
    return s;
  }
}
