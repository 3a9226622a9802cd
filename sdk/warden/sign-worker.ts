import * as nodeCrypto from 'node:crypto';
import { createRequire } from 'node:module';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { EdgewardenError } from '../errors';
import { PAYLOAD_TYPES } from '../provenance/dsse';
import { OPEN_SODIUM_SOURCE, sodiumBinaryPath } from '../provenance/ed25519';
import { RECORD_LIMITS } from '../provenance/record';

// The provenance worker. Its source is plain JavaScript evaluated from these strings (`eval: true`
// on the worker thread, `new Function` on the inference thread until that thread is up) and needs
// only node:crypto (libsodium's binary, where the main thread found one, is optional, and used on
// the worker thread only), so it runs the same under vitest (TypeScript sources) and from the
// published bundle.
//
// RECORD_ENCODER_SOURCE defines `encodeRecordInto(w, r)`: the protobuf bytes of a provenance record
// exactly as protobufjs' generated `Record.encode` writes them (proto3: default values omitted,
// fields in number order, map entries with both key and value). A test evaluates the same source on
// the main thread and compares it byte for byte with `encodeRecord`.
/**
 * Bytes of the fixed header in front of each item of a chunk: eleven float64 slots (time, monotonic
 * ns, clock synced, outcome, model id, policy digest id, rule id id, authority id, labels id, input
 * bytes, output bytes), padded to a multiple of 8.
 */
export const ITEM_HEADER_BYTES = 88;

/** Longest input the worker hashes with libsodium's SHA-256; longer ones go to OpenSSL's. */
const SODIUM_SHA256_MAX_BYTES = 384;

const RECORD_ENCODER_SOURCE = `
function makeWriter(size) {
  return { buf: Buffer.allocUnsafeSlow(size), pos: 0 };
}
function ensure(w, n) {
  if (w.pos + n <= w.buf.length) return;
  let size = w.buf.length * 2;
  while (size < w.pos + n) size *= 2;
  const next = Buffer.allocUnsafeSlow(size);
  w.buf.copy(next, 0, 0, w.pos);
  w.buf = next;
}
function varint(w, v) {
  // v: a non-negative safe integer (no 32-bit bit operations above 2^31).
  ensure(w, 10);
  const b = w.buf;
  while (v >= 0x80) {
    b[w.pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  b[w.pos++] = v;
}
function int64(w, v) {
  if (v >= 0) return varint(w, v);
  // Two's complement over 64 bits: ten bytes, as protobufjs writes a negative int64.
  ensure(w, 10);
  let x = BigInt.asUintN(64, BigInt(v));
  while (x >= 0x80n) {
    w.buf[w.pos++] = Number(x & 0x7fn) | 0x80;
    x >>= 7n;
  }
  w.buf[w.pos++] = Number(x);
}
function tag(w, t) {
  varint(w, t);
}
function bytesField(w, t, bytes) {
  if (bytes.length === 0) return;
  tag(w, t);
  varint(w, bytes.length);
  ensure(w, bytes.length);
  w.buf.set(bytes, w.pos);
  w.pos += bytes.length;
}
// Strings arrive as UTF-8 bytes (encoded once, when they were first seen).
const stringField = bytesField;
function encodeRecordInto(w, r) {
  if (r.version !== 0) { tag(w, 8); varint(w, r.version); }
  bytesField(w, 18, r.deviceKeyid);
  if (r.index !== 0) { tag(w, 24); varint(w, r.index); }
  if (r.timeUnixMs !== 0) { tag(w, 32); int64(w, r.timeUnixMs); }
  bytesField(w, 42, r.bootId);
  if (r.monotonicNs !== 0) { tag(w, 48); varint(w, r.monotonicNs); }
  if (r.clockSynced) { tag(w, 56); varint(w, 1); }
  bytesField(w, 66, r.modelDigest);
  stringField(w, 74, r.modelName);
  bytesField(w, 82, r.policyDigest);
  // decision: always present, so always written (possibly empty).
  let dlen = 0;
  if (r.outcome !== 0) dlen += 1 + varintSize(r.outcome);
  if (r.ruleId.length > 0) dlen += 1 + varintSize(r.ruleId.length) + r.ruleId.length;
  if (r.authority.length > 0) dlen += 1 + varintSize(r.authority.length) + r.authority.length;
  tag(w, 90);
  varint(w, dlen);
  if (r.outcome !== 0) { tag(w, 8); varint(w, r.outcome); }
  stringField(w, 18, r.ruleId);
  stringField(w, 26, r.authority);
  bytesField(w, 98, r.inputDigest);
  bytesField(w, 106, r.outputDigest);
  stringField(w, 114, r.executionProvider);
  stringField(w, 122, r.runtimeVersion);
  stringField(w, 130, r.sdkVersion);
  bytesField(w, 138, r.prevLeafHash);
  const labels = r.labels;
  for (let i = 0; i < labels.length; i += 2) {
    const k = labels[i];
    const v = labels[i + 1];
    tag(w, 146);
    varint(w, 2 + varintSize(k.length) + k.length + varintSize(v.length) + v.length);
    tag(w, 10);
    varint(w, k.length);
    ensure(w, k.length);
    w.buf.set(k, w.pos);
    w.pos += k.length;
    tag(w, 18);
    varint(w, v.length);
    ensure(w, v.length);
    w.buf.set(v, w.pos);
    w.pos += v.length;
  }
  if (r.salted) { tag(w, 152); varint(w, 1); }
}
function varintSize(v) {
  let n = 1;
  while (v >= 0x80) { v = Math.floor(v / 0x80); n++; }
  return n;
}
`;

