import { createHash, createHmac, createPrivateKey, sign as cryptoSign, randomBytes, verify } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { TensorMap } from '../engine/tensor';
import { sodiumBinaryPath } from '../provenance/ed25519';
import { KeySigner, toPublicKey } from '../provenance/keys';
import { type DecisionOutcome, decodeRecord, encodeRecord, type RecordFields } from '../provenance/record';
import { tensorDigest } from '../provenance/tensor-digest';
import { canonicalSize, canonicalTensorBytes, writeCanonicalMap } from './canonical';
import { DigestWorker, loadRecordEncoder } from './sign-worker';

const tensors: TensorMap = {
  b: { type: 'float32', dims: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, Number.NaN]) },
  a: { type: 'int64', dims: [1], data: new BigInt64Array([-5n]) },
  é: { type: 'bool', dims: [2], data: new Uint8Array([1, 0]) },
  s: { type: 'string', dims: [2], data: ['héllo', ''] },
  h: { type: 'float16', dims: [], data: new Uint16Array([0x3c00]) },
  z: { type: 'uint8', dims: [0], data: new Uint8Array(0) },
  // a view into a larger buffer: only the viewed bytes count
  v: { type: 'int32', dims: [2], data: new Int32Array(new Int32Array([9, 8, 7, 6]).buffer, 4, 2) },
};

let worker: DigestWorker | undefined;
afterEach(async () => {
  await worker?.close();
  worker = undefined;
});

