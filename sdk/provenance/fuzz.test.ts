import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { edgewarden } from '../__generated__/provenance.js';
import { isEdgewardenError } from '../errors';
import { BASE_FILE, readBase, writeBase } from './audit-base';
import { segmentName } from './audit-format';
import { AuditLog } from './audit-log';
import { RESUME_FILE, readResume } from './audit-resume';
import { chain } from './audit-test-helpers';
import { verifyAuditExport, verifyAuditLog } from './audit-verify';
import {
  bundleFromJson,
  bundleToJson,
  decodeBundle,
  encodeBundle,
  type ProvenanceBundle,
  parseBundleJson,
} from './bundle';
import { decodeCheckpoint, signCheckpointSync } from './checkpoint';
import {
  decodeEnvelope,
  encodeEnvelope,
  envelopeFromJson,
  envelopePayloadOfType,
  envelopeToJson,
  PAYLOAD_TYPES,
  signEnvelopeSync,
} from './dsse';
import { KeySigner, TrustStore } from './keys';
import { leafHash, MerkleTree } from './merkle';
import { decodeRecord, encodeRecord, type RecordFields } from './record';
import { verifyBundle, verifyCheckpointConsistency } from './verifier';

// Hostile bytes into every decoder: each must return a valid result or throw a typed
// EdgewardenError, never crash, and never add anything to Object.prototype.

const protoKeys = Object.getOwnPropertyNames(Object.prototype).sort().join(',');
function expectPrototypeClean(): void {
  expect(Object.getOwnPropertyNames(Object.prototype).sort().join(',')).toBe(protoKeys);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
}

let cases = 0;
/** Runs `fn`; a throw must be an EdgewardenError. */
function safely(fn: () => unknown): void {
  cases++;
  try {
    fn();
  } catch (e) {
    if (!isEdgewardenError(e)) throw e;
    expect(e.code).toMatch(/^EW_PROVENANCE_/);
  }
  expectPrototypeClean();
}

const signer = KeySigner.generate();
const trust = new TrustStore([signer.publicKey]);
const outputs = { y: { dtype: 'float32' as const, dims: [1], data: [1] } };

function record(over: Partial<RecordFields> = {}): RecordFields {
  return {
    version: 1,
    deviceKeyid: signer.keyId,
    index: 0,
    timeUnixMs: 1,
    bootId: new Uint8Array(4),
    monotonicNs: 1,
    clockSynced: true,
    modelDigest: new Uint8Array(32),
    modelName: 'm',
    policyDigest: new Uint8Array(0),
    decision: { outcome: 'redacted', ruleId: 'r', authority: 'a' },
    inputDigest: new Uint8Array(32).fill(1),
    outputDigest: new Uint8Array(32).fill(2),
    executionProvider: 'cpu',
    runtimeVersion: '1',
    sdkVersion: '0',
    prevLeafHash: new Uint8Array(0),
    labels: { a: 'b', c: 'd' },
    salted: false,
    ...over,
  };
}

const validRecord = encodeRecord(record());
const recordEnv = signEnvelopeSync(signer, PAYLOAD_TYPES.record, validRecord);
const validEnvelope = encodeEnvelope(recordEnv);
const tree = new MerkleTree();
tree.append(leafHash(validRecord));
tree.append(leafHash(new Uint8Array([1])));
const cpEnv = signCheckpointSync(signer, {
  deviceKeyid: signer.keyId,
  treeSize: 2,
  rootHash: tree.root(),
  timeUnixMs: 3,
  bootId: new Uint8Array(2),
});
const validCheckpoint = cpEnv.payload;
const batched: ProvenanceBundle = {
  mode: 'batched',
  record: { payload: validRecord, payloadType: PAYLOAD_TYPES.record, signatures: [] },
  inclusion: { leafIndex: 0, treeSize: 2, hashes: tree.inclusionProof(0) },
  checkpoint: cpEnv,
};
const validBundle = encodeBundle(batched);
const validBundleJson = JSON.stringify(bundleToJson(batched));
const validExport = edgewarden.v1.AuditExport.encode({
  devicePublicKey: signer.publicKey,
  records: [validRecord],
  signedRecords: [recordEnv],
  checkpoints: [],
}).finish();

