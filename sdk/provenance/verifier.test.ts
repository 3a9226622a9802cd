import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import {
  bundleFromJson,
  bundleToJson,
  decodeBundle,
  encodeBundle,
  type ProvenanceBundle,
  parseBundleJson,
} from './bundle';
import { signCheckpointSync } from './checkpoint';
import {
  decodeEnvelope,
  encodeEnvelope,
  envelopeFromJson,
  MAX_ENVELOPE_BYTES,
  PAYLOAD_TYPES,
  signEnvelopeSync,
  verifyEnvelope,
} from './dsse';
import { INTOTO_PAYLOAD_TYPE, recordToInTotoStatement, signInTotoStatement } from './intoto';
import { KeySigner, TrustStore } from './keys';
import { leafHash, MerkleTree } from './merkle';
import { decodeRecord, encodeRecord, type RecordFields } from './record';
import { tensorDigest } from './tensor-digest';
import { verifyBundle, verifyCheckpointConsistency } from './verifier';

const fx = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const golden = new KeySigner(createPrivateKey(fx('golden-device.key').toString('utf8')));
const goldenPub = fx('golden-device.pub').toString('utf8');
const io = JSON.parse(fx('golden-io.json').toString('utf8'));
const trust = new TrustStore([goldenPub]);
const goldenBin = new Uint8Array(fx('golden-record.bin'));
const perOutputText = fx('golden-bundle-per-output.json').toString('utf8');
const batchedText = fx('golden-bundle-batched.json').toString('utf8');

/** Decodes and verifies; any thrown EdgewardenError counts as a rejection with its code. */
function verdictOfBinary(bytes: Uint8Array): { ok: boolean; code?: string } {
  try {
    return verifyBundle({ mode: 'per-output', record: decodeEnvelope(bytes) }, io.outputs, {
      trust,
      inputs: io.inputs,
    });
  } catch (e) {
    if (isEdgewardenError(e)) return { ok: false, code: e.code };
    throw e;
  }
}

function verdictOfJson(text: Uint8Array): { ok: boolean; code?: string } {
  try {
    return verifyBundle(parseBundleJson(text), io.outputs, { trust, inputs: io.inputs });
  } catch (e) {
    if (isEdgewardenError(e)) return { ok: false, code: e.code };
    throw e;
  }
}

function flipEveryBit(
  bytes: Uint8Array,
  check: (b: Uint8Array) => { ok: boolean; code?: string },
): Map<string, number> {
  const codes = new Map<string, number>();
  const copy = new Uint8Array(bytes);
  for (let i = 0; i < copy.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      copy[i]! ^= 1 << bit;
      const v = check(copy);
      copy[i]! ^= 1 << bit;
      if (v.ok) throw new Error(`flipping bit ${bit} of byte ${i} still verifies`);
      expect(v.code).toMatch(/^EW_PROVENANCE_/);
      codes.set(v.code!, (codes.get(v.code!) ?? 0) + 1);
    }
  }
  return codes;
}

const codeOf = (v: ReturnType<typeof verifyBundle>) => (v.ok ? undefined : v.code);

function freshRecord(signer: KeySigner, over: Partial<RecordFields> = {}): RecordFields {
  return {
    version: 1,
    deviceKeyid: signer.keyId,
    index: 0,
    timeUnixMs: 1,
    bootId: new Uint8Array(16),
    monotonicNs: 2,
    clockSynced: false,
    modelDigest: new Uint8Array(32),
    modelName: 'm',
    policyDigest: new Uint8Array(0),
    decision: { outcome: 'allowed', ruleId: '', authority: '' },
    inputDigest: tensorDigest(io.inputs),
    outputDigest: tensorDigest(io.outputs),
    executionProvider: 'cpu',
    runtimeVersion: '1',
    sdkVersion: '0',
    prevLeafHash: new Uint8Array(0),
    labels: {},
    salted: false,
    ...over,
  };
}

