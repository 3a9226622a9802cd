import { edgewarden } from '../__generated__/provenance.js';
import { EdgewardenError } from '../errors';
import { verifyEd25519 } from './ed25519';
import type { TrustStore } from './keys';
import type { Signer } from './signer';

/** The payloadType of each signed object kind; it also separates signing domains. */
export const PAYLOAD_TYPES = {
  record: 'application/vnd.edgewarden.record.v1+protobuf',
  checkpoint: 'application/vnd.edgewarden.checkpoint.v1+protobuf',
  heartbeat: 'application/vnd.edgewarden.heartbeat.v1+protobuf',
  lifecycle: 'application/vnd.edgewarden.lifecycle.v1+protobuf',
  policy: 'application/vnd.edgewarden.policy.v1+protobuf',
} as const;

/** Upper bound on any envelope we decode; larger input is refused before parsing. */
export const MAX_ENVELOPE_BYTES = 1 << 20;

/** A DSSE envelope (binary form mirrors proto `Envelope`). */
export interface Envelope {
  payload: Uint8Array;
  payloadType: string;
  signatures: { keyid: Uint8Array; sig: Uint8Array }[];
}

/** The standard DSSE JSON form: base64 payload and sig, keyid as lowercase hex. */
export interface DsseJson {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

/** DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  const head = Buffer.from(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `, 'utf8');
  return Buffer.concat([head, payload]);
}

/** Signs `payload` as a one-signature envelope. Uses `signSync` when the signer has it. */
export async function signEnvelope(signer: Signer, payloadType: string, payload: Uint8Array): Promise<Envelope> {
  const msg = pae(payloadType, payload);
  const sig = signer.signSync ? signer.signSync(msg) : await signer.sign(msg);
  return { payload, payloadType, signatures: [{ keyid: signer.keyId, sig }] };
}

/** Synchronous variant of {@link signEnvelope} for signers that hold the key in process. */
export function signEnvelopeSync(
  signer: Signer & { signSync(d: Uint8Array): Uint8Array },
  payloadType: string,
  payload: Uint8Array,
): Envelope {
  return {
    payload,
    payloadType,
    signatures: [{ keyid: signer.keyId, sig: signer.signSync(pae(payloadType, payload)) }],
  };
}

/** Outcome of checking an envelope: `keyid` is the trusted key that verified. */
export type EnvelopeVerdict =
  | { ok: true; keyid: Uint8Array }
  | {
      ok: false;
      code:
        | 'EW_PROVENANCE_SIGNATURE'
        | 'EW_PROVENANCE_UNTRUSTED_KEY'
        | 'EW_PROVENANCE_PAYLOAD_TYPE'
        | 'EW_PROVENANCE_MALFORMED';
      message: string;
    };

/**
 * Checks that `env` has the expected payloadType and at least one valid signature by a trusted key.
 * Pure and synchronous. Verifies the bytes as received; never re-encodes.
 */
export function verifyEnvelope(env: Envelope, trust: TrustStore, expectedType: string): EnvelopeVerdict {
  if (env.payloadType !== expectedType) {
    return {
      ok: false,
      code: 'EW_PROVENANCE_PAYLOAD_TYPE',
      message: `payloadType ${JSON.stringify(env.payloadType)}, expected ${expectedType}`,
    };
  }
  if (env.signatures.length === 0)
    return { ok: false, code: 'EW_PROVENANCE_SIGNATURE', message: 'envelope has no signature' };
  let sawTrusted = false;
  let msg: Buffer | undefined;
  for (const s of env.signatures) {
    const key = trust.get(s.keyid);
    if (!key) continue;
    sawTrusted = true;
    if (s.sig.length !== 64) continue;
    msg ??= pae(env.payloadType, env.payload);
    if (verifyEd25519(msg, s.sig, key)) return { ok: true, keyid: s.keyid };
  }
  return sawTrusted
    ? { ok: false, code: 'EW_PROVENANCE_SIGNATURE', message: 'signature does not verify' }
    : { ok: false, code: 'EW_PROVENANCE_UNTRUSTED_KEY', message: 'no signature by a trusted key' };
}

/** Binary (protobuf) form of an envelope. */
export function encodeEnvelope(env: Envelope): Uint8Array {
  return edgewarden.v1.Envelope.encode(env).finish();
}

/** Decodes a binary envelope; throws `EW_PROVENANCE_MALFORMED` on anything that is not one. */
export function decodeEnvelope(bytes: Uint8Array, maxBytes = MAX_ENVELOPE_BYTES): Envelope {
  if (bytes.length > maxBytes) {
    throw new EdgewardenError('EW_PROVENANCE_MALFORMED', `envelope of ${bytes.length} bytes exceeds ${maxBytes}`);
  }
  let m: edgewarden.v1.Envelope;
  try {
    m = edgewarden.v1.Envelope.decode(bytes);
  } catch (cause) {
    throw new EdgewardenError('EW_PROVENANCE_MALFORMED', 'envelope bytes do not decode', { cause });
  }
  if (!m.payloadType) throw new EdgewardenError('EW_PROVENANCE_MALFORMED', 'envelope has no payloadType');
  return {
    payload: m.payload,
    payloadType: m.payloadType,
    signatures: m.signatures.map((s) => ({ keyid: s.keyid ?? new Uint8Array(0), sig: s.sig ?? new Uint8Array(0) })),
  };
}

/**
 * The payload of a binary envelope whose payloadType is `payloadType`, read in place: signatures are
 * skipped, not decoded, and nothing is copied. For the audit log's scan on open, which checks the
 * hash chain, not signatures (`audit verify` decodes and verifies every envelope). Undefined when
 * the bytes are not such an envelope (a field of an unknown wire type, a length past the end, no or
 * another payloadType). For an envelope `decodeEnvelope` accepts it returns the same payload.
 */
export function envelopePayloadOfType(bytes: Uint8Array, payloadType: Uint8Array): Uint8Array | undefined {
  if (bytes.length > MAX_ENVELOPE_BYTES) return undefined;
  const end = bytes.length;
  let pos = 0;
  let payload: Uint8Array | undefined;
  let typeStart = -1;
  let typeEnd = -1;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10 && pos < end; i++) {
      const b = bytes[pos++] as number;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
    return -1;
  };
  while (pos < end) {
    const tag = varint();
    if (tag < 8) return undefined;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === 2) {
      const len = varint();
      if (len < 0 || pos + len > end) return undefined;
      if (field === 1) payload = bytes.subarray(pos, pos + len);
      else if (field === 2) {
        typeStart = pos;
        typeEnd = pos + len;
      }
      pos += len;
    } else if (wire === 0) {
      if (varint() < 0) return undefined;
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      if (pos > end) return undefined;
    } else return undefined;
  }
  if (typeEnd - typeStart !== payloadType.length) return undefined;
  for (let i = 0; i < payloadType.length; i++) if (bytes[typeStart + i] !== payloadType[i]) return undefined;
  return payload ?? new Uint8Array(0);
}