describe('canonicalTensorBytes', () => {
  it('hashes to the provenance tensorDigest, plain and salted', () => {
    const bytes = new Uint8Array(canonicalTensorBytes(tensors));
    expect(createHash('sha256').update(bytes).digest()).toEqual(Buffer.from(tensorDigest(tensors)));
    const salt = new Uint8Array(32).fill(7);
    expect(createHmac('sha256', salt).update(bytes).digest()).toEqual(Buffer.from(tensorDigest(tensors, salt)));
  });

  it('canonicalSize + writeCanonicalMap (the pipeline path) write the same bytes, one tensor or many', () => {
    const maps: TensorMap[] = [
      tensors,
      { b: tensors.b as TensorMap[string] },
      { s: tensors.s as TensorMap[string] },
      {},
    ];
    for (const m of maps) {
      const size = canonicalSize(m);
      const out = Buffer.alloc(size + 8, 0xee);
      expect(writeCanonicalMap(m, out, 3)).toBe(3 + size);
      expect(out.subarray(3, 3 + size).equals(Buffer.from(canonicalTensorBytes(m)))).toBe(true);
      expect(out[3 + size]).toBe(0xee);
    }
  });

  it('one tensor whose dims, dtype or data change between calls under the same name is written anew each time', () => {
    const seq: TensorMap[] = [
      { x: { type: 'float32', dims: [1, 4], data: new Float32Array([1, 2, 3, 4]) } },
      { x: { type: 'float32', dims: [2, 2], data: new Float32Array([1, 2, 3, 4]) } },
      { x: { type: 'float32', dims: [4], data: new Float32Array([1, 2, 3, 4]) } },
      { x: { type: 'int32', dims: [4], data: new Int32Array([1, 2, 3, 4]) } },
      { x: { type: 'uint8', dims: [4], data: new Uint8Array([9, 8, 7, 6]) } },
      { x: { type: 'float32', dims: [1, 4], data: new Float32Array([5, 6, 7, 8]) } },
      { x: { type: 'float32', dims: [1, 4], data: new Float32Array([5, 6, 7, 8]) } },
    ];
    for (const m of seq) {
      const size = canonicalSize(m);
      const out = Buffer.alloc(size);
      expect(writeCanonicalMap(m, out, 0)).toBe(size);
      expect(out.equals(Buffer.from(canonicalTensorBytes(m)))).toBe(true);
    }
  });

  it('copies small and large data of every fixed dtype exactly: NaN payloads, views at offsets, fresh arrays', () => {
    const nanBits = new Uint32Array([0x7fc00001, 0xffa00002, 0x7f800001]); // quiet, negative, signalling
    const f32 = new Float32Array(nanBits.buffer);
    const f64 = new Float64Array(new BigUint64Array([0x7ff0000000000001n, 0xfff8000000000123n]).buffer);
    const big = new Int32Array(40).map((_, i) => i * 7919);
    const datas: [TensorMap[string]['type'], () => TensorMap[string]['data']][] = [
      ['float32', () => new Float32Array(f32)],
      ['float64', () => new Float64Array(f64)],
      ['int8', () => new Int8Array([-1, 2, -3])],
      ['int16', () => new Int16Array([-300, 7])],
      ['uint16', () => new Uint16Array([65535, 1])],
      ['uint32', () => new Uint32Array([0xffffffff])],
      ['int64', () => new BigInt64Array([-5n, 9n])],
      ['uint64', () => new BigUint64Array([2n ** 64n - 1n])],
      ['int32', () => new Int32Array(big.buffer, 8, 3)], // a small view 8 bytes into a larger buffer
      ['int32', () => big], // above the small-copy limit
      ['bool', () => new Uint8Array([1, 0, 1])],
    ];
    for (const [type, make] of datas) {
      const data = make() as Exclude<TensorMap[string]['data'], string[]>;
      const one: TensorMap = { t: { type, dims: [data.length], data } };
      const size = canonicalSize(one);
      const out = Buffer.alloc(size);
      writeCanonicalMap(one, out, 0);
      expect(createHash('sha256').update(out).digest()).toEqual(Buffer.from(tensorDigest(one)));
      // The same tensor beside another (the planned path).
      const two: TensorMap = { ...one, u: { type: 'uint8', dims: [2], data: new Uint8Array([4, 5]) } };
      const size2 = canonicalSize(two);
      const out2 = Buffer.alloc(size2);
      writeCanonicalMap(two, out2, 0);
      expect(createHash('sha256').update(out2).digest()).toEqual(Buffer.from(tensorDigest(two)));
    }
  });

  it('returns a buffer it owns entirely (transferable) and an empty stream for no tensors', () => {
    const ab = canonicalTensorBytes({ x: { type: 'uint8', dims: [3], data: new Uint8Array([1, 2, 3]) } });
    expect(ab.byteLength).toBe(4 + 1 + 1 + 4 + 8 + 8 + 3);
    expect(canonicalTensorBytes({}).byteLength).toBe(0);
  });
});

