import { edgewarden } from '../__generated__/provenance.js';
import { EdgewardenError } from '../errors';
import { type DsseJson, type Envelope, envelopeFromJson, envelopeToJson, MAX_ENVELOPE_BYTES } from './dsse';
import { decodeRecord, recordToJson } from './record';

/** RFC 9162 inclusion proof of one leaf in a tree of `treeSize` leaves. */
export interface InclusionProof {
  leafIndex: number;
  treeSize: number;
  hashes: Uint8Array[];
}

/**
 * Everything needed to verify one output offline. `per-output`: the record signed on its own.
 * `batched`: the record bytes in an unsigned envelope (no signatures), an inclusion proof, and the
 * signed checkpoint whose root the proof leads to.
 */
export type ProvenanceBundle =
  | { mode: 'per-output'; record: Envelope }
  | { mode: 'batched'; record: Envelope; inclusion: InclusionProof; checkpoint: Envelope };

/** The `provenance` section of a CLI result file. `record` is the decoded record, for people to read. */
export interface ProvenanceBundleJson {
  mode: 'per-output' | 'batched';
  envelope: DsseJson;
  record?: Record<string, unknown>;
  inclusion?: { leafIndex: number; treeSize: number; hashes: string[] };
  checkpoint?: DsseJson;
}

/** A proof deeper than this cannot come from a tree of fewer than 2^64 leaves. */
const MAX_PROOF_HASHES = 64;
const MAX_BUNDLE_BYTES = 3 * MAX_ENVELOPE_BYTES;

function malformed(message: string, cause?: unknown): never {
  throw new EdgewardenError('EW_PROVENANCE_MALFORMED', `bundle: ${message}`, cause === undefined ? {} : { cause });
}

/** JSON form of a bundle (DSSE JSON envelopes, the decoded record, hex proof hashes). */
export function bundleToJson(bundle: ProvenanceBundle): ProvenanceBundleJson {
  const out: ProvenanceBundleJson = {
    mode: bundle.mode,
    envelope: envelopeToJson(bundle.record),
    record: recordToJson(decodeRecord(bundle.record.payload)),
  };
  if (bundle.mode === 'batched') {
    out.inclusion = {
      leafIndex: bundle.inclusion.leafIndex,
      treeSize: bundle.inclusion.treeSize,
      hashes: bundle.inclusion.hashes.map((h) => Buffer.from(h).toString('hex')),
    };
    out.checkpoint = envelopeToJson(bundle.checkpoint);
  }
  return out;
}

