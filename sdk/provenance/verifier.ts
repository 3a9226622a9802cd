import { hash, type KeyObject } from 'node:crypto';
import type { TensorInput } from '../engine/tensor';
import { isEdgewardenError } from '../errors';
import { sameBytes } from '../util/bytes';
import type { ProvenanceBundle } from './bundle';
import { type CheckpointFields, decodeCheckpoint } from './checkpoint';
import type { ProvenanceCode } from './codes';
import { type Envelope, PAYLOAD_TYPES, verifyEnvelope } from './dsse';
import { TrustStore } from './keys';
import { leafHash, verifyConsistency, verifyInclusion } from './merkle';
import { decodeRecord, RECORD_LIMITS, type RecordFields } from './record';
import { tensorDigest } from './tensor-digest';

/** What {@link verifyBundle} needs besides the bundle and outputs. */
export interface VerifyOptions {
  /** Keys whose signatures are accepted (device public keys: raw 32 bytes, SPKI PEM or KeyObject). */
  trust: TrustStore | readonly (KeyObject | Uint8Array | string)[];
  /** When given, the record's input digest must match these inputs. */
  inputs?: Record<string, TensorInput>;
  /** The device salt; required for records made in salted mode. */
  salt?: Uint8Array;
}

/** The verdict: `ok` with the decoded record, or the first failure with its code. */
export type BundleVerdict =
  | { ok: true; record: RecordFields }
  | { ok: false; code: ProvenanceCode; message: string; record?: RecordFields };

/** Trust arrays already turned into stores (building one costs a key parse per entry). */
const trustCache = new WeakMap<object, { store: TrustStore; items: readonly unknown[] }>();

function trustStoreOf(trust: VerifyOptions['trust']): TrustStore {
  if (trust instanceof TrustStore) return trust;
  const hit = trustCache.get(trust);
  // Reused only while the array still holds the very same keys (it may have been changed in place).
  if (hit && hit.items.length === trust.length && hit.items.every((k, i) => k === trust[i])) return hit.store;
  const store = new TrustStore(trust);
  trustCache.set(trust, { store, items: [...trust] });
  return store;
}

/**
 * Checkpoints that already verified, per trust store. In batched mode thousands of bundles share one
 * checkpoint; remembering (signature, payloadType, payload digest) → keyid turns their Ed25519
 * verification into one SHA-256. A memo of a pure function keeps the verifier pure; keys can only be
 * added to a TrustStore, never removed, so a remembered success stays true.
 */
const checkpointMemo = new WeakMap<TrustStore, Map<string, Uint8Array>>();
const MEMO_ENTRIES = 256;

function verifyCheckpointEnvelope(env: Envelope, trust: TrustStore): ReturnType<typeof verifyEnvelope> {
  if (env.signatures.length !== 1 || env.payloadType !== PAYLOAD_TYPES.checkpoint) {
    return verifyEnvelope(env, trust, PAYLOAD_TYPES.checkpoint);
  }
  const s = env.signatures[0]!;
  const key = `${Buffer.from(s.keyid).toString('hex')}:${Buffer.from(s.sig).toString('hex')}:${hash('sha256', env.payload, 'hex')}`;
  let memo = checkpointMemo.get(trust);
  const hit = memo?.get(key);
  if (hit) return { ok: true, keyid: hit };
  const v = verifyEnvelope(env, trust, PAYLOAD_TYPES.checkpoint);
  if (v.ok) {
    if (!memo) {
      memo = new Map();
      checkpointMemo.set(trust, memo);
    }
    if (memo.size >= MEMO_ENTRIES) memo.delete(memo.keys().next().value!);
    memo.set(key, v.keyid);
  }
  return v;
}

function isEnvelope(e: unknown): e is Envelope {
  if (typeof e !== 'object' || e === null) return false;
  const v = e as Record<string, unknown>;
  return (
    v.payload instanceof Uint8Array &&
    typeof v.payloadType === 'string' &&
    Array.isArray(v.signatures) &&
    v.signatures.length <= 16 &&
    v.signatures.every(
      (s: unknown) =>
        typeof s === 'object' &&
        s !== null &&
        (s as Envelope['signatures'][0]).keyid instanceof Uint8Array &&
        (s as Envelope['signatures'][0]).sig instanceof Uint8Array,
    )
  );
}

function fail(code: ProvenanceCode, message: string, record?: RecordFields): BundleVerdict {
  return record ? { ok: false, code, message, record } : { ok: false, code, message };
}

