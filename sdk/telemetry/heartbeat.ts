import { edgewarden } from '../__generated__/messages.js';
import { EdgewardenError } from '../errors';
import { decodeEnvelope, type Envelope, PAYLOAD_TYPES, signEnvelope } from '../provenance/dsse';
import type { Signer } from '../provenance/signer';
import { SDK_VERSION } from '../version';
import { u8 } from './bytes';

/** Upper bound on a heartbeat payload we build or decode. */
export const MAX_HEARTBEAT_BYTES = 64 * 1024;
/** Upper bound on a signed heartbeat envelope (payload + signatures + framing). */
export const MAX_SIGNED_HEARTBEAT_BYTES = MAX_HEARTBEAT_BYTES + 4096;
/** Bounds on repeated fields, so hostile input cannot make a decoder allocate without limit. */
export const HEARTBEAT_LIMITS = {
  models: 256,
  reasons: 64,
  proofHashes: 64,
  refusals: 64,
  alerts: 64,
  stringBytes: 256,
} as const;

/** What a broker may see of a heartbeat. */
export type ShareLevel = 'full' | 'summary' | 'none';
export const SHARE_LEVELS: readonly ShareLevel[] = ['full', 'summary', 'none'];

export type ComplianceState = 'unspecified' | 'compliant' | 'degraded' | 'non_compliant';

/** The board a device runs on (proto `Board`). */
export interface BoardInfo {
  model: string;
  family: string;
  arch: string;
  os: string;
  cpus: number;
}

/** Health probes (proto `Health`); temperature absent when unknown. */
export interface HealthInfo {
  tempMilliC?: number;
  throttled: number;
  memTotalBytes: number;
  memAvailableBytes: number;
  diskFreeBytes: number;
  load1Milli: number;
  uptimeS: number;
}

/** Per-model counters and latency percentiles (proto `ModelStatus`). */
export interface ModelStatusInfo {
  digest: Uint8Array;
  name: string;
  inferences: number;
  blocked: number;
  errors: number;
  p50Us: number;
  p99Us: number;
  executionProvider: string;
}

/**
 * A heartbeat as plain data: what the agent gathers, what {@link buildHeartbeat} encodes and what
 * {@link decodeHeartbeat} returns. Optional fields default to empty/zero when built.
 */
export interface HeartbeatInput {
  deviceKeyid: Uint8Array;
  fleet: string;
  /** Birth/death sequence of the connection this copy is sent on (set per broker by the publisher). */
  bdSeq: number;
  /** Device-wide heartbeat sequence: strictly increasing, across restarts and brokers. */
  seq: number;
  timeUnixMs: number;
  bootId: Uint8Array;
  sdkVersion?: string;
  board?: BoardInfo;
  health?: HealthInfo;
  models?: ModelStatusInfo[];
  policyDigest?: Uint8Array;
  compliance?: { state: ComplianceState; reasons: string[] };
  /** The audit log's latest signed checkpoint. */
  checkpoint?: Envelope;
  /** RFC 9162 consistency proof from the previous heartbeat's checkpoint (previousTreeSize) to this one. */
  consistencyProof?: Uint8Array[];
  previousTreeSize?: number;
  outboxDepth?: number;
  dropped?: number;
  historical?: boolean;
  share?: ShareLevel;
  policyRefusals?: string[];
  auditAlerts?: string[];
}

/** A decoded heartbeat: every field present (board, health, checkpoint only when sent). */
export type Heartbeat = Required<Omit<HeartbeatInput, 'board' | 'health' | 'checkpoint'>> &
  Pick<HeartbeatInput, 'board' | 'health' | 'checkpoint'>;

const STATE_TO_PROTO: Record<ComplianceState, edgewarden.v1.Compliance.State> = {
  unspecified: edgewarden.v1.Compliance.State.STATE_UNSPECIFIED,
  compliant: edgewarden.v1.Compliance.State.COMPLIANT,
  degraded: edgewarden.v1.Compliance.State.DEGRADED,
  non_compliant: edgewarden.v1.Compliance.State.NON_COMPLIANT,
};
const PROTO_TO_STATE = new Map<number, ComplianceState>(
  Object.entries(STATE_TO_PROTO).map(([k, v]) => [v as number, k as ComplianceState]),
);

function malformed(message: string, cause?: unknown): never {
  throw new EdgewardenError('EW_TELEMETRY_MALFORMED', message, cause === undefined ? {} : { cause });
}

function badInput(field: string, message: string): never {
  throw new EdgewardenError('EW_TELEMETRY_INPUT', `${field}: ${message}`, { details: { field } });
}

