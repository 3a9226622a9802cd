import { edgewarden } from '../__generated__/messages.js';
import { EdgewardenError } from '../errors';
import { type Envelope, PAYLOAD_TYPES, signEnvelope } from '../provenance/dsse';
import type { Signer } from '../provenance/signer';
import { SDK_VERSION } from '../version';
import { u8 } from './bytes';
import { openEnvelope } from './heartbeat';

/** Upper bound on a lifecycle payload. */
export const MAX_LIFECYCLE_BYTES = 1024;
/** Upper bound on a signed lifecycle envelope. */
export const MAX_SIGNED_LIFECYCLE_BYTES = MAX_LIFECYCLE_BYTES + 1024;

/** Birth (retained, on connect) or death (the MQTT will, or a clean goodbye). */
export interface LifecycleFields {
  kind: 'birth' | 'death';
  deviceKeyid: Uint8Array;
  fleet: string;
  /** Pairs a death with its birth: one value per connection. */
  bdSeq: number;
  timeUnixMs: number;
  bootId: Uint8Array;
  sdkVersion?: string;
  /** Death only: true when the device said goodbye itself, false for a will fired by the broker. */
  clean?: boolean;
  /** Birth only: the raw Ed25519 public key, for collectors that enroll by trust on first use (empty when absent). */
  publicKey?: Uint8Array;
}

const KIND = edgewarden.v1.Lifecycle.Kind;

/** Encodes a lifecycle message as its protobuf payload. Throws `EW_TELEMETRY_INPUT` on bad fields. */
export function encodeLifecycle(f: LifecycleFields): Uint8Array {
  const bad = (field: string, m: string): never => {
    throw new EdgewardenError('EW_TELEMETRY_INPUT', `${field}: ${m}`, { details: { field } });
  };
  if (f.kind !== 'birth' && f.kind !== 'death') bad('kind', 'must be birth or death');
  if (!(f.deviceKeyid instanceof Uint8Array) || f.deviceKeyid.length !== 32) bad('deviceKeyid', 'must be 32 bytes');
  if (!f.fleet) bad('fleet', 'must be a non-empty string');
  if (!Number.isSafeInteger(f.bdSeq) || f.bdSeq < 0) bad('bdSeq', 'must be a non-negative integer');
  if (!Number.isSafeInteger(f.timeUnixMs)) bad('timeUnixMs', 'must be an integer');
  return edgewarden.v1.Lifecycle.encode({
    kind: f.kind === 'birth' ? KIND.BIRTH : KIND.DEATH,
    deviceKeyid: f.deviceKeyid,
    fleet: f.fleet,
    bdSeq: f.bdSeq,
    timeUnixMs: f.timeUnixMs,
    bootId: f.bootId,
    sdkVersion: f.sdkVersion ?? SDK_VERSION,
    clean: f.clean ?? false,
    publicKey: f.publicKey ?? new Uint8Array(0),
  }).finish();
}

/** Builds and signs a lifecycle message (payloadType lifecycle). */
export function signLifecycle(signer: Signer, f: LifecycleFields): Promise<Envelope> {
  return signEnvelope(signer, PAYLOAD_TYPES.lifecycle, encodeLifecycle(f));
}

/** Decodes a lifecycle payload; throws `EW_TELEMETRY_MALFORMED`. */
export function decodeLifecycle(bytes: Uint8Array): Required<LifecycleFields> {
  const bad = (m: string, cause?: unknown): never => {
    throw new EdgewardenError('EW_TELEMETRY_MALFORMED', `lifecycle: ${m}`, cause === undefined ? {} : { cause });
  };
  if (!(bytes instanceof Uint8Array)) bad('not bytes');
  if (bytes.length > MAX_LIFECYCLE_BYTES) bad(`${bytes.length} bytes exceed ${MAX_LIFECYCLE_BYTES}`);
  let m: edgewarden.v1.Lifecycle;
  try {
    m = edgewarden.v1.Lifecycle.decode(bytes);
  } catch (cause) {
    return bad('bytes do not decode', cause);
  }
  const kind = m.kind === KIND.BIRTH ? 'birth' : m.kind === KIND.DEATH ? 'death' : bad(`unknown kind ${m.kind}`);
  if (m.deviceKeyid.length !== 32) bad('deviceKeyid must be 32 bytes');
  if (!m.fleet) bad('fleet missing');
  if (!Number.isSafeInteger(m.bdSeq) || m.bdSeq < 0) bad('bdSeq out of range');
  if (!Number.isSafeInteger(m.timeUnixMs)) bad('timeUnixMs out of range');
  if (m.bootId.length > 64) bad('bootId too long');
  if (m.publicKey.length !== 0 && m.publicKey.length !== 32) bad('publicKey must be 32 bytes');
  return {
    kind,
    deviceKeyid: u8(m.deviceKeyid),
    fleet: m.fleet,
    bdSeq: m.bdSeq,
    timeUnixMs: m.timeUnixMs,
    bootId: u8(m.bootId),
    sdkVersion: m.sdkVersion,
    clean: m.clean,
    publicKey: u8(m.publicKey),
  };
}

/** Decodes a signed lifecycle envelope and its payload WITHOUT verifying the signature. */
export function decodeSignedLifecycle(bytes: Uint8Array): { envelope: Envelope; lifecycle: Required<LifecycleFields> } {
  const envelope = openEnvelope(bytes, PAYLOAD_TYPES.lifecycle, MAX_SIGNED_LIFECYCLE_BYTES);
  return { envelope, lifecycle: decodeLifecycle(envelope.payload) };
}