describe('DigestWorker', () => {
  it('digests transferred buffers in order, equal to tensorDigest', async () => {
    const salt = new Uint8Array([1, 2, 3]);
    worker = new DigestWorker({ salt });
    const one = new Uint8Array(canonicalTensorBytes(tensors));
    const buf = new ArrayBuffer(one.length + 10);
    new Uint8Array(buf).set(one, 10);
    const out = await worker.digest(buf, [10, one.length, 3, 0]);
    expect(buf.byteLength).toBe(0); // transferred, not cloned
    expect(out.subarray(0, 32)).toEqual(tensorDigest(tensors, salt));
    expect(out.subarray(32, 64)).toEqual(tensorDigest({}, salt));
  });

  it.each([
    ['on its thread (libsodium below the limit where installed)', true],
    ['on the inference thread, before its thread is up (node:crypto)', false],
  ])('unsalted digests equal tensorDigest on both sides of the short-input limit, %s', async (_, threadAtStart) => {
    worker = new DigestWorker({ threadAtStart });
    // The canonical stream of one uint8 tensor named 't' is 26 bytes + its data: 357-359 bytes of
    // data put it at 383, 384 and 385 bytes.
    const sizes = [1, 10, 40, 90, 300, 357, 358, 359, 1000, 70_000];
    const maps = sizes.map(
      (n): TensorMap => ({ t: { type: 'uint8', dims: [n], data: new Uint8Array(n).fill(n & 0xff) } }),
    );
    const parts = maps.map((m) => new Uint8Array(canonicalTensorBytes(m)));
    const buf = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    const ranges: number[] = [];
    let o = 0;
    for (const p of parts) {
      buf.set(p, o);
      ranges.push(o, p.length);
      o += p.length;
    }
    const out = await worker.digest(buf.buffer, ranges);
    maps.forEach((m, i) => {
      expect(Buffer.from(out.subarray(i * 32, i * 32 + 32)).equals(Buffer.from(tensorDigest(m)))).toBe(true);
    });
  });

  it('signs with the key it was given; refuses to sign without one', async () => {
    const signer = KeySigner.generate();
    worker = new DigestWorker({ privateKeyPem: signer.privateKeyPem() });
    const msgs = [new Uint8Array([1]), new Uint8Array([2, 3])];
    const sigs = await worker.sign(msgs);
    for (let i = 0; i < 2; i++) {
      expect(
        verify(null, msgs[i] as Uint8Array, toPublicKey(signer.publicKey), sigs.subarray(i * 64, i * 64 + 64)),
      ).toBe(true);
    }
    // libsodium where sodium-native's binary is installed; the bytes are node:crypto's either way.
    expect(await worker.signerBackend()).toBe(sodiumBinaryPath().path ? 'libsodium' : 'node:crypto');
    const key = createPrivateKey(signer.privateKeyPem());
    const many = Array.from({ length: 50 }, (_, i) => randomBytes(i * 7));
    const manySigs = await worker.sign(many);
    many.forEach((m, i) => {
      expect(Buffer.from(manySigs.subarray(i * 64, i * 64 + 64)).equals(cryptoSign(null, m, key))).toBe(true);
    });
    await worker.close();
    worker = new DigestWorker({});
    expect(worker.canSign).toBe(false);
    expect(await worker.signerBackend()).toBe('none');
    await expect(worker.sign(msgs)).rejects.toMatchObject({ code: 'EW_WARDEN_PIPELINE' });
  });

  it('runs when workers inherit --input-type=module (the source is evaluated as an ES module)', async () => {
    worker = new DigestWorker({ execArgv: ['--input-type=module'], threadAtStart: true });
    const out = await worker.digest(canonicalTensorBytes(tensors), [0, 0]);
    expect(out).toEqual(tensorDigest({}));
  });

  it('answers its first request on this thread and starts its thread with the second', async () => {
    worker = new DigestWorker({});
    const threadOf = () => (worker as unknown as { thread?: unknown }).thread;
    expect(await worker.digest(canonicalTensorBytes(tensors), [0, 0])).toEqual(tensorDigest({}));
    await new Promise((r) => setImmediate(r));
    expect(threadOf()).toBeUndefined();
    expect(await worker.digest(canonicalTensorBytes(tensors), [0, 0])).toEqual(tensorDigest({}));
    await new Promise((r) => setImmediate(r));
    expect(threadOf()).toBeDefined();
    await worker.threadReady();
    expect(await worker.digest(canonicalTensorBytes(tensors), [0, 0])).toEqual(tensorDigest({}));
  });

  it('resolves answers in request order, whichever port brings them first (as across the hand-over)', async () => {
    worker = new DigestWorker({});
    const order: number[] = [];
    const answer = (n: number) => (d: Uint8Array) => {
      order.push(n);
      return d;
    };
    const first = worker.digest(new ArrayBuffer(8), [0, 8]).then(answer(1));
    const second = worker.digest(new ArrayBuffer(8), [0, 8]).then(answer(2));
    // The second answer arrives before the first: it waits for it.
    const early = new Uint8Array(32).fill(7);
    (worker as unknown as { onAnswer(m: { id: number; out: ArrayBuffer }): void }).onAnswer({
      id: 2,
      out: early.buffer,
    });
    await Promise.all([first, second]);
    expect(order).toEqual([1, 2]);
    expect(await second).toEqual(early);
    expect(await first).toEqual(new Uint8Array(createHash('sha256').update(new Uint8Array(8)).digest()));
  });

  it('goes on answering on this thread when its thread cannot start', async () => {
    worker = new DigestWorker({ execArgv: ['--no-such-node-flag'] });
    const empty = () => worker!.digest(canonicalTensorBytes(tensors), [0, 0]);
    expect(await empty()).toEqual(tensorDigest({}));
    expect(await empty()).toEqual(tensorDigest({})); // starts the thread, which fails
    await expect(worker.threadReady()).rejects.toMatchObject({ code: 'EW_WARDEN_PIPELINE' });
    expect(worker.threadError?.message).toMatch(/did not start/);
    expect(worker.error).toBeUndefined();
    expect(await empty()).toEqual(tensorDigest({}));
    expect(await worker.signerBackend()).toBe('none');
  });

  it('refuses requests after close', async () => {
    worker = new DigestWorker({});
    await worker.close();
    await expect(worker.digest(new ArrayBuffer(1), [0, 1])).rejects.toMatchObject({ code: 'EW_WARDEN_CLOSED' });
  });
});