function checkUint(field: string, v: number | undefined, fail: (f: string, m: string) => never): number {
  const n = v ?? 0;
  if (!Number.isSafeInteger(n) || n < 0) fail(field, `must be a non-negative safe integer, got ${n}`);
  return n;
}

function checkList<T>(
  field: string,
  list: readonly T[] | undefined,
  max: number,
  fail: (f: string, m: string) => never,
) {
  const l = list ?? [];
  if (l.length > max) fail(field, `${l.length} entries exceed ${max}`);
  return l;
}

function checkStrings(
  field: string,
  list: readonly string[] | undefined,
  max: number,
  fail: (f: string, m: string) => never,
) {
  const l = checkList(field, list, max, fail);
  for (const s of l) {
    if (typeof s !== 'string' || Buffer.byteLength(s) > HEARTBEAT_LIMITS.stringBytes) {
      fail(field, `entries must be strings of at most ${HEARTBEAT_LIMITS.stringBytes} bytes`);
    }
  }
  return [...l];
}

const failMalformed = (f: string, m: string): never => malformed(`heartbeat ${f}: ${m}`);

/** Encodes a heartbeat as its protobuf payload. Throws `EW_TELEMETRY_INPUT` on invalid fields. */
export function buildHeartbeat(input: HeartbeatInput): Uint8Array {
  if (!(input.deviceKeyid instanceof Uint8Array) || input.deviceKeyid.length !== 32) {
    badInput('deviceKeyid', 'must be 32 bytes');
  }
  if (typeof input.fleet !== 'string' || input.fleet === '') badInput('fleet', 'must be a non-empty string');
  for (const f of ['bdSeq', 'seq', 'previousTreeSize', 'outboxDepth', 'dropped'] as const)
    checkUint(f, input[f], badInput);
  if (!Number.isSafeInteger(input.timeUnixMs)) badInput('timeUnixMs', 'must be an integer');
  if (input.share !== undefined && !SHARE_LEVELS.includes(input.share)) badInput('share', 'must be full|summary|none');
  const models = checkList('models', input.models, HEARTBEAT_LIMITS.models, badInput);
  const proof = checkList('consistencyProof', input.consistencyProof, HEARTBEAT_LIMITS.proofHashes, badInput);
  const reasons = checkStrings('compliance.reasons', input.compliance?.reasons, HEARTBEAT_LIMITS.reasons, badInput);
  const refusals = checkStrings('policyRefusals', input.policyRefusals, HEARTBEAT_LIMITS.refusals, badInput);
  const alerts = checkStrings('auditAlerts', input.auditAlerts, HEARTBEAT_LIMITS.alerts, badInput);
  const state = input.compliance ? STATE_TO_PROTO[input.compliance.state] : undefined;
  if (input.compliance && state === undefined) badInput('compliance.state', `unknown state ${input.compliance.state}`);
  const bytes = edgewarden.v1.Heartbeat.encode({
    deviceKeyid: input.deviceKeyid,
    fleet: input.fleet,
    bdSeq: input.bdSeq,
    seq: input.seq,
    timeUnixMs: input.timeUnixMs,
    bootId: input.bootId,
    sdkVersion: input.sdkVersion ?? SDK_VERSION,
    board: input.board ?? null,
    health: input.health ? { ...input.health, tempMilliC: input.health.tempMilliC ?? null } : null,
    models: [...models],
    policyDigest: input.policyDigest ?? new Uint8Array(0),
    compliance: input.compliance ? { state: state ?? 0, reasons } : null,
    checkpoint: input.checkpoint ?? null,
    consistencyProof: [...proof],
    previousTreeSize: input.previousTreeSize ?? 0,
    outboxDepth: input.outboxDepth ?? 0,
    dropped: input.dropped ?? 0,
    historical: input.historical ?? false,
    share: input.share ?? 'full',
    policyRefusals: refusals,
    auditAlerts: alerts,
  }).finish();
  if (bytes.length > MAX_HEARTBEAT_BYTES) badInput('heartbeat', `${bytes.length} bytes exceed ${MAX_HEARTBEAT_BYTES}`);
  return bytes;
}

/** Builds and signs a heartbeat as a DSSE envelope (payloadType heartbeat). */
export function signHeartbeat(signer: Signer, input: HeartbeatInput): Promise<Envelope> {
  return signEnvelope(signer, PAYLOAD_TYPES.heartbeat, buildHeartbeat(input));
}

function decodeProto<T>(what: string, bytes: Uint8Array, max: number, decode: (b: Uint8Array) => T): T {
  if (!(bytes instanceof Uint8Array)) malformed(`${what}: not bytes`);
  if (bytes.length > max) malformed(`${what} of ${bytes.length} bytes exceeds ${max}`);
  try {
    return decode(bytes);
  } catch (cause) {
    return malformed(`${what} bytes do not decode`, cause);
  }
}