describe('verifyBundle on the golden records', () => {
  it('accepts the golden per-output record and batched bundle', () => {
    const v = verifyBundle(parseBundleJson(perOutputText), io.outputs, { trust, inputs: io.inputs });
    expect(v).toMatchObject({ ok: true, record: { index: 0, modelName: 'golden' } });
    expect(verdictOfBinary(goldenBin)).toMatchObject({ ok: true });
    const b = verifyBundle(parseBundleJson(batchedText), io.outputs, { trust: [goldenPub], inputs: io.inputs });
    expect(b).toMatchObject({ ok: true, record: { index: 2 } });
    // Trust given as raw keys works too.
    expect(verifyBundle(parseBundleJson(batchedText), io.outputs, { trust: [golden.publicKey] }).ok).toBe(true);
  });

  it('rejects a changed output value and a changed input with their codes', () => {
    const bundle = parseBundleJson(perOutputText);
    const outputs = structuredClone(io.outputs);
    outputs.probs.data[1] = 0.7500001;
    expect(verifyBundle(bundle, outputs, { trust })).toMatchObject({ ok: false, code: 'EW_PROVENANCE_OUTPUT_DIGEST' });
    expect(verifyBundle(bundle, null as never, { trust })).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_OUTPUT_DIGEST',
    });
    const renamed = { probs2: io.outputs.probs, label: io.outputs.label };
    expect(verifyBundle(bundle, renamed, { trust })).toMatchObject({ ok: false, code: 'EW_PROVENANCE_OUTPUT_DIGEST' });
    const inputs = structuredClone(io.inputs);
    inputs.x.data[0] = 1.5;
    expect(verifyBundle(bundle, io.outputs, { trust, inputs })).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_INPUT_DIGEST',
      record: { index: 0 },
    });
    const batched = parseBundleJson(batchedText);
    expect(verifyBundle(batched, outputs, { trust })).toMatchObject({ ok: false, code: 'EW_PROVENANCE_OUTPUT_DIGEST' });
  });

  it('rejects a record whose input digest was changed (re-signed by another key, or not re-signed)', () => {
    const rec = decodeRecord(decodeEnvelope(goldenBin).payload);
    rec.inputDigest = new Uint8Array(32).fill(1);
    const unsigned = decodeEnvelope(goldenBin);
    unsigned.payload = encodeRecord(rec);
    expect(verifyBundle({ mode: 'per-output', record: unsigned }, io.outputs, { trust })).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_SIGNATURE',
    });
    const signed = signEnvelopeSync(golden, PAYLOAD_TYPES.record, encodeRecord(rec));
    expect(
      verifyBundle({ mode: 'per-output', record: signed }, io.outputs, { trust, inputs: io.inputs }),
    ).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_INPUT_DIGEST',
    });
  });

  it('rejects EVERY single-bit flip of the golden binary envelope', () => {
    const codes = flipEveryBit(goldenBin, verdictOfBinary);
    expect([...codes.values()].reduce((a, b) => a + b, 0)).toBe(goldenBin.length * 8);
    expect(codes.has('EW_PROVENANCE_SIGNATURE')).toBe(true);
  });

  it('rejects EVERY single-bit flip of the golden per-output DSSE/bundle JSON', () => {
    const bytes = new Uint8Array(Buffer.from(perOutputText, 'utf8'));
    const codes = flipEveryBit(bytes, verdictOfJson);
    expect(codes.has('EW_PROVENANCE_MALFORMED')).toBe(true);
  });

  it('rejects EVERY single-bit flip of the golden batched bundle JSON', () => {
    const bytes = new Uint8Array(Buffer.from(JSON.stringify(JSON.parse(batchedText)), 'utf8'));
    const codes = flipEveryBit(bytes, verdictOfJson);
    expect(codes.size).toBeGreaterThan(1);
  });

  it('rejects EVERY single-bit flip of the bare DSSE JSON envelope', () => {
    const dsse = JSON.stringify(JSON.parse(perOutputText).envelope);
    flipEveryBit(new Uint8Array(Buffer.from(dsse, 'utf8')), (b) => {
      let value: unknown;
      try {
        value = JSON.parse(Buffer.from(b).toString('utf8'));
      } catch {
        return { ok: false, code: 'EW_PROVENANCE_MALFORMED' }; // what parseBundleJson reports for bad JSON
      }
      try {
        return verifyBundle({ mode: 'per-output', record: envelopeFromJson(value) }, io.outputs, { trust });
      } catch (e) {
        if (isEdgewardenError(e)) return { ok: false, code: e.code };
        throw e;
      }
    });
  });

  it('rejects a signature by another key: untrusted, or trusted but not the record device', () => {
    const other = KeySigner.generate();
    const payload = decodeEnvelope(goldenBin).payload;
    const env = signEnvelopeSync(other, PAYLOAD_TYPES.record, payload);
    expect(verifyBundle({ mode: 'per-output', record: env }, io.outputs, { trust })).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_UNTRUSTED_KEY',
    });
    const both = new TrustStore([goldenPub, other.publicKey]);
    expect(verifyBundle({ mode: 'per-output', record: env }, io.outputs, { trust: both })).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_UNTRUSTED_KEY',
    });
    // Another key's signature under the golden keyid: signature failure.
    const forged = { ...env, signatures: [{ keyid: golden.keyId, sig: env.signatures[0]!.sig }] };
    expect(verifyBundle({ mode: 'per-output', record: forged }, io.outputs, { trust })).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_SIGNATURE',
    });
  });

  it('follows a trust array changed in place between calls', () => {
    const bundle = parseBundleJson(perOutputText);
    const keys: (string | Uint8Array)[] = [KeySigner.generate().publicKey];
    expect(codeOf(verifyBundle(bundle, io.outputs, { trust: keys }))).toBe('EW_PROVENANCE_UNTRUSTED_KEY');
    keys.push(goldenPub);
    expect(verifyBundle(bundle, io.outputs, { trust: keys }).ok).toBe(true);
    keys[1] = KeySigner.generate().publicKey;
    expect(codeOf(verifyBundle(bundle, io.outputs, { trust: keys }))).toBe('EW_PROVENANCE_UNTRUSTED_KEY');
  });

  it('rejects an unknown payloadType, even when correctly signed', () => {
    const payload = decodeEnvelope(goldenBin).payload;
    const env = signEnvelopeSync(golden, 'application/vnd.edgewarden.other.v1+protobuf', payload);
    expect(verifyBundle({ mode: 'per-output', record: env }, io.outputs, { trust })).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_PAYLOAD_TYPE',
    });
    const asCheckpoint = signEnvelopeSync(golden, PAYLOAD_TYPES.checkpoint, payload);
    expect(codeOf(verifyBundle({ mode: 'per-output', record: asCheckpoint }, io.outputs, { trust }))).toBe(
      'EW_PROVENANCE_PAYLOAD_TYPE',
    );
  });

  it('rejects every truncation and oversized envelopes', () => {
    for (let n = 0; n < goldenBin.length; n++) expect(verdictOfBinary(goldenBin.subarray(0, n)).ok).toBe(false);
    const big = new Uint8Array(MAX_ENVELOPE_BYTES + 1);
    expect(verdictOfBinary(big)).toEqual({ ok: false, code: 'EW_PROVENANCE_MALFORMED' });
    const env = decodeEnvelope(goldenBin);
    const padded = { ...env, payload: new Uint8Array(70_000) };
    expect(codeOf(verifyBundle({ mode: 'per-output', record: padded }, io.outputs, { trust }))).toBe(
      'EW_PROVENANCE_MALFORMED',
    );
    // Trailing bytes that are a valid extra field still change nothing the signature covers... but an
    // appended unknown field makes the bytes different from what was signed only if it lands in the payload.
    const extra = new Uint8Array([...goldenBin, 0x0a, 0x01, 0x00]);
    expect(verdictOfBinary(extra).ok).toBe(false);
  });

  it('rejects inclusion proofs for the wrong leaf or the wrong tree size', () => {
    const bundle = parseBundleJson(batchedText) as Extract<ProvenanceBundle, { mode: 'batched' }>;
    const wrongIndex = { ...bundle, inclusion: { ...bundle.inclusion, leafIndex: 3 } };
    expect(codeOf(verifyBundle(wrongIndex, io.outputs, { trust }))).toBe('EW_PROVENANCE_INCLUSION');
    const wrongSize = { ...bundle, inclusion: { ...bundle.inclusion, treeSize: 4 } };
    expect(codeOf(verifyBundle(wrongSize, io.outputs, { trust }))).toBe('EW_PROVENANCE_INCLUSION');
    const outside = { ...bundle, inclusion: { ...bundle.inclusion, leafIndex: 5 } };
    expect(codeOf(verifyBundle(outside, io.outputs, { trust }))).toBe('EW_PROVENANCE_INCLUSION');
    const shortProof = { ...bundle, inclusion: { ...bundle.inclusion, hashes: bundle.inclusion.hashes.slice(1) } };
    expect(codeOf(verifyBundle(shortProof, io.outputs, { trust }))).toBe('EW_PROVENANCE_INCLUSION');
    // Another leaf's record with this leaf's proof.
    const rec = decodeRecord(bundle.record.payload);
    const otherLeaf = { ...bundle, record: { ...bundle.record, payload: encodeRecord({ ...rec, index: 3 }) } };
    expect(codeOf(verifyBundle(otherLeaf, io.outputs, { trust }))).toBe('EW_PROVENANCE_INCLUSION');
  });

  it('rejects a batched checkpoint by another key or naming another device', () => {
    const bundle = parseBundleJson(batchedText) as Extract<ProvenanceBundle, { mode: 'batched' }>;
    const other = KeySigner.generate();
    const cp = decodeEnvelope(encodeEnvelope(bundle.checkpoint));
    const reSigned = signEnvelopeSync(other, PAYLOAD_TYPES.checkpoint, cp.payload);
    expect(codeOf(verifyBundle({ ...bundle, checkpoint: reSigned }, io.outputs, { trust }))).toBe(
      'EW_PROVENANCE_UNTRUSTED_KEY',
    );
    const both = new TrustStore([goldenPub, other.publicKey]);
    expect(codeOf(verifyBundle({ ...bundle, checkpoint: reSigned }, io.outputs, { trust: both }))).toBe(
      'EW_PROVENANCE_UNTRUSTED_KEY',
    );
  });

  it('round-trips bundles through binary and JSON', () => {
    for (const text of [perOutputText, batchedText]) {
      const b = parseBundleJson(text);
      const again = decodeBundle(encodeBundle(b));
      expect(again.mode).toBe(b.mode);
      expect(verifyBundle(again, io.outputs, { trust }).ok).toBe(true);
      expect(JSON.stringify(bundleToJson(again))).toBe(JSON.stringify(JSON.parse(text)));
      expect(bundleFromJson(JSON.parse(text)).mode).toBe(b.mode);
    }
  });
});