/** Random edits of a valid encoding: flips, overwrites, inserts, deletes, truncation. */
const mutated = (base: Uint8Array) =>
  fc
    .array(
      fc.tuple(
        fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((edits) => {
      const b = [...base];
      for (const [op, at, v] of edits) {
        const i = b.length === 0 ? 0 : at % b.length;
        if (op === 'flip') b[i] = (b[i] ?? 0) ^ (1 << (v % 8));
        else if (op === 'set') b[i] = v;
        else if (op === 'insert') b.splice(i, 0, v);
        else if (op === 'delete') b.splice(i, 1);
        else b.length = i;
      }
      return new Uint8Array(b);
    });

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** A tag for (field, wire type 2) followed by a huge or negative-looking length. */
const hugeLength = fc
  .tuple(
    fc.integer({ min: 1, max: 20 }),
    fc.constantFrom(2 ** 31 - 1, 2 ** 32 + 5, 2 ** 50, 2 ** 53 - 1, 1e9),
    fc.uint8Array({ maxLength: 8 }),
  )
  .map(([field, len, tail]) => new Uint8Array([field * 8 + 2, ...varint(len), ...tail]));

/** Deeply nested length-delimited fields and groups. */
const nested = fc
  .tuple(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 19 }), fc.boolean())
  .map(([depth, field, group]) => {
    if (group) return new Uint8Array(Array.from({ length: depth }, () => field * 8 + 3));
    let inner: number[] = [];
    for (let d = 0; d < Math.min(depth, 400); d++) inner = [field * 8 + 2, ...varint(inner.length), ...inner];
    return new Uint8Array(inner);
  });

/** A record whose labels map carries `__proto__`, `constructor` and `prototype` keys. */
const pollutingLabels = fc
  .array(
    fc.tuple(
      fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'polluted', 'x'),
      fc.string({ maxLength: 8 }),
    ),
    {
      maxLength: 6,
    },
  )
  .map((pairs) => {
    const parts: number[] = [...validRecord];
    for (const [k, v] of pairs) {
      const kb = [...Buffer.from(k)];
      const vb = [...Buffer.from(v)];
      const entry = [0x0a, ...varint(kb.length), ...kb, 0x12, ...varint(vb.length), ...vb];
      parts.push(0x92, 0x01, ...varint(entry.length), ...entry); // field 18, wire type 2
    }
    return new Uint8Array(parts);
  });

const hostileBytes = (base: Uint8Array) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 400 }) },
    { weight: 5, arbitrary: mutated(base) },
    { weight: 1, arbitrary: hugeLength },
    { weight: 1, arbitrary: nested },
  );

const jsonKeys = [
  '__proto__',
  'constructor',
  'prototype',
  'mode',
  'envelope',
  'record',
  'inclusion',
  'checkpoint',
  'payload',
  'payloadType',
  'signatures',
  'keyid',
  'sig',
  'labels',
  'polluted',
];
/** JSON text built from hostile keys and values, so `__proto__` arrives as an own key the way JSON.parse makes it. */
const hostileJsonValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(
      null,
      true,
      0,
      -1,
      2 ** 60,
      '',
      'per-output',
      'batched',
      PAYLOAD_TYPES.record,
      'AAAA',
      'zz',
      '00'.repeat(32),
    ),
    fc.string({ maxLength: 12 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(fc.tuple(fc.constantFrom(...jsonKeys), tie('value')), { maxLength: 5 }).map((pairs) => ({ pairs })),
  ),
})).value;

function toJsonText(v: unknown): string {
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && 'pairs' in v) {
    const pairs = (v as { pairs: [string, unknown][] }).pairs;
    return `{${pairs.map(([k, x]) => `${JSON.stringify(k)}:${toJsonText(x)}`).join(',')}}`;
  }
  if (Array.isArray(v)) return `[${v.map(toJsonText).join(',')}]`;
  return JSON.stringify(v) ?? 'null';
}

/** Valid bundle JSON with one subtree replaced by hostile JSON. */
const mutatedBundleJson = fc
  .tuple(
    hostileJsonValue,
    fc.constantFrom('envelope', 'record', 'inclusion', 'checkpoint', 'mode', '__proto__', 'extra'),
  )
  .map(([v, key]) => {
    const base = JSON.parse(validBundleJson) as Record<string, unknown>;
    const text = JSON.stringify(base);
    return `${text.slice(0, -1)},${JSON.stringify(key)}:${toJsonText(v)}}`;
  });

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  // The suite's budget: at least 10,000 hostile inputs in all.
  expect(cases).toBeGreaterThanOrEqual(10_000);
});