function digestOrFailure(tensors: Record<string, TensorInput>, salt: Uint8Array | undefined): Uint8Array | string {
  try {
    return tensorDigest(tensors, salt);
  } catch (e) {
    if (isEdgewardenError(e)) return e.message;
    throw e;
  }
}

/**
 * Verifies a provenance bundle against the outputs (and optionally inputs) it claims to describe.
 * Pure and synchronous: no I/O, no clock. Checks, in order: envelope structure, payloadType, the
 * signature by a trusted key (per-output: the record; batched: the checkpoint, then the record's leaf
 * through the inclusion proof to the checkpoint root), that the record decodes and names the signing
 * device, the salt, the output digest, and the input digest when inputs are given. The first failure
 * decides the code. Throws only for unusable trust material (`EW_PROVENANCE_KEY_FILE`).
 */
export function verifyBundle(
  bundle: ProvenanceBundle,
  outputs: Record<string, TensorInput>,
  opts: VerifyOptions,
): BundleVerdict {
  const trust = trustStoreOf(opts.trust);
  if (typeof bundle !== 'object' || bundle === null) return fail('EW_PROVENANCE_MALFORMED', 'bundle is not an object');
  if (bundle.mode !== 'per-output' && bundle.mode !== 'batched') {
    return fail('EW_PROVENANCE_MALFORMED', 'bundle mode is neither per-output nor batched');
  }
  if (!isEnvelope(bundle.record)) return fail('EW_PROVENANCE_MALFORMED', 'record envelope is not well-formed');
  if (bundle.record.payload.length > RECORD_LIMITS.maxBytes) {
    return fail('EW_PROVENANCE_MALFORMED', 'record envelope payload is oversized');
  }
  if (bundle.mode === 'batched' && !isEnvelope(bundle.checkpoint)) {
    return fail('EW_PROVENANCE_MALFORMED', 'checkpoint envelope is not well-formed');
  }
  if (bundle.record.payloadType !== PAYLOAD_TYPES.record) {
    return fail('EW_PROVENANCE_PAYLOAD_TYPE', `record payloadType ${JSON.stringify(bundle.record.payloadType)}`);
  }

  let signer: Uint8Array;
  let leafIndex = -1;
  if (bundle.mode === 'per-output') {
    const v = verifyEnvelope(bundle.record, trust, PAYLOAD_TYPES.record);
    if (!v.ok) return fail(v.code, `record: ${v.message}`);
    signer = v.keyid;
  } else {
    const v = verifyCheckpointEnvelope(bundle.checkpoint, trust);
    if (!v.ok) return fail(v.code, `checkpoint: ${v.message}`);
    signer = v.keyid;
    let cp: ReturnType<typeof decodeCheckpoint>;
    try {
      cp = decodeCheckpoint(bundle.checkpoint.payload);
    } catch (e) {
      return fail('EW_PROVENANCE_MALFORMED', isEdgewardenError(e) ? e.message : 'checkpoint does not decode');
    }
    if (!sameBytes(cp.deviceKeyid, signer)) {
      return fail('EW_PROVENANCE_UNTRUSTED_KEY', 'checkpoint names another device than the key that signed it');
    }
    const inc = bundle.inclusion;
    if (
      typeof inc !== 'object' ||
      inc === null ||
      !Array.isArray(inc.hashes) ||
      !Number.isSafeInteger(inc.leafIndex) ||
      !Number.isSafeInteger(inc.treeSize)
    ) {
      return fail('EW_PROVENANCE_MALFORMED', 'inclusion proof is not well-formed');
    }
    if (inc.treeSize !== cp.treeSize) {
      return fail('EW_PROVENANCE_INCLUSION', `proof is for tree size ${inc.treeSize}, checkpoint for ${cp.treeSize}`);
    }
    if (inc.leafIndex < 0 || inc.leafIndex >= inc.treeSize) {
      return fail('EW_PROVENANCE_INCLUSION', `leaf index ${inc.leafIndex} is outside a tree of ${inc.treeSize}`);
    }
    if (!verifyInclusion(leafHash(bundle.record.payload), inc.leafIndex, inc.treeSize, inc.hashes, cp.rootHash)) {
      return fail('EW_PROVENANCE_INCLUSION', 'the record is not at that index in the signed checkpoint');
    }
    leafIndex = inc.leafIndex;
  }

  let record: RecordFields;
  try {
    record = decodeRecord(bundle.record.payload);
  } catch (e) {
    return fail('EW_PROVENANCE_MALFORMED', isEdgewardenError(e) ? e.message : 'record does not decode');
  }
  if (!sameBytes(record.deviceKeyid, signer)) {
    return fail('EW_PROVENANCE_UNTRUSTED_KEY', 'record names another device than the key that signed it', record);
  }
  if (leafIndex >= 0 && record.index !== leafIndex) {
    return fail(
      'EW_PROVENANCE_INCLUSION',
      `record index ${record.index} differs from proof index ${leafIndex}`,
      record,
    );
  }
  if (record.salted && !opts.salt) {
    return fail('EW_PROVENANCE_SALT_REQUIRED', 'the record uses salted digests; pass the device salt', record);
  }
  const salt = record.salted ? opts.salt : undefined;
  const out = digestOrFailure(outputs, salt);
  if (typeof out === 'string') return fail('EW_PROVENANCE_OUTPUT_DIGEST', `outputs: ${out}`, record);
  if (!sameBytes(out, record.outputDigest)) {
    return fail('EW_PROVENANCE_OUTPUT_DIGEST', 'the outputs differ from those the record describes', record);
  }
  if (opts.inputs) {
    const inp = digestOrFailure(opts.inputs, salt);
    if (typeof inp === 'string') return fail('EW_PROVENANCE_INPUT_DIGEST', `inputs: ${inp}`, record);
    if (!sameBytes(inp, record.inputDigest)) {
      return fail('EW_PROVENANCE_INPUT_DIGEST', 'the inputs differ from those the record describes', record);
    }
  }
  return { ok: true, record };
}

