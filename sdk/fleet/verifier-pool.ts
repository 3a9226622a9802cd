import { Worker } from 'node:worker_threads';
import { OPEN_SODIUM_SOURCE, sodiumBinaryPath } from '../provenance/ed25519';

// The worker is inline source (eval) so that it works the same from TypeScript sources, the tsup
// bundle and a benchmark bundle: it needs node:crypto, and uses libsodium's binary when the main
// thread found one and it passes RFC 8032's test 2 (provenance/ed25519.ts: ~1.7x faster).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const keys = new Map();
${OPEN_SODIUM_SOURCE}
// The binary's verify takes (ArrayBuffer, offset, length) for signature, message and key.
const sodiumVerify = (b, buf, off, sigAt, msgAt, len) => b.crypto_sign_verify_detached(buf, sigAt, 64, buf, msgAt, len, buf, off, 32);
const opened = workerData && workerData.sodiumPath ? openSodiumBinary(require('node:module').createRequire, workerData.sodiumPath) : null;
const sodium = opened && typeof opened !== 'string' ? opened : null;
parentPort.on('message', ({ id, buf, n }) => {
  const b = Buffer.from(buf);
  const out = new Uint8Array(n);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const len = b.readUInt32LE(off + 96);
    if (sodium) {
      try { out[i] = sodiumVerify(sodium, buf, off, off + 32, off + 100, len) ? 1 : 0; } catch { out[i] = 0; }
      off += 100 + len;
      continue;
    }
    const raw = b.subarray(off, off + 32); off += 32;
    const sig = b.subarray(off, off + 64); off += 64;
    off += 4;
    const msg = b.subarray(off, off + len); off += len;
    const kh = raw.toString('base64');
    let key = keys.get(kh);
    if (!key) {
      try { key = createPublicKey({ key: Buffer.concat([PREFIX, raw]), format: 'der', type: 'spki' }); } catch { key = null; }
      if (keys.size > 200000) keys.clear();
      keys.set(kh, key);
    }
    try { out[i] = key && verify(null, msg, key, sig) ? 1 : 0; } catch { out[i] = 0; }
  }
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

interface Job {
  raw: Uint8Array;
  sig: Uint8Array;
  msg: Uint8Array;
  resolve(ok: boolean): void;
}

/**
 * Ed25519 verification on worker threads, batched: signatures queued in one turn of the event loop
 * go to one worker in one message (a transferred buffer), so the per-signature cost of the thread
 * hop is small. Verification is the collector's dominant CPU cost (about 90 µs a signature), so on
 * a machine with spare cores this multiplies throughput.
 */
export class VerifierPool {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, Job[]>();
  private queue: Job[] = [];
  private scheduled = false;
  private nextId = 1;
  private rr = 0;
  private closed = false;

  constructor(
    readonly threads: number,
    private readonly maxBatch = 256,
  ) {
    const sodiumPath = sodiumBinaryPath().path;
    this.workers = Array.from({ length: threads }, () => {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { sodiumPath: sodiumPath ?? null } });
      w.unref();
      w.on('message', (m: { id: number; out: Uint8Array }) => {
        const jobs = this.pending.get(m.id);
        if (!jobs) return;
        this.pending.delete(m.id);
        for (let i = 0; i < jobs.length; i++) jobs[i]!.resolve(m.out[i] === 1);
      });
      // A worker that dies fails its batches closed (as invalid), never open.
      w.on('error', () => this.failAll());
      return w;
    });
  }

  /** Queues one check; resolves with whether `sig` is a valid signature of `msg` by the raw key. */
  verify(raw: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
    if (this.closed || raw.length !== 32 || sig.length !== 64) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.queue.push({ raw, sig, msg, resolve });
      if (this.queue.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const jobs = this.queue.splice(0, this.maxBatch);
      let size = 0;
      for (const j of jobs) size += 100 + j.msg.length;
      const buf = new ArrayBuffer(size);
      const b = Buffer.from(buf);
      let off = 0;
      for (const j of jobs) {
        b.set(j.raw, off);
        b.set(j.sig, off + 32);
        b.writeUInt32LE(j.msg.length, off + 96);
        b.set(j.msg, off + 100);
        off += 100 + j.msg.length;
      }
      const id = this.nextId++;
      this.pending.set(id, jobs);
      const w = this.workers[this.rr++ % this.workers.length]!;
      w.postMessage({ id, buf, n: jobs.length }, [buf]);
    }
  }

  private failAll(): void {
    for (const jobs of this.pending.values()) for (const j of jobs) j.resolve(false);
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const j of this.queue.splice(0)) j.resolve(false);
    this.failAll();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