const SERVICE_SOURCE = `
// The digest service: answers the requests that arrive on \`port\` with port.postMessage. The worker
// thread runs it on its parentPort; until that thread is up, the inference thread runs the same code
// on a MessageChannel (then \`data.signSync\`, the application's signer, replaces the key file).
// Returns the request handler and a snapshot of the chain state, for the hand-over to the thread.
function startDigestService(port, workerData, crypto, createRequire, warm) {
  const { createHash, createHmac, createPrivateKey, hash, sign } = crypto;
  const salt = workerData.salt ? Buffer.from(workerData.salt) : null;
  const key = workerData.privateKeyPem ? createPrivateKey(workerData.privateKeyPem) : null;
  // One-shot crypto.hash (Node >= 20.12) is much cheaper than a Hash object per digest.
  const nodeSha256 = typeof hash === 'function' ? (view) => hash('sha256', view, 'buffer') : (view) => createHash('sha256').update(view).digest();
  // libsodium's binary when the main thread found one (provenance/ed25519.ts), loaded as the worker
  // thread starts; node:crypto otherwise (and always on the inference thread).
  const opened = workerData.sodiumPath ? openSodiumBinary(createRequire, workerData.sodiumPath) : null;
  const sodium = opened && typeof opened !== 'string' ? opened : null;
  // libsodium's SHA-256 has no per-call OpenSSL context to set up: ~2.4x faster for the short
  // inputs a record hashes (0.56 against 1.32 µs for 40 bytes, bench/ed25519.mjs on the 2-core
  // EPYC); OpenSSL's SHA instructions win from a few hundred bytes on.
  const sha256 = sodium
    ? (view) => {
        if (view.length > ${SODIUM_SHA256_MAX_BYTES}) return nodeSha256(view);
        const out = Buffer.allocUnsafe(32);
        sodium.crypto_hash_sha256(out, view);
        return out;
      }
    : nodeSha256;
  const nodeSign = workerData.signSync
    ? (msg) => Buffer.from(workerData.signSync(msg))
    : key
      ? (msg) => sign(null, msg, key)
      : null;
  const signMsg = key && sodium ? sodiumSigner(sodium, key, nodeSign) : nodeSign;
  const signer = !signMsg ? 'none' : signMsg === nodeSign ? 'node:crypto' : 'libsodium';
  const digestOf = salt ? (view) => createHmac('sha256', salt).update(view).digest() : sha256;
  // The record chain: set by 'chain', advanced by every record encoded.
  let index = 0;
  let prevLeaf = new Uint8Array(0);
  // The audit tree's right edge (MerkleTree.frontier): frontier[k] is the complete subtree of 2^k
  // leaves that waits for its right sibling. Each leaf completes one node per trailing 1-bit of its
  // index; their hashes travel back with the record, so the inference thread hashes nothing.
  let frontier = [];
  const nodeIn = Buffer.alloc(65);
  nodeIn[0] = 1;
  const dict = new Map();
  let ctx = null;
  const w = makeWriter(1 << 16);
  const NO_LABELS = [];
  // Parenthesized: V8 compiles it eagerly, while this worker boots, not when the first chunk waits.
  const onChunk = ((m) => {
    if (m.reset) dict.clear();
    const defs = m.defs;
    for (let i = 0; i < defs.length; i += 2) dict.set(defs[i], defs[i + 1]);
    const f64 = new Float64Array(m.buf, 0, m.used >>> 3);
    const u8 = new Uint8Array(m.buf);
    w.pos = 0;
    let off = 0;
    for (let n = 0; n < m.count; n++) {
      const h = off >>> 3;
      const inLen = f64[h + 9];
      const outLen = f64[h + 10];
      const body = off + ${ITEM_HEADER_BYTES};
      const model = dict.get(f64[h + 4]);
      const r = {
        version: ctx.version,
        deviceKeyid: ctx.keyid,
        index,
        timeUnixMs: f64[h],
        bootId: ctx.bootId,
        monotonicNs: f64[h + 1],
        clockSynced: f64[h + 2] === 1,
        modelDigest: model[1],
        modelName: model[0],
        policyDigest: dict.get(f64[h + 5]),
        outcome: f64[h + 3],
        ruleId: dict.get(f64[h + 6]),
        authority: dict.get(f64[h + 7]),
        inputDigest: digestOf(u8.subarray(body, body + inLen)),
        outputDigest: digestOf(u8.subarray(body + inLen, body + inLen + outLen)),
        executionProvider: model[2],
        runtimeVersion: model[3],
        sdkVersion: ctx.sdkVersion,
        prevLeafHash: prevLeaf,
        labels: f64[h + 8] < 0 ? NO_LABELS : dict.get(f64[h + 8]),
        salted: ctx.salted,
      };
      off = body + inLen + outLen;
      off = (off + 7) & ~7;
      // Entry: u8 status, u32 length, then the record (ok) or a message (1). A leading zero byte
      // before the record lets its leaf hash SHA-256(0x00 || record) be taken in place.
      const start = w.pos;
      ensure(w, 6);
      w.pos += 6;
      encodeRecordInto(w, r);
      const len = w.pos - start - 6;
      if (len > ${RECORD_LIMITS.maxBytes}) {
        const msg = Buffer.from('record: encodes to ' + len + ' bytes');
        w.pos = start;
        ensure(w, 5 + msg.length);
        w.buf[w.pos] = 1;
        w.buf.writeUInt32LE(msg.length, w.pos + 1);
        msg.copy(w.buf, w.pos + 5);
        w.pos += 5 + msg.length;
        continue; // this record fails alone; the chain goes on without it
      }
      w.buf[start] = 0;
      w.buf.writeUInt32LE(len, start + 1);
      w.buf[start + 5] = 0;
      const leaf = sha256(w.buf.subarray(start + 5, start + 6 + len));
      prevLeaf = leaf;
      // The byte after the length is the zero prefix, not part of the record: shift it out.
      w.buf.copyWithin(start + 5, start + 6, start + 6 + len);
      w.pos--;
      if (m.sign) {
        // Per-output: the binary DSSE envelope (payload 1, payload_type 2, signatures 3 {keyid 1, sig 2}).
        const rec = w.buf.subarray(start + 5, start + 5 + len);
        const sig = signMsg(Buffer.concat([ctx.paeHead(len), rec]));
        const envStart = w.pos;
        ensure(w, 4);
        w.pos += 4;
        bytesField(w, 10, rec);
        bytesField(w, 18, ctx.payloadType);
        tag(w, 26);
        varint(w, 2 + ctx.keyid.length + 2 + sig.length);
        bytesField(w, 10, ctx.keyid);
        bytesField(w, 18, sig);
        w.buf.writeUInt32LE(w.pos - envStart - 4, envStart);
      }
      // Then the number of tree nodes the leaf completes, the leaf hash, and the nodes' hashes, bottom up.
      ensure(w, 33 + 32 * 64);
      const countAt = w.pos;
      w.buf.set(leaf, w.pos + 1);
      w.pos += 33;
      let cur = leaf;
      let level = 0;
      for (let i = index; i % 2 === 1; i = (i - 1) / 2) {
        nodeIn.set(frontier[level], 1);
        nodeIn.set(cur, 33);
        cur = sha256(nodeIn);
        w.buf.set(cur, w.pos);
        w.pos += 32;
        level++;
      }
      w.buf[countAt] = level;
      frontier[level] = cur;
      index++;
    }
    const out = new Uint8Array(w.pos);
    out.set(w.buf.subarray(0, w.pos));
    port.postMessage({ id: m.id, out: out.buffer, buf: m.buf }, [out.buffer, m.buf]);
  });
  const handle = (m) => {
    try {
      if (m.t === 'chunk') return onChunk(m);
      if (m.t === 'chain') {
        // The dictionary travels with a hand-over from the service that ran before this one.
        if (m.dict) for (const [k, v] of m.dict) dict.set(k, v);
        index = m.index;
        prevLeaf = Buffer.from(m.prevLeaf);
        frontier = m.frontier.map((h) => (h ? Buffer.from(h) : undefined));
        const payloadType = Buffer.from(m.payloadType);
        ctx = {
          version: m.version,
          keyid: Buffer.from(m.keyid),
          bootId: Buffer.from(m.bootId),
          sdkVersion: Buffer.from(m.sdkVersion),
          salted: m.salted,
          payloadType,
          paeHead: (n) => Buffer.from('DSSEv1 ' + payloadType.length + ' ' + m.payloadType + ' ' + n + ' '),
        };
        // On the worker thread, warm the record encoder, the digest and, per-output, the signature
        // now, off the inference thread: its first chunk then does not pay for their first use
        // (about half a millisecond in a thread that has just started).
        if (!warm) return;
        const none = Buffer.alloc(0);
        const k = ctx.keyid;
        const v = ctx.sdkVersion;
        encodeRecordInto(w, { version: ctx.version, deviceKeyid: k, index: 1, timeUnixMs: 1, bootId: ctx.bootId,
          monotonicNs: 1, clockSynced: true, modelDigest: k, modelName: v, policyDigest: none, outcome: 1,
          ruleId: none, authority: none, inputDigest: k, outputDigest: k, executionProvider: v, runtimeVersion: v,
          sdkVersion: v, prevLeafHash: k, labels: NO_LABELS, salted: false });
        const leaf = sha256(w.buf.subarray(0, w.pos));
        if (signMsg) signMsg(Buffer.concat([ctx.paeHead(w.pos), leaf]));
        w.pos = 0;
        return;
      }
      let out;
      if (m.t === 'digest') {
        const n = m.ranges.length / 2;
        out = new Uint8Array(n * 32);
        for (let i = 0; i < n; i++) out.set(digestOf(new Uint8Array(m.buf, m.ranges[2 * i], m.ranges[2 * i + 1])), i * 32);
      } else if (m.t === 'signer') {
        out = new Uint8Array(Buffer.from(signer));
      } else if (m.t === 'sign') {
        if (!signMsg) throw new Error('this worker holds no signing key');
        const n = m.ranges.length / 2;
        out = new Uint8Array(n * 64);
        for (let i = 0; i < n; i++) out.set(signMsg(new Uint8Array(m.buf, m.ranges[2 * i], m.ranges[2 * i + 1])), i * 64);
      } else {
        throw new Error('unknown request ' + m.t);
      }
      port.postMessage({ id: m.id, out: out.buffer }, [out.buffer]);
    } catch (e) {
      port.postMessage({ id: m.id, error: String((e && e.stack) || e) });
    }
  };
  port.on('message', handle);
  return { handle, snapshot: () => ({ index, prevLeaf, frontier, dict: [...dict] }) };
}

// A signing function on libsodium, used only when it gives node:crypto's bytes (Ed25519 is
// deterministic); node:crypto's otherwise.
function sodiumSigner(b, key, fallback) {
  try {
    const seed = Buffer.from(key.export({ format: 'jwk' }).d, 'base64url');
    const pk = new Uint8Array(32);
    const sk = new Uint8Array(64);
    const made = b.crypto_sign_seed_keypair(pk, sk, seed) === 0;
    seed.fill(0);
    if (!made) return fallback;
    const signWith = (msg) => {
      const sig = Buffer.allocUnsafe(64);
      return b.crypto_sign_detached(sig, msg, sk) === 0 ? sig : fallback(msg);
    };
    const probe = Buffer.from('edgewarden: libsodium and node:crypto agree');
    return signWith(probe).equals(fallback(probe)) ? signWith : fallback;
  } catch {
    return fallback;
  }
}
`;