describe('salted records', () => {
  it('needs the salt, and the right one', () => {
    const signer = KeySigner.generate();
    const salt = new Uint8Array(32).fill(9);
    const rec = freshRecord(signer, {
      salted: true,
      inputDigest: tensorDigest(io.inputs, salt),
      outputDigest: tensorDigest(io.outputs, salt),
    });
    const bundle: ProvenanceBundle = {
      mode: 'per-output',
      record: signEnvelopeSync(signer, PAYLOAD_TYPES.record, encodeRecord(rec)),
    };
    const t = [signer.publicKey];
    expect(codeOf(verifyBundle(bundle, io.outputs, { trust: t }))).toBe('EW_PROVENANCE_SALT_REQUIRED');
    expect(verifyBundle(bundle, io.outputs, { trust: t, salt, inputs: io.inputs }).ok).toBe(true);
    expect(codeOf(verifyBundle(bundle, io.outputs, { trust: t, salt: new Uint8Array(32) }))).toBe(
      'EW_PROVENANCE_OUTPUT_DIGEST',
    );
  });
});

describe('batched bundles built on the fly', () => {
  it('verify for every leaf of a 9-leaf tree and fail against a checkpoint of another size', () => {
    const signer = KeySigner.generate();
    const tree = new MerkleTree();
    const payloads: Uint8Array[] = [];
    let prev: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 9; i++) {
      const p = encodeRecord(freshRecord(signer, { index: i, prevLeafHash: prev }));
      payloads.push(p);
      prev = leafHash(p);
      tree.append(prev);
    }
    const cp = (size: number) =>
      signCheckpointSync(signer, {
        deviceKeyid: signer.keyId,
        treeSize: size,
        rootHash: tree.root(size),
        timeUnixMs: 5,
        bootId: new Uint8Array(0),
      });
    for (let i = 0; i < 9; i++) {
      const b: ProvenanceBundle = {
        mode: 'batched',
        record: { payload: payloads[i]!, payloadType: PAYLOAD_TYPES.record, signatures: [] },
        inclusion: { leafIndex: i, treeSize: 9, hashes: tree.inclusionProof(i) },
        checkpoint: cp(9),
      };
      expect(verifyBundle(b, io.outputs, { trust: [signer.publicKey] }).ok).toBe(true);
      if (i < 8) {
        const stale = { ...b, checkpoint: cp(8), inclusion: { ...b.inclusion, treeSize: 8 } };
        expect(codeOf(verifyBundle(stale, io.outputs, { trust: [signer.publicKey] }))).toBe('EW_PROVENANCE_INCLUSION');
      }
    }
  });
});

