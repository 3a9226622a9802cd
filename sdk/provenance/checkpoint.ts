import { edgewarden } from '../__generated__/provenance.js';
import { EdgewardenError } from '../errors';
import { type Envelope, PAYLOAD_TYPES, signEnvelope, signEnvelopeSync } from './dsse';
import type { Signer } from './signer';

/** A signed statement of the audit log's Merkle tree head. */
export interface CheckpointFields {
  /** SHA-256 of the device's raw public key (32 bytes). */
  deviceKeyid: Uint8Array;
  treeSize: number;
  /** RFC 9162 root of the first `treeSize` leaves (32 bytes). */
  rootHash: Uint8Array;
  timeUnixMs: number;
  bootId: Uint8Array;
}

const MAX_CHECKPOINT_BYTES = 1024;
/** A plain Uint8Array of its own: protobufjs hands out Buffers that share the input's memory. */
const copy = (b: Uint8Array | null | undefined): Uint8Array => (b ? new Uint8Array(b) : new Uint8Array(0));

function malformed(message: string, cause?: unknown): never {
  throw new EdgewardenError('EW_PROVENANCE_MALFORMED', `checkpoint: ${message}`, cause === undefined ? {} : { cause });
}

function validate(f: CheckpointFields): void {
  if (!(f.deviceKeyid instanceof Uint8Array) || f.deviceKeyid.length !== 32) malformed('deviceKeyid is not 32 bytes');
  if (!Number.isSafeInteger(f.treeSize) || f.treeSize < 0) malformed('treeSize is not a non-negative safe integer');
  if (!(f.rootHash instanceof Uint8Array) || f.rootHash.length !== 32) malformed('rootHash is not 32 bytes');
  if (!Number.isSafeInteger(f.timeUnixMs)) malformed('timeUnixMs is not a safe integer');
  if (!(f.bootId instanceof Uint8Array) || f.bootId.length > 64) malformed('bootId is longer than 64 bytes');
}

/** Protobuf bytes of a checkpoint (the DSSE payload). */
export function encodeCheckpoint(fields: CheckpointFields): Uint8Array {
  validate(fields);
  const bytes = edgewarden.v1.Checkpoint.encode({
    deviceKeyid: fields.deviceKeyid,
    treeSize: fields.treeSize,
    rootHash: fields.rootHash,
    timeUnixMs: fields.timeUnixMs,
    bootId: fields.bootId,
  }).finish();
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length); // a plain view, not a Buffer
}

/** Decodes checkpoint bytes; throws `EW_PROVENANCE_MALFORMED` on anything that is not a valid checkpoint. */
export function decodeCheckpoint(bytes: Uint8Array): CheckpointFields {
  if (!(bytes instanceof Uint8Array) || bytes.length > MAX_CHECKPOINT_BYTES) malformed('too large or not bytes');
  let m: edgewarden.v1.Checkpoint;
  try {
    m = edgewarden.v1.Checkpoint.decode(bytes);
  } catch (cause) {
    return malformed('bytes do not decode', cause);
  }
  const f: CheckpointFields = {
    deviceKeyid: copy(m.deviceKeyid),
    treeSize: m.treeSize ?? 0,
    rootHash: copy(m.rootHash),
    timeUnixMs: m.timeUnixMs ?? 0,
    bootId: copy(m.bootId),
  };
  validate(f);
  return f;
}

/** Signs a checkpoint as a DSSE envelope of payloadType `checkpoint`. */
export function signCheckpoint(signer: Signer, fields: CheckpointFields): Promise<Envelope> {
  return signEnvelope(signer, PAYLOAD_TYPES.checkpoint, encodeCheckpoint(fields));
}

/** Synchronous {@link signCheckpoint} for in-process signers. */
export function signCheckpointSync(
  signer: Signer & { signSync(d: Uint8Array): Uint8Array },
  fields: CheckpointFields,
): Envelope {
  return signEnvelopeSync(signer, PAYLOAD_TYPES.checkpoint, encodeCheckpoint(fields));
}