const WORKER_MAIN_SOURCE = `
// Dynamic import works whether Node evaluates this as CommonJS or (under --input-type=module, which
// workers inherit) as an ES module. Messages wait in the port until the listener is attached.
(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const crypto = await import('node:crypto');
  const { createRequire } = await import('node:module');
  startDigestService(parentPort, workerData, crypto, createRequire, true);
  parentPort.postMessage({ t: 'ready' });
})();
`;

const SERVICE_SOURCES = `${RECORD_ENCODER_SOURCE}\n${OPEN_SODIUM_SOURCE}\n${SERVICE_SOURCE}`;
const WORKER_SOURCE = `'use strict';\n${SERVICE_SOURCES}\n${WORKER_MAIN_SOURCE}`;

/**
 * The record encoder the worker runs, evaluated on this thread (tests compare it with
 * `encodeRecord`). Byte strings are raw bytes; strings are given as UTF-8 bytes; labels as a flat
 * list [key, value, key, value, ...] of UTF-8 bytes.
 */
export function loadRecordEncoder(): (r: WorkerRecord) => Uint8Array {
  const make = new Function(
    'Buffer',
    `${RECORD_ENCODER_SOURCE}\nreturn (r) => { const w = makeWriter(64); encodeRecordInto(w, r); return new Uint8Array(w.buf.subarray(0, w.pos)); };`,
  ) as (b: typeof Buffer) => (r: WorkerRecord) => Uint8Array;
  return make(Buffer);
}