/** Standard DSSE JSON, as generic DSSE tools expect it. */
export function envelopeToJson(env: Envelope): DsseJson {
  return {
    payloadType: env.payloadType,
    payload: Buffer.from(env.payload).toString('base64'),
    signatures: env.signatures.map((s) => ({
      keyid: Buffer.from(s.keyid).toString('hex'),
      sig: Buffer.from(s.sig).toString('base64'),
    })),
  };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const HEX = /^(?:[0-9a-f]{2})*$/;

/**
 * Decodes padded standard base64 and refuses non-canonical text (unused low bits set, missing
 * padding): otherwise two different strings decode to the same bytes and a changed character
 * would go unnoticed.
 */
function canonicalBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? new Uint8Array(bytes) : undefined;
}

/** Parses DSSE JSON (already `JSON.parse`d); throws `EW_PROVENANCE_MALFORMED` when it is not one. */
export function envelopeFromJson(value: unknown): Envelope {
  const bad = (why: string): never => {
    throw new EdgewardenError('EW_PROVENANCE_MALFORMED', `DSSE JSON: ${why}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('not an object');
  const v = value as Record<string, unknown>;
  if (typeof v.payloadType !== 'string' || v.payloadType === '') bad('payloadType missing');
  if (typeof v.payload !== 'string') bad('payload is not base64');
  if (!Array.isArray(v.signatures) || v.signatures.length > 16) bad('signatures is not an array of at most 16');
  if ((v.payloadType as string).length > 256) bad('payloadType too long');
  const payload = v.payload as string;
  if (payload.length > (MAX_ENVELOPE_BYTES * 4) / 3 + 4) bad('payload too large');
  const signatures = (v.signatures as unknown[]).map((s) => {
    if (typeof s !== 'object' || s === null) return bad('signature is not an object');
    const { keyid, sig } = s as Record<string, unknown>;
    const sigBytes = typeof sig === 'string' && sig.length <= 1024 ? canonicalBase64(sig) : undefined;
    if (!sigBytes) return bad('sig is not canonical base64');
    const kid = typeof keyid === 'string' ? keyid : '';
    if (kid.length > 128 || !HEX.test(kid)) return bad('keyid is not lowercase hex');
    return { keyid: new Uint8Array(Buffer.from(kid, 'hex')), sig: sigBytes };
  });
  const payloadBytes = canonicalBase64(payload);
  if (!payloadBytes) return bad('payload is not canonical base64');
  return { payloadType: v.payloadType as string, payload: payloadBytes, signatures };
}