describe('in-toto export', () => {
  it('makes a Statement v1 whose DSSE signature verifies', () => {
    const rec = decodeRecord(decodeEnvelope(goldenBin).payload);
    const st = recordToInTotoStatement(rec, io.outputs);
    expect(st._type).toBe('https://in-toto.io/Statement/v1');
    expect(st.subject[0]!.digest.sha256).toBe(Buffer.from(rec.outputDigest).toString('hex'));
    expect(st.subject.map((s) => s.name)).toEqual(['golden/outputs', 'golden/outputs/label', 'golden/outputs/probs']);
    const dsse = signInTotoStatement(golden, st);
    expect(dsse.payloadType).toBe(INTOTO_PAYLOAD_TYPE);
    expect(JSON.parse(Buffer.from(dsse.payload, 'base64').toString('utf8'))).toEqual(JSON.parse(JSON.stringify(st)));
    const env = { payloadType: dsse.payloadType, payload: Buffer.from(dsse.payload, 'base64'), signatures: [] };
    expect(
      verifyEnvelope(
        {
          ...env,
          payload: new Uint8Array(env.payload),
          signatures: dsse.signatures.map((s) => ({
            keyid: new Uint8Array(Buffer.from(s.keyid, 'hex')),
            sig: new Uint8Array(Buffer.from(s.sig, 'base64')),
          })),
        },
        trust,
        INTOTO_PAYLOAD_TYPE,
      ).ok,
    ).toBe(true);
  });
});