/** A record as the worker's encoder takes it (see {@link loadRecordEncoder}). */
export interface WorkerRecord {
  version: number;
  deviceKeyid: Uint8Array;
  index: number;
  timeUnixMs: number;
  bootId: Uint8Array;
  monotonicNs: number;
  clockSynced: boolean;
  modelDigest: Uint8Array;
  modelName: Uint8Array;
  policyDigest: Uint8Array;
  outcome: number;
  ruleId: Uint8Array;
  authority: Uint8Array;
  inputDigest: Uint8Array;
  outputDigest: Uint8Array;
  executionProvider: Uint8Array;
  runtimeVersion: Uint8Array;
  sdkVersion: Uint8Array;
  prevLeafHash: Uint8Array;
  labels: Uint8Array[];
  salted: boolean;
}

/** The fields every record of this device shares, and where the chain starts. */
export interface ChainStart {
  version: number;
  keyid: Uint8Array;
  bootId: Uint8Array;
  sdkVersion: string;
  salted: boolean;
  /** Index of the next record (the log's size). */
  index: number;
  /** Leaf hash of the last record in the log; empty for none. */
  prevLeaf: Uint8Array;
  /** The log's tree's right edge ({@link MerkleTree.frontier}). */
  frontier: (Uint8Array | undefined)[];
}