function bytesField(field: string, v: Uint8Array | null | undefined, maxLen: number): Uint8Array {
  const b = u8(v);
  if (b.length > maxLen) failMalformed(field, `${b.length} bytes exceed ${maxLen}`);
  return b;
}

function str(field: string, v: string | null | undefined): string {
  const s = v ?? '';
  if (Buffer.byteLength(s) > HEARTBEAT_LIMITS.stringBytes) failMalformed(field, 'string too long');
  return s;
}

/**
 * Decodes a heartbeat payload (the envelope's payload, after its signature was verified).
 * Throws `EW_TELEMETRY_MALFORMED` on anything that is not a well-formed, bounded heartbeat.
 */
export function decodeHeartbeat(bytes: Uint8Array): Heartbeat {
  const m = decodeProto('heartbeat', bytes, MAX_HEARTBEAT_BYTES, (b) => edgewarden.v1.Heartbeat.decode(b));
  if (m.deviceKeyid.length !== 32) failMalformed('deviceKeyid', 'must be 32 bytes');
  const fleet = str('fleet', m.fleet);
  if (fleet === '') failMalformed('fleet', 'missing');
  for (const f of ['bdSeq', 'seq', 'previousTreeSize', 'outboxDepth', 'dropped'] as const) {
    checkUint(f, m[f], failMalformed);
  }
  if (!Number.isSafeInteger(m.timeUnixMs)) failMalformed('timeUnixMs', 'not a safe integer');
  const share = m.share === '' ? 'full' : m.share;
  if (!SHARE_LEVELS.includes(share as ShareLevel)) failMalformed('share', `unknown level ${JSON.stringify(share)}`);
  const models = checkList('models', m.models, HEARTBEAT_LIMITS.models, failMalformed).map((x, i) => ({
    digest: bytesField(`models[${i}].digest`, x.digest, 64),
    name: str(`models[${i}].name`, x.name),
    inferences: checkUint(`models[${i}].inferences`, x.inferences ?? 0, failMalformed),
    blocked: checkUint(`models[${i}].blocked`, x.blocked ?? 0, failMalformed),
    errors: checkUint(`models[${i}].errors`, x.errors ?? 0, failMalformed),
    p50Us: x.p50Us ?? 0,
    p99Us: x.p99Us ?? 0,
    executionProvider: str(`models[${i}].executionProvider`, x.executionProvider),
  }));
  const proof = checkList('consistencyProof', m.consistencyProof, HEARTBEAT_LIMITS.proofHashes, failMalformed);
  const proofOut = proof.map((h) => {
    if (h.length !== 32) failMalformed('consistencyProof', 'hashes must be 32 bytes');
    return u8(h);
  });
  let compliance: Heartbeat['compliance'] = { state: 'unspecified', reasons: [] };
  if (m.compliance) {
    const state =
      PROTO_TO_STATE.get(m.compliance.state ?? 0) ??
      failMalformed('compliance.state', `unknown value ${m.compliance.state}`);
    compliance = {
      state,
      reasons: checkStrings('compliance.reasons', m.compliance.reasons ?? [], HEARTBEAT_LIMITS.reasons, failMalformed),
    };
  }
  let checkpoint: Envelope | undefined;
  if (m.checkpoint) {
    const payloadType = m.checkpoint.payloadType || failMalformed('checkpoint', 'envelope has no payloadType');
    checkpoint = {
      payload: u8(m.checkpoint.payload),
      payloadType,
      signatures: (m.checkpoint.signatures ?? []).map((s) => ({
        keyid: u8(s.keyid),
        sig: u8(s.sig),
      })),
    };
  }
  const out: Heartbeat = {
    deviceKeyid: u8(m.deviceKeyid),
    fleet,
    bdSeq: m.bdSeq,
    seq: m.seq,
    timeUnixMs: m.timeUnixMs,
    bootId: bytesField('bootId', m.bootId, 64),
    sdkVersion: str('sdkVersion', m.sdkVersion),
    models,
    policyDigest: bytesField('policyDigest', m.policyDigest, 64),
    compliance,
    consistencyProof: proofOut,
    previousTreeSize: m.previousTreeSize,
    outboxDepth: m.outboxDepth,
    dropped: m.dropped,
    historical: m.historical,
    share: share as ShareLevel,
    policyRefusals: checkStrings('policyRefusals', m.policyRefusals, HEARTBEAT_LIMITS.refusals, failMalformed),
    auditAlerts: checkStrings('auditAlerts', m.auditAlerts, HEARTBEAT_LIMITS.alerts, failMalformed),
  };
  if (m.board) {
    out.board = {
      model: str('board.model', m.board.model),
      family: str('board.family', m.board.family),
      arch: str('board.arch', m.board.arch),
      os: str('board.os', m.board.os),
      cpus: m.board.cpus ?? 0,
    };
  }
  if (m.health) {
    const h = m.health;
    out.health = {
      throttled: h.throttled ?? 0,
      memTotalBytes: h.memTotalBytes ?? 0,
      memAvailableBytes: h.memAvailableBytes ?? 0,
      diskFreeBytes: h.diskFreeBytes ?? 0,
      load1Milli: h.load1Milli ?? 0,
      uptimeS: h.uptimeS ?? 0,
    };
    if (h.tempMilliC !== undefined && h.tempMilliC !== null) out.health.tempMilliC = h.tempMilliC;
  }
  if (checkpoint) out.checkpoint = checkpoint;
  return out;
}