/**
 * Rewrites a checksummed file (SHA-256 trailer) with hostile bodies, re-sealed each time so that the
 * parser behind the checksum is what is tested; `read` must not throw and leave prototypes alone.
 */
function resealedHostile(file: string, numRuns: number, read: () => void): void {
  const good = new Uint8Array(readFileSync(file));
  const body = good.subarray(0, good.length - 32);
  fc.assert(
    fc.property(hostileBytes(body), (b) => {
      writeFileSync(file, Buffer.concat([b, createHash('sha256').update(b).digest()]));
      cases++;
      read();
      expectPrototypeClean();
    }),
    { numRuns },
  );
}

describe('hostile input never crashes a decoder or pollutes prototypes', () => {
  it('decodeRecord', () => {
    fc.assert(
      fc.property(hostileBytes(validRecord), (b) => safely(() => decodeRecord(b))),
      { numRuns: 2500 },
    );
    fc.assert(
      fc.property(pollutingLabels, (b) =>
        safely(() => {
          const r = decodeRecord(b);
          expect(Object.getPrototypeOf(r.labels)).toBe(null);
          expect(typeof r.labels.toString === 'function').toBe(false);
        }),
      ),
      { numRuns: 700 },
    );
  });

  it('decodeCheckpoint and decodeEnvelope', () => {
    fc.assert(
      fc.property(hostileBytes(validCheckpoint), (b) => safely(() => decodeCheckpoint(b))),
      { numRuns: 1200 },
    );
    fc.assert(
      fc.property(hostileBytes(validEnvelope), (b) =>
        safely(() => {
          const env = decodeEnvelope(b);
          const v = verifyBundle({ mode: 'per-output', record: env }, outputs, { trust });
          expect(v.ok).toBe(false);
        }),
      ),
      { numRuns: 1500 },
    );
  });

  it('envelopePayloadOfType (the audit scan on open): no throw, and the payload decodeEnvelope finds', () => {
    const recordType = new Uint8Array(Buffer.from(PAYLOAD_TYPES.record));
    expect(Buffer.from(envelopePayloadOfType(validEnvelope, recordType) ?? []).equals(Buffer.from(validRecord))).toBe(
      true,
    );
    expect(envelopePayloadOfType(validEnvelope, new Uint8Array(Buffer.from(PAYLOAD_TYPES.checkpoint)))).toBeUndefined();
    fc.assert(
      fc.property(hostileBytes(validEnvelope), (b) => {
        const fast = envelopePayloadOfType(b, recordType);
        let full: Uint8Array | undefined;
        try {
          const env = decodeEnvelope(b);
          if (env.payloadType === PAYLOAD_TYPES.record) full = env.payload;
        } catch {
          full = undefined;
        }
        // Where both read a record envelope they read the same payload. (The in-place reader refuses
        // wire types the full decoder would skip, and does not look inside signatures: audit verify
        // decodes those.)
        if (full !== undefined && fast !== undefined) expect(Buffer.from(fast).equals(Buffer.from(full))).toBe(true);
      }),
      { numRuns: 1500 },
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('decodeBundle, then verifyBundle', () => {
    fc.assert(
      fc.property(hostileBytes(validBundle), (b) =>
        safely(() => {
          const bundle = decodeBundle(b);
          verifyBundle(bundle, outputs, { trust });
        }),
      ),
      { numRuns: 1500 },
    );
  });

  it('DSSE JSON and bundle JSON, including __proto__ and constructor keys', () => {
    fc.assert(
      fc.property(hostileJsonValue, (v) => {
        const text = toJsonText(v);
        safely(() => envelopeFromJson(JSON.parse(text)));
        safely(() => parseBundleJson(text));
      }),
      { numRuns: 800 },
    );
    fc.assert(
      fc.property(mutatedBundleJson, (text) =>
        safely(() => {
          const b = parseBundleJson(text);
          verifyBundle(b, outputs, { trust });
        }),
      ),
      { numRuns: 800 },
    );
    fc.assert(
      fc.property(mutated(new Uint8Array(Buffer.from(validBundleJson))), (b) =>
        safely(() => {
          const v = verifyBundle(parseBundleJson(b), outputs, { trust });
          return v;
        }),
      ),
      { numRuns: 800 },
    );
    // Deep nesting in JSON text.
    for (const depth of [10, 1000, 100_000]) {
      safely(() => parseBundleJson(`${'['.repeat(depth)}${']'.repeat(depth)}`));
      safely(() =>
        bundleFromJson({
          mode: 'per-output',
          envelope: envelopeToJson(recordEnv),
          record: JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`),
        }),
      );
    }
  });

  it('verifyCheckpointConsistency with hostile envelopes and proofs', () => {
    const cpBytes = encodeEnvelope(cpEnv);
    fc.assert(
      fc.property(
        hostileBytes(cpBytes),
        fc.array(fc.uint8Array({ minLength: 31, maxLength: 33 }), { maxLength: 4 }),
        (b, proof) =>
          safely(() => {
            const v = verifyCheckpointConsistency(cpEnv, decodeEnvelope(b), proof, trust);
            if (v.ok) expect(v.newer.treeSize).toBeGreaterThanOrEqual(v.older.treeSize);
          }),
      ),
      { numRuns: 400 },
    );
  });

  it('verifyAuditExport', () => {
    fc.assert(
      fc.property(hostileBytes(validExport), (b) => safely(() => verifyAuditExport(b, { trust }))),
      { numRuns: 800 },
    );
  });

  it('the audit resume point: hostile contents behind a correct checksum never throw', async () => {
    const base = mkdtempSync(join(tmpdir(), 'ew-fuzz-resume-'));
    dirs.push(base);
    const log = await AuditLog.open(base, { durability: 'none' });
    for (const r of chain(signer, 5)) log.appendRecord(r);
    await log.appendCheckpoint(
      signCheckpointSync(signer, {
        deviceKeyid: signer.keyId,
        treeSize: 5,
        rootHash: log.tree.root(),
        timeUnixMs: 1,
        bootId: new Uint8Array(0),
      }),
    );
    await log.close();
    resealedHostile(join(base, RESUME_FILE), 1500, () => {
      const r = readResume(base);
      if (r) expect(r.tree.size).toBeLessThanOrEqual(2 ** 20);
    });
  });

  it('the audit base: hostile contents behind a correct checksum never throw', () => {
    const base = mkdtempSync(join(tmpdir(), 'ew-fuzz-base-'));
    dirs.push(base);
    const t = new MerkleTree();
    for (let i = 0; i < 37; i++) t.append(leafHash(new Uint8Array([i])));
    writeBase(base, {
      firstIndex: 37,
      firstSegment: '000000000003.seg',
      deviceKeyid: signer.keyId,
      edge: t.edgeBytes(37),
    });
    resealedHostile(join(base, BASE_FILE), 800, () => {
      const r = readBase(base);
      if (r) {
        expect(Number.isSafeInteger(r.firstIndex) && r.firstIndex > 0).toBe(true);
        expect(r.edge.every((h) => h.length === 32)).toBe(true);
      }
    });
  });

  it('the audit log scanner on hostile segment files', async () => {
    const base = mkdtempSync(join(tmpdir(), 'ew-fuzz-'));
    dirs.push(base);
    const good = join(base, 'good');
    const log = await AuditLog.open(good, { durability: 'none' });
    for (const r of chain(signer, 4)) log.appendRecord(r);
    await log.close();
    const seg = new Uint8Array(readFileSync(join(good, segmentName(0))));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(hostileBytes(seg), async (b) => {
        const dir = join(base, `d${n++}`);
        const { mkdirSync } = await import('node:fs');
        mkdirSync(dir);
        writeFileSync(join(dir, segmentName(0)), b);
        cases++;
        try {
          const report = await verifyAuditLog(dir);
          expect(report.size).toBeLessThanOrEqual(4);
          const opened = await AuditLog.open(dir, { durability: 'none' });
          await opened.close();
        } catch (e) {
          if (!isEdgewardenError(e)) throw e;
        }
        expectPrototypeClean();
        rmSync(dir, { recursive: true, force: true });
      }),
      { numRuns: 250 },
    );
  });
});