/** One chunk of inferences for the worker: item headers and canonical tensor bytes in `buf`. */
export interface ChunkRequest {
  /** Transferred to the worker and back (see {@link ChunkResult.buf}); detached meanwhile. */
  buf: ArrayBuffer;
  used: number;
  count: number;
  /** New dictionary entries, [id, value, id, value, ...]: strings and byte strings as UTF-8/raw bytes, a model as [name, digest, provider, runtime], labels as a flat byte-string list. */
  defs: unknown[];
  /** Forget every dictionary entry before reading `defs`. */
  reset: boolean;
  /** Sign each record (per-output mode, a worker holding the key). */
  sign: boolean;
}

/** The worker's answer to a chunk. */
export interface ChunkResult {
  /**
   * Per item: u8 status (0 ok, 1 failed), u32 length, record bytes or a UTF-8 message; signed: then
   * u32 length and the binary envelope; ok: then u8 n, the 32-byte leaf hash and the n hashes of the
   * tree nodes the leaf completes, bottom up.
   */
  out: Uint8Array;
  /** The chunk's buffer, back for reuse. */
  buf: ArrayBuffer;
}

interface Pending {
  resolve(m: { out: ArrayBuffer; buf?: ArrayBuffer }): void;
  reject(err: Error): void;
}