/** JSON.stringify with object keys sorted, so two views compare by content. */
function stableStringify(v: unknown, depth = 0): string {
  if (depth > 8) return malformed('record view nests too deeply');
  if (Array.isArray(v)) return `[${v.map((x) => stableStringify(x, depth + 1)).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify((v as Record<string, unknown>)[k], depth + 1)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

const HASH_HEX = /^[0-9a-f]{64}$/;
const BUNDLE_KEYS = new Set(['mode', 'envelope', 'record', 'inclusion', 'checkpoint']);
const PROOF_KEYS = new Set(['leafIndex', 'treeSize', 'hashes']);

function proofFromJson(v: unknown): InclusionProof {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return malformed('inclusion is not an object');
  for (const k of Object.keys(v)) if (!PROOF_KEYS.has(k)) malformed(`unknown inclusion key ${JSON.stringify(k)}`);
  const { leafIndex, treeSize, hashes } = v as Record<string, unknown>;
  if (!Number.isSafeInteger(leafIndex) || (leafIndex as number) < 0) malformed('inclusion.leafIndex is not valid');
  if (!Number.isSafeInteger(treeSize) || (treeSize as number) < 0) malformed('inclusion.treeSize is not valid');
  if (!Array.isArray(hashes) || hashes.length > MAX_PROOF_HASHES) malformed('inclusion.hashes is not a short array');
  return {
    leafIndex: leafIndex as number,
    treeSize: treeSize as number,
    hashes: (hashes as unknown[]).map((h) => {
      if (typeof h !== 'string' || !HASH_HEX.test(h)) return malformed('inclusion hash is not 64 lowercase hex digits');
      return new Uint8Array(Buffer.from(h, 'hex'));
    }),
  };
}

/**
 * Parses the JSON form (already `JSON.parse`d). Throws `EW_PROVENANCE_MALFORMED` when it is not one,
 * including when the readable `record` view does not match the record bytes it claims to show.
 */
export function bundleFromJson(value: unknown): ProvenanceBundle {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return malformed('not an object');
  const v = value as Record<string, unknown>;
  // Unknown keys are refused: a misspelt `record` would otherwise silently drop the cross-check below.
  for (const k of Object.keys(v)) if (!BUNDLE_KEYS.has(k)) malformed(`unknown key ${JSON.stringify(k)}`);
  const record = envelopeFromJson(v.envelope);
  if (v.record !== undefined) {
    let view: string;
    try {
      view = stableStringify(recordToJson(decodeRecord(record.payload)));
    } catch (cause) {
      return malformed('record bytes do not decode', cause);
    }
    if (stableStringify(v.record) !== view) malformed('the record view does not match the signed record bytes');
  }
  if (v.mode === 'per-output') {
    if (v.inclusion !== undefined || v.checkpoint !== undefined) malformed('per-output bundle with batched fields');
    return { mode: 'per-output', record };
  }
  if (v.mode === 'batched') {
    return {
      mode: 'batched',
      record,
      inclusion: proofFromJson(v.inclusion),
      checkpoint: envelopeFromJson(v.checkpoint),
    };
  }
  return malformed(`unknown mode ${JSON.stringify(v.mode)}`);
}

/**
 * Parses the JSON text (or UTF-8 bytes) of a bundle: {@link bundleFromJson} after `JSON.parse`, with
 * a syntax error reported as `EW_PROVENANCE_MALFORMED` too.
 */
export function parseBundleJson(text: string | Uint8Array): ProvenanceBundle {
  const str = typeof text === 'string' ? text : Buffer.from(text).toString('utf8');
  if (str.length > 4 * MAX_BUNDLE_BYTES) return malformed('JSON text too large');
  let value: unknown;
  try {
    value = JSON.parse(str);
  } catch (cause) {
    return malformed('not JSON', cause);
  }
  return bundleFromJson(value);
}

const copy = (b: Uint8Array | null | undefined): Uint8Array => (b ? new Uint8Array(b) : new Uint8Array(0));

function envelopeFromProto(m: edgewarden.v1.IEnvelope | null | undefined, what: string): Envelope {
  if (!m?.payloadType) return malformed(`${what} envelope has no payloadType`);
  // Copies: protobufjs hands out Buffers that share the input's memory.
  return {
    payload: copy(m.payload),
    payloadType: m.payloadType,
    signatures: (m.signatures ?? []).map((s) => ({
      keyid: copy(s.keyid),
      sig: copy(s.sig),
    })),
  };
}

/** Binary (proto `ProvenanceBundle`) form. */
export function encodeBundle(bundle: ProvenanceBundle): Uint8Array {
  return edgewarden.v1.ProvenanceBundle.encode(
    bundle.mode === 'batched'
      ? { record: bundle.record, inclusion: bundle.inclusion, checkpoint: bundle.checkpoint }
      : { record: bundle.record },
  ).finish();
}

/** Decodes the binary form; throws `EW_PROVENANCE_MALFORMED`. A bundle with a proof and checkpoint is batched. */
export function decodeBundle(bytes: Uint8Array): ProvenanceBundle {
  if (!(bytes instanceof Uint8Array) || bytes.length > MAX_BUNDLE_BYTES) return malformed('too large or not bytes');
  let m: edgewarden.v1.ProvenanceBundle;
  try {
    m = edgewarden.v1.ProvenanceBundle.decode(bytes);
  } catch (cause) {
    return malformed('bytes do not decode', cause);
  }
  const record = envelopeFromProto(m.record, 'record');
  if (!m.inclusion && !m.checkpoint) return { mode: 'per-output', record };
  if (!m.inclusion || !m.checkpoint) return malformed('batched bundle needs both an inclusion proof and a checkpoint');
  const hashes = m.inclusion.hashes ?? [];
  if (hashes.length > MAX_PROOF_HASHES) malformed('inclusion proof too long');
  const leafIndex = m.inclusion.leafIndex ?? 0;
  const treeSize = m.inclusion.treeSize ?? 0;
  if (!Number.isSafeInteger(leafIndex) || !Number.isSafeInteger(treeSize)) malformed('inclusion numbers out of range');
  return {
    mode: 'batched',
    record,
    inclusion: { leafIndex, treeSize, hashes: hashes.map((h) => new Uint8Array(h)) },
    checkpoint: envelopeFromProto(m.checkpoint, 'checkpoint'),
  };
}