describe('the record encoder of the worker', () => {
  const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
  const bytes = (n: number[]) => fc.uint8Array({ minLength: n[0], maxLength: n[n.length - 1] });
  const str = fc.string({ maxLength: 40, unit: 'grapheme' });
  const record: fc.Arbitrary<RecordFields> = fc.record({
    version: fc.constant(1),
    deviceKeyid: bytes([32]),
    index: fc.oneof(fc.constant(0), fc.nat(), fc.maxSafeNat()),
    timeUnixMs: fc.oneof(fc.constant(0), fc.maxSafeInteger(), fc.integer({ min: -(2 ** 40), max: 2 ** 45 })),
    bootId: fc.oneof(bytes([0]), bytes([16])),
    monotonicNs: fc.oneof(fc.constant(0), fc.maxSafeNat()),
    clockSynced: fc.boolean(),
    modelDigest: fc.oneof(bytes([0]), bytes([32])),
    modelName: str,
    policyDigest: bytes([0, 64]),
    decision: fc.record({
      outcome: fc.constantFrom<DecisionOutcome>('allowed', 'blocked', 'redacted'),
      ruleId: str,
      authority: str,
    }),
    inputDigest: bytes([32]),
    outputDigest: bytes([32]),
    executionProvider: str,
    runtimeVersion: str,
    sdkVersion: str,
    prevLeafHash: fc.oneof(bytes([0]), bytes([32])),
    labels: fc.dictionary(str, fc.string({ maxLength: 200, unit: 'grapheme' }), { maxKeys: 8 }),
    salted: fc.boolean(),
  });
  const encode = loadRecordEncoder();

  it('writes exactly the bytes of encodeRecord (protobufjs)', () => {
    fc.assert(
      fc.property(record, (r) => {
        const flat: Uint8Array[] = [];
        for (const k of Object.keys(r.labels)) flat.push(utf8(k), utf8(r.labels[k] as string));
        const mine = encode({
          ...r,
          modelName: utf8(r.modelName),
          outcome: { allowed: 1, blocked: 2, redacted: 3 }[r.decision.outcome],
          ruleId: utf8(r.decision.ruleId),
          authority: utf8(r.decision.authority),
          executionProvider: utf8(r.executionProvider),
          runtimeVersion: utf8(r.runtimeVersion),
          sdkVersion: utf8(r.sdkVersion),
          labels: flat,
        });
        expect(Buffer.from(mine).equals(Buffer.from(encodeRecord(r)))).toBe(true);
        expect(decodeRecord(mine).index).toBe(r.index);
      }),
      { numRuns: 500 },
    );
  });
});