/** The verdict of {@link verifyCheckpointConsistency}. */
export type ConsistencyVerdict =
  | { ok: true; older: CheckpointFields; newer: CheckpointFields }
  | { ok: false; code: ProvenanceCode; message: string };

/**
 * Checks that two signed checkpoints of one device describe one history: both verify under `trust`,
 * name the same device as their signing key, and `proof` (RFC 9162 consistency) shows the older tree
 * is a prefix of the newer. A device that rewrote its log fails with `EW_PROVENANCE_CONSISTENCY`.
 * Pure and synchronous; throws only for unusable trust material.
 */
export function verifyCheckpointConsistency(
  older: Envelope,
  newer: Envelope,
  proof: readonly Uint8Array[],
  trust: VerifyOptions['trust'],
): ConsistencyVerdict {
  const store = trustStoreOf(trust);
  const fields: CheckpointFields[] = [];
  const keyids: Uint8Array[] = [];
  for (const [name, env] of [
    ['older', older],
    ['newer', newer],
  ] as const) {
    if (!isEnvelope(env)) return { ok: false, code: 'EW_PROVENANCE_MALFORMED', message: `${name} checkpoint envelope` };
    const v = verifyCheckpointEnvelope(env, store);
    if (!v.ok) return { ok: false, code: v.code, message: `${name} checkpoint: ${v.message}` };
    let f: CheckpointFields;
    try {
      f = decodeCheckpoint(env.payload);
    } catch (e) {
      return { ok: false, code: 'EW_PROVENANCE_MALFORMED', message: isEdgewardenError(e) ? e.message : `${name}` };
    }
    if (!sameBytes(f.deviceKeyid, v.keyid)) {
      return { ok: false, code: 'EW_PROVENANCE_UNTRUSTED_KEY', message: `${name} checkpoint names another device` };
    }
    fields.push(f);
    keyids.push(v.keyid);
  }
  const [a, b] = fields as [CheckpointFields, CheckpointFields];
  if (!sameBytes(keyids[0]!, keyids[1]!)) {
    return { ok: false, code: 'EW_PROVENANCE_UNTRUSTED_KEY', message: 'the checkpoints come from different devices' };
  }
  if (a.treeSize > b.treeSize) {
    return { ok: false, code: 'EW_PROVENANCE_CONSISTENCY', message: `tree shrank from ${a.treeSize} to ${b.treeSize}` };
  }
  if (!verifyConsistency(a.treeSize, b.treeSize, a.rootHash, b.rootHash, proof)) {
    return {
      ok: false,
      code: 'EW_PROVENANCE_CONSISTENCY',
      message: `the tree of ${b.treeSize} does not extend the tree of ${a.treeSize}: history was rewritten`,
    };
  }
  return { ok: true, older: a, newer: b };
}