/**
 * Decodes a binary DSSE envelope that should hold a heartbeat, and its payload, WITHOUT verifying the
 * signature (the collector verifies `envelope` against enrolled keys first, then trusts `heartbeat`).
 */
export function decodeSignedHeartbeat(bytes: Uint8Array): { envelope: Envelope; heartbeat: Heartbeat } {
  const envelope = openEnvelope(bytes, PAYLOAD_TYPES.heartbeat, MAX_SIGNED_HEARTBEAT_BYTES);
  return { envelope, heartbeat: decodeHeartbeat(envelope.payload) };
}

/** Decodes an envelope with the expected payloadType; errors are `EW_TELEMETRY_MALFORMED`. */
export function openEnvelope(bytes: Uint8Array, payloadType: string, maxBytes: number): Envelope {
  if (!(bytes instanceof Uint8Array)) malformed('envelope: not bytes');
  if (bytes.length > maxBytes) malformed(`envelope of ${bytes.length} bytes exceeds ${maxBytes}`);
  let env: Envelope;
  try {
    env = decodeEnvelope(bytes, maxBytes);
  } catch (cause) {
    return malformed('envelope does not decode', cause);
  }
  if (env.payloadType !== payloadType) {
    malformed(`payloadType ${JSON.stringify(env.payloadType)}, expected ${payloadType}`);
  }
  return env;
}

/**
 * Reduces a heartbeat to what a broker with privacy level `level` may see, and stamps `share`.
 * - `full`: everything.
 * - `summary`: no health probes; models keep only digest and counters (no names, latencies or
 *   execution providers); board keeps family and arch only. Compliance, policy digest, checkpoint and
 *   consistency proof, counters, refusals and audit alerts stay: they are what oversight needs.
 * - `none`: a liveness beacon only: identity, bd_seq, seq, time, boot id, SDK version and the outbox
 *   counters. Nothing about models, board, health, policy or compliance. (Birth and death are sent
 *   at every level.)
 */
export function reduceForShare(input: HeartbeatInput, level: ShareLevel): HeartbeatInput {
  if (level === 'full') return { ...input, share: 'full' };
  const liveness: HeartbeatInput = {
    deviceKeyid: input.deviceKeyid,
    fleet: input.fleet,
    bdSeq: input.bdSeq,
    seq: input.seq,
    timeUnixMs: input.timeUnixMs,
    bootId: input.bootId,
    outboxDepth: input.outboxDepth ?? 0,
    dropped: input.dropped ?? 0,
    historical: input.historical ?? false,
    share: level,
  };
  if (input.sdkVersion !== undefined) liveness.sdkVersion = input.sdkVersion;
  if (level === 'none') return liveness;
  if (level !== 'summary') badInput('share', `unknown level ${JSON.stringify(level)}`);
  const out: HeartbeatInput = {
    ...liveness,
    models: (input.models ?? []).map((m) => ({
      digest: m.digest,
      name: '',
      inferences: m.inferences,
      blocked: m.blocked,
      errors: m.errors,
      p50Us: 0,
      p99Us: 0,
      executionProvider: '',
    })),
    consistencyProof: input.consistencyProof ?? [],
    previousTreeSize: input.previousTreeSize ?? 0,
    policyRefusals: input.policyRefusals ?? [],
    auditAlerts: input.auditAlerts ?? [],
  };
  if (input.board) out.board = { model: '', family: input.board.family, arch: input.board.arch, os: '', cpus: 0 };
  if (input.policyDigest) out.policyDigest = input.policyDigest;
  if (input.compliance) out.compliance = input.compliance;
  if (input.checkpoint) out.checkpoint = input.checkpoint;
  return out;
}
