import { createHash, verify as cryptoVerify } from 'node:crypto';
import { EdgewardenError, isEdgewardenError } from '../errors';
import { decodeEnvelope, type Envelope, envelopeFromJson, PAYLOAD_TYPES, pae } from '../provenance/dsse';
import { decodePolicy, type PolicyBody } from './canonical';
import type { PolicyCode } from './codes';
import type { TrustConfig } from './trust';

/** A policy that passed every check. */
export interface VerifiedPolicy {
  readonly body: PolicyBody;
  /** SHA-256 of the signed payload bytes: this policy's digest. */
  readonly payloadDigest: Uint8Array;
  /** Names of the distinct trusted authorities whose signatures verify (k of n counts these). */
  readonly signers: readonly string[];
  readonly envelope: Envelope;
}

/** The verdict on a signed policy. */
export type PolicyVerdict =
  | ({ ok: true } & VerifiedPolicy)
  | { ok: false; code: PolicyCode; message: string; authority?: string; version?: number };

/**
 * Decodes a signed policy from bytes: a binary DSSE envelope (protobuf) or DSSE JSON. Anything
 * else throws `EW_POLICY_MALFORMED`.
 */
export function decodePolicyEnvelope(bytes: Uint8Array): Envelope {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  try {
    if (bytes[i] === 0x7b /* { */) {
      if (bytes.length > 2 << 20) throw new EdgewardenError('EW_POLICY_MALFORMED', 'signed policy too large');
      return envelopeFromJson(JSON.parse(Buffer.from(bytes).toString('utf8')));
    }
    return decodeEnvelope(bytes);
  } catch (cause) {
    if (isEdgewardenError(cause, 'EW_POLICY_MALFORMED')) throw cause;
    throw new EdgewardenError('EW_POLICY_MALFORMED', `not a signed policy: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Checks a signed policy against the device's trusted authorities. Pure and synchronous:
 * payloadType, at least one signature, every signature by a trusted key must verify (a forged
 * one refuses the whole policy), the payload decodes and validates, the policy's authority is one
 * of the signers (and the expected one, when given: the MQTT topic's), and it has not expired.
 * Rollback is checked by the {@link PolicyManager}, which knows the versions applied before.
 */
export function verifyPolicyEnvelope(
  env: Envelope,
  trust: TrustConfig,
  opts: { now: number; expectedAuthority?: string },
): PolicyVerdict {
  if (env.payloadType !== PAYLOAD_TYPES.policy) {
    return {
      ok: false,
      code: 'EW_POLICY_PAYLOAD_TYPE',
      message: `payloadType ${JSON.stringify(env.payloadType)}, expected ${PAYLOAD_TYPES.policy}`,
    };
  }
  if (env.signatures.length === 0) return { ok: false, code: 'EW_POLICY_UNSIGNED', message: 'policy has no signature' };
  const signers = new Set<string>();
  let msg: Buffer | undefined;
  for (const s of env.signatures) {
    const auth = trust.byKeyId(s.keyid);
    if (!auth) continue;
    msg ??= pae(env.payloadType, env.payload);
    if (s.sig.length !== 64 || !cryptoVerify(null, msg, auth.key, s.sig)) {
      return { ok: false, code: 'EW_POLICY_SIGNATURE', message: `signature of authority ${auth.name} does not verify` };
    }
    signers.add(auth.name);
  }
  if (signers.size === 0) {
    return { ok: false, code: 'EW_POLICY_UNTRUSTED_KEY', message: 'no signature by a trusted authority key' };
  }
  let body: PolicyBody;
  try {
    body = decodePolicy(env.payload);
  } catch (err) {
    return { ok: false, code: 'EW_POLICY_MALFORMED', message: (err as Error).message };
  }
  const who = { authority: body.authority, version: body.version };
  if (!signers.has(body.authority)) {
    return {
      ok: false,
      code: 'EW_POLICY_AUTHORITY',
      message: `policy of authority ${body.authority} is signed by ${[...signers].join(', ')}`,
      ...who,
    };
  }
  if (opts.expectedAuthority !== undefined && opts.expectedAuthority !== body.authority) {
    return {
      ok: false,
      code: 'EW_POLICY_AUTHORITY',
      message: `policy of authority ${body.authority} arrived for authority ${opts.expectedAuthority}`,
      ...who,
    };
  }
  if (body.expiresUnixMs !== 0 && body.expiresUnixMs <= opts.now) {
    return {
      ok: false,
      code: 'EW_POLICY_EXPIRED',
      message: `policy ${body.authority} v${body.version} expired at ${new Date(body.expiresUnixMs).toISOString()}`,
      ...who,
    };
  }
  return {
    ok: true,
    body,
    payloadDigest: createHash('sha256').update(env.payload).digest(),
    signers: [...signers].sort(),
    envelope: env,
  };
}