describe('verifyCheckpointConsistency', () => {
  it('accepts an honest history and names a rewritten or foreign one', () => {
    const signer = KeySigner.generate();
    const t = [signer.publicKey];
    const tree = new MerkleTree();
    for (let i = 0; i < 10; i++) tree.append(leafHash(new Uint8Array([i])));
    const cp = (tr: MerkleTree, size: number, s = signer) =>
      signCheckpointSync(s, {
        deviceKeyid: s.keyId,
        treeSize: size,
        rootHash: tr.root(size),
        timeUnixMs: size,
        bootId: new Uint8Array(0),
      });
    expect(verifyCheckpointConsistency(cp(tree, 4), cp(tree, 10), tree.consistencyProof(4, 10), t)).toMatchObject({
      ok: true,
      older: { treeSize: 4 },
      newer: { treeSize: 10 },
    });
    // The device rewrote leaf 2 and signed a new head.
    const forked = new MerkleTree();
    for (let i = 0; i < 10; i++) forked.append(leafHash(new Uint8Array([i === 2 ? 99 : i])));
    const rewritten = verifyCheckpointConsistency(cp(tree, 4), cp(forked, 10), forked.consistencyProof(4, 10), t);
    expect(rewritten).toMatchObject({ ok: false, code: 'EW_PROVENANCE_CONSISTENCY' });
    expect(verifyCheckpointConsistency(cp(tree, 10), cp(tree, 4), [], t)).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_CONSISTENCY',
    });
    const other = KeySigner.generate();
    expect(
      verifyCheckpointConsistency(cp(tree, 4), cp(tree, 10, other), tree.consistencyProof(4, 10), [
        signer.publicKey,
        other.publicKey,
      ]),
    ).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_UNTRUSTED_KEY',
    });
    expect(
      verifyCheckpointConsistency(cp(tree, 4), cp(tree, 10, other), tree.consistencyProof(4, 10), t),
    ).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_UNTRUSTED_KEY',
    });
  });
});