/** Options of {@link DigestWorker}. */
export interface DigestWorkerOptions {
  /** HMAC-SHA256 key for tensor digests (salted records). */
  salt?: Uint8Array;
  /** The device key as PKCS#8 PEM: the worker thread signs records with it. */
  privateKeyPem?: string | undefined;
  /** Signs on the inference thread until the worker thread is up (the application's signer). */
  signSync?: (data: Uint8Array) => Uint8Array;
  /** Node options of the worker thread (tests). */
  execArgv?: string[];
  /**
   * Start the worker thread with the constructor rather than with the second request (default
   * false): until the thread is up, the inference thread answers requests itself.
   */
  threadAtStart?: boolean;
}

type Answer = { id: number; out?: ArrayBuffer; buf?: ArrayBuffer; error?: string; t?: string };

// Compiled once per process, the first time a DigestWorker answers on the inference thread.
let serviceFactory: ((b: typeof Buffer) => StartService) | undefined;
type StartService = (
  port: MessagePort,
  data: Record<string, unknown>,
  crypto: typeof import('node:crypto'),
  req: typeof createRequire,
  warm: boolean,
) => { handle(m: unknown): void; snapshot(): ChainState };
interface ChainState {
  index: number;
  prevLeaf: Uint8Array;
  frontier: (Uint8Array | undefined)[];
  dict: [unknown, unknown][];
}

/**
 * The provenance work, off the inference thread: canonical tensor digests, record encoding and the
 * hash chain, and (per-output, when it holds the key) Ed25519 signatures. Requests are answered in
 * order. The worker thread starts with the second request, not with the warden: a Node worker
 * takes ~30 ms of CPU to boot, which on a 2-core board would otherwise compete with loading the
 * model, and the first output of a process that has just started would wait for it. Until the
 * thread is up, the same code answers on the inference thread (a MessageChannel, with the same
 * transfer semantics); when the thread says it is ready, the chain state is handed over and every
 * later request goes to it. The worker keeps the process alive only while requests are pending, so
 * an application that forgets close() still exits.
 */
export class DigestWorker {
  private thread: Worker | undefined;
  private threadUp = false;
  private readonly ready: Promise<void>;
  private markReady!: () => void;
  private markNotReady!: (err: Error) => void;
  private threadFailure: Error | undefined;
  private inline: { near: MessagePort; far: MessagePort; service: ReturnType<StartService> } | undefined;
  private chainMsg: Record<string, unknown> | undefined;
  private requests = 0;
  private readonly pending = new Map<number, Pending>();
  /** Answers that came before an earlier request's (see onAnswer). */
  private readonly answered = new Map<number, Answer>();
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;
  /** True when this worker holds the private key and can sign. */
  readonly canSign: boolean;

