import { Worker } from 'node:worker_threads';
import { EdgewardenError } from '../errors';

// The worker is plain CommonJS evaluated from this string (`eval: true`) and needs only node:crypto,
// so it runs the same under vitest (TypeScript sources) and from the published bundle.
// Requests: { t: 'slot', slot, sab } shares a reusable SharedArrayBuffer once (no reply);
// { t: 'digest', id, slot | buf, ranges: [offset, length, ...] } → 32-byte SHA-256 (HMAC with the
// salt) of each range of that slot, or of a transferred one-off ArrayBuffer;
// { t: 'sign', id, buf, ranges } → 64-byte Ed25519 signature of each range. Results come back in
// one transferred buffer per request.
const WORKER_SOURCE = `
'use strict';
// Dynamic import works whether Node evaluates this as CommonJS or (under --input-type=module, which
// workers inherit) as an ES module. Messages wait in the port until the listener is attached.
(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const { createHash, createHmac, createPrivateKey, sign } = await import('node:crypto');
  const salt = workerData.salt ? Buffer.from(workerData.salt) : null;
  const key = workerData.privateKeyPem ? createPrivateKey(workerData.privateKeyPem) : null;
  const slots = [];
  parentPort.on('message', (m) => {
    if (m.t === 'slot') {
      slots[m.slot] = m.sab;
      return;
    }
    try {
      let out;
      if (m.t === 'digest') {
        const src = m.buf !== undefined ? m.buf : slots[m.slot];
        const n = m.ranges.length / 2;
        out = new Uint8Array(n * 32);
        for (let i = 0; i < n; i++) {
          const h = salt ? createHmac('sha256', salt) : createHash('sha256');
          h.update(new Uint8Array(src, m.ranges[2 * i], m.ranges[2 * i + 1]));
          out.set(h.digest(), i * 32);
        }
      } else if (m.t === 'sign') {
        if (!key) throw new Error('this worker holds no signing key');
        const n = m.ranges.length / 2;
        out = new Uint8Array(n * 64);
        for (let i = 0; i < n; i++) {
          out.set(sign(null, new Uint8Array(m.buf, m.ranges[2 * i], m.ranges[2 * i + 1]), key), i * 64);
        }
      } else {
        throw new Error('unknown request ' + m.t);
      }
      parentPort.postMessage({ id: m.id, out: out.buffer }, [out.buffer]);
    } catch (e) {
      parentPort.postMessage({ id: m.id, error: String((e && e.stack) || e) });
    }
  });
})();
`;

interface Pending {
  resolve(out: Uint8Array): void;
  reject(err: Error): void;
}

/**
 * A worker thread that digests canonical tensor bytes and signs records off the inference thread.
 * Requests are answered in order. The worker keeps the process alive only while requests are
 * pending, so an application that forgets close() still exits.
 */
export class DigestWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;
  /** True when this worker holds the private key and can sign. */
  readonly canSign: boolean;

  constructor(opts: { salt?: Uint8Array; privateKeyPem?: string; execArgv?: string[] }) {
    this.canSign = opts.privateKeyPem !== undefined;
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      ...(opts.execArgv ? { execArgv: opts.execArgv } : {}),
      workerData: { salt: opts.salt ? new Uint8Array(opts.salt) : null, privateKeyPem: opts.privateKeyPem ?? null },
    });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; out?: ArrayBuffer; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.out) p.resolve(new Uint8Array(m.out));
      else p.reject(new EdgewardenError('EW_WARDEN_PIPELINE', `digest worker: ${m.error}`));
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`digest worker exited with code ${code}`));
    });
  }

  /** Set once the worker has failed; every later request is refused with it. */
  get error(): Error | undefined {
    return this.failure;
  }

  /**
   * Shares a reusable buffer with the worker as slot `slot`. Posting a small message that names a
   * shared slot costs a few µs; transferring a fresh multi-MB buffer was measured at 0.1–0.9 ms a
   * post on a busy 2-core machine, most of the overhead the warden added to a 0.6 ms inference.
   */
  addSlot(slot: number, sab: SharedArrayBuffer): void {
    if (this.failure || this.closed) return;
    this.worker.postMessage({ t: 'slot', slot, sab });
  }

  /**
   * SHA-256 (HMAC-SHA256 with the salt) of each `[offset, length]` range of a shared slot (a number)
   * or of `buf`, 32 bytes each, concatenated. A `buf` is transferred, never cloned.
   */
  digest(source: number | ArrayBuffer, ranges: number[]): Promise<Uint8Array> {
    if (typeof source === 'number') return this.request({ t: 'digest', slot: source, ranges }, []);
    return this.request({ t: 'digest', buf: source, ranges }, [source]);
  }

  /** Ed25519 signatures of each message, 64 bytes each, concatenated. The messages travel in one transferred buffer. */
  sign(msgs: Uint8Array[]): Promise<Uint8Array> {
    let total = 0;
    for (const m of msgs) total += m.length;
    const buf = new Uint8Array(total);
    const ranges: number[] = [];
    let o = 0;
    for (const m of msgs) {
      buf.set(m, o);
      ranges.push(o, m.length);
      o += m.length;
    }
    return this.request({ t: 'sign', buf: buf.buffer, ranges }, [buf.buffer]);
  }

  private request(msg: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<Uint8Array> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new EdgewardenError('EW_WARDEN_CLOSED', 'digest worker is closed'));
    const id = this.nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  private fail(cause: unknown): void {
    if (this.failure) return;
    this.failure = new EdgewardenError('EW_WARDEN_PIPELINE', `digest worker failed: ${(cause as Error).message}`, {
      cause,
    });
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  /** Stops the worker (after the caller has awaited its pending requests). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.worker.terminate();
  }
}