  constructor(private readonly opts: DigestWorkerOptions) {
    this.canSign = opts.privateKeyPem !== undefined;
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve;
      this.markNotReady = reject;
    });
    this.ready.catch(() => undefined); // a thread that cannot start is not an unhandled rejection
    if (opts.threadAtStart) this.startThread();
    else this.startInline();
  }

  /** Set once the worker has failed; every later request is refused with it. */
  get error(): Error | undefined {
    return this.failure;
  }

  /** Why the worker thread could not start; the inference thread then answers every request itself. */
  get threadError(): Error | undefined {
    return this.threadFailure;
  }

  /** Where the record chain starts (once, before the first chunk). */
  startChain(c: ChainStart): void {
    if (this.failure || this.closed) return;
    this.chainMsg = {
      t: 'chain',
      version: c.version,
      keyid: c.keyid,
      bootId: c.bootId,
      sdkVersion: c.sdkVersion,
      salted: c.salted,
      index: c.index,
      prevLeaf: c.prevLeaf,
      frontier: c.frontier,
      payloadType: PAYLOAD_TYPES.record,
    };
    this.post(this.chainMsg, []);
  }

  /**
   * Digests a chunk's tensors, encodes and chains its records (and signs them when asked). The
   * chunk's buffer is transferred, never cloned, and comes back with the result. One message per
   * chunk: transferring a reused buffer costs a few µs, where copying into shared memory (which V8
   * does with relaxed atomic stores) was measured at ~30 µs per 110 KB on the inference thread.
   */
  chunk(req: ChunkRequest): Promise<ChunkResult> {
    return this.request(
      { t: 'chunk', buf: req.buf, used: req.used, count: req.count, defs: req.defs, reset: req.reset, sign: req.sign },
      [req.buf],
    ).then((m) => ({ out: new Uint8Array(m.out), buf: m.buf as ArrayBuffer }));
  }

  /**
   * SHA-256 (HMAC-SHA256 with the salt) of each `[offset, length]` range of `buf`, 32 bytes each,
   * concatenated. `buf` is transferred, never cloned.
   */
  digest(buf: ArrayBuffer, ranges: number[]): Promise<Uint8Array> {
    return this.request({ t: 'digest', buf, ranges }, [buf]).then((m) => new Uint8Array(m.out));
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
    return this.request({ t: 'sign', buf: buf.buffer, ranges }, [buf.buffer]).then((m) => new Uint8Array(m.out));
  }

  /** The Ed25519 implementation the worker thread signs with ('none' when it holds no key); starts it. */
  async signerBackend(): Promise<'libsodium' | 'node:crypto' | 'none'> {
    await this.threadReady().catch(() => undefined); // then the inference thread's service answers
    const m = await this.request({ t: 'signer' }, []);
    return Buffer.from(m.out).toString() as 'libsodium' | 'node:crypto' | 'none';
  }

  /**
   * Resolves once the worker thread answers every request (starts it if it has not started); rejects
   * with {@link threadError} when it cannot start.
   */
  threadReady(): Promise<void> {
    this.startThread();
    return this.ready;
  }

  private request(
    msg: Record<string, unknown>,
    transfer: ArrayBuffer[],
  ): Promise<{ out: ArrayBuffer; buf?: ArrayBuffer }> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new EdgewardenError('EW_WARDEN_CLOSED', 'digest worker is closed'));
    // The second request starts the thread: a process that signs one output and exits never pays for it.
    if (++this.requests === 2) setImmediate(() => this.startThread());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.refPorts(true);
      msg.id = id;
      this.post(msg, transfer);
    });
  }

  private post(msg: Record<string, unknown>, transfer: ArrayBuffer[]): void {
    if (this.threadUp || !this.inline) this.thread?.postMessage(msg, transfer);
    else this.inline.near.postMessage(msg, transfer);
  }

  private onAnswer(m: Answer): void {
    if (!this.pending.has(m.id)) return;
    this.answered.set(m.id, m);
    // In request order, also across the hand-over, where answers come through two ports.
    for (const [id, p] of this.pending) {
      const a = this.answered.get(id);
      if (!a) break;
      this.answered.delete(id);
      this.pending.delete(id);
      if (a.out) p.resolve(a as { out: ArrayBuffer; buf?: ArrayBuffer });
      else p.reject(new EdgewardenError('EW_WARDEN_PIPELINE', `digest worker: ${a.error}`));
    }
    if (this.pending.size === 0) this.refPorts(false);
  }

  private refPorts(on: boolean): void {
    const port = this.threadUp ? this.thread : this.inline?.near;
    if (on) port?.ref();
    else {
      this.thread?.unref();
      this.inline?.near.unref();
    }
  }

  /** The service on this thread, answering until the worker thread is up. */
  private startInline(): void {
    serviceFactory ??= new Function('Buffer', `'use strict';\n${SERVICE_SOURCES}\nreturn startDigestService;`) as (
      b: typeof Buffer,
    ) => StartService;
    const { port1: near, port2: far } = new MessageChannel();
    const data = {
      salt: this.opts.salt ? new Uint8Array(this.opts.salt) : null,
      privateKeyPem: this.opts.signSync ? null : (this.opts.privateKeyPem ?? null),
      signSync: this.opts.signSync ?? null,
      sodiumPath: null,
    };
    const service = serviceFactory(Buffer)(far, data, nodeCrypto, createRequire, false);
    near.on('message', (m: Answer) => this.onAnswer(m));
    near.unref();
    far.unref();
    this.inline = { near, far, service };
  }

  private startThread(): void {
    // Once: a thread that could not start is not tried again (threadError keeps why).
    if (this.thread || this.threadFailure || this.closed || this.failure) return;
    const sodiumPath = sodiumBinaryPath().path;
    let thread: Worker;
    try {
      thread = new Worker(WORKER_SOURCE, {
        eval: true,
        ...(this.opts.execArgv ? { execArgv: this.opts.execArgv } : {}),
        workerData: {
          salt: this.opts.salt ? new Uint8Array(this.opts.salt) : null,
          privateKeyPem: this.opts.privateKeyPem ?? null,
          sodiumPath: sodiumPath ?? null,
        },
        // Not piped to this process's stdio at start (that creates its stdout and stderr streams, ~0.6 ms
        // of a device's cold start); anything the worker writes is forwarded when it comes.
        stdout: true,
        stderr: true,
      });
    } catch (err) {
      this.threadFailed(err);
      return;
    }
    this.thread = thread;
    thread.stdout.on('data', (d: Buffer) => process.stdout.write(d));
    thread.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    thread.unref();
    thread.on('message', (m: Answer) => {
      if (m.t === 'ready') this.handOver();
      else this.onAnswer(m);
    });
    // Before it is up, a thread that fails leaves the requests where they are: on this thread.
    thread.on('error', (err) => (this.threadUp ? this.fail(err) : this.threadFailed(err)));
    thread.on('exit', (code) => {
      if (this.closed) return;
      const err = new Error(`digest worker exited with code ${code}`);
      if (this.threadUp) this.fail(err);
      else this.threadFailed(err);
    });
  }

  private threadFailed(cause: unknown): void {
    if (!this.inline) {
      this.fail(cause);
      return;
    }
    this.threadFailure ??= new EdgewardenError(
      'EW_WARDEN_PIPELINE',
      `the digest worker thread did not start (${(cause as Error).message}); the inference thread answers instead`,
      { cause },
    );
    this.markNotReady(this.threadFailure);
  }

  /** The thread is up: answer what the inline service still holds, then move the chain to the thread. */
  private handOver(): void {
    const inline = this.inline;
    if (inline) {
      for (let r = receiveMessageOnPort(inline.far); r; r = receiveMessageOnPort(inline.far)) {
        inline.service.handle(r.message);
      }
      const s = inline.service.snapshot();
      if (this.chainMsg) {
        this.thread?.postMessage({
          ...this.chainMsg,
          index: s.index,
          prevLeaf: s.prevLeaf,
          frontier: s.frontier,
          dict: s.dict,
        });
      }
    }
    this.threadUp = true;
    if (this.pending.size > 0) this.thread?.ref();
    this.markReady();
  }

  private fail(cause: unknown): void {
    if (this.failure) return;
    this.failure = new EdgewardenError('EW_WARDEN_PIPELINE', `digest worker failed: ${(cause as Error).message}`, {
      cause,
    });
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    this.answered.clear();
    this.markReady();
  }

  /** Stops the worker (after the caller has awaited its pending requests). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.markReady();
    this.inline?.near.close();
    this.inline?.far.close();
    await this.thread?.terminate();
  }
}
