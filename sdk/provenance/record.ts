import { edgewarden } from '../__generated__/provenance.js';
import { EdgewardenError } from '../errors';

/** What the policy gate decided for the inference a record describes. */
export type DecisionOutcome = 'allowed' | 'blocked' | 'redacted';

/** The policy decision recorded with an inference. */
export interface RecordDecision {
  outcome: DecisionOutcome;
  /** Id of the rule that fired; empty when none did. */
  ruleId: string;
  /** Authority whose rule fired; empty when none did. */
  authority: string;
}

/** JS mirror of the proto `Record` (DESIGN.md "Provenance record"). Byte fields are raw bytes. */
export interface RecordFields {
  /** Format version; currently {@link RECORD_VERSION}. */
  version: number;
  /** SHA-256 of the device's raw public key (32 bytes). */
  deviceKeyid: Uint8Array;
  /** Leaf index of this record in the device's audit log. */
  index: number;
  timeUnixMs: number;
  bootId: Uint8Array;
  /** Monotonic clock in ns; read back as a JS number, so exact only below 2^53 (about 104 days). */
  monotonicNs: number;
  clockSynced: boolean;
  /** SHA-256 over the model file (and external data); 32 bytes, or empty when unknown. */
  modelDigest: Uint8Array;
  modelName: string;
  policyDigest: Uint8Array;
  decision: RecordDecision;
  /** Canonical tensor digests (32 bytes each). */
  inputDigest: Uint8Array;
  outputDigest: Uint8Array;
  executionProvider: string;
  runtimeVersion: string;
  sdkVersion: string;
  /** Leaf hash of the previous record in the log; empty for the first. */
  prevLeafHash: Uint8Array;
  /** Application metadata; bounded by {@link RECORD_LIMITS}. A null-prototype object when decoded. */
  labels: Record<string, string>;
  /** True when the digests are HMAC-SHA256 keyed by the device salt. */
  salted: boolean;
}

export const RECORD_VERSION = 1;

/** Bounds on what a record may carry; larger records are refused on encode and decode. */
export const RECORD_LIMITS = {
  maxBytes: 64 * 1024,
  maxLabels: 64,
  maxLabelKeyLength: 128,
  maxLabelValueLength: 1024,
  maxStringLength: 256,
  maxBootIdBytes: 64,
  maxPolicyDigestBytes: 64,
} as const;

const OUTCOME_TO_PROTO: Record<DecisionOutcome, number> = { allowed: 1, blocked: 2, redacted: 3 };
const PROTO_TO_OUTCOME: Record<number, DecisionOutcome> = { 1: 'allowed', 2: 'blocked', 3: 'redacted' };
const EMPTY = new Uint8Array(0);

/** A plain Uint8Array of its own: protobufjs hands out Buffers that share the input's memory. */
const copy = (b: Uint8Array | null | undefined): Uint8Array => (b ? new Uint8Array(b) : new Uint8Array(0));

function malformed(message: string, cause?: unknown): never {
  throw new EdgewardenError('EW_PROVENANCE_MALFORMED', `record: ${message}`, cause === undefined ? {} : { cause });
}

function checkBytes(name: string, v: Uint8Array, allowed: (n: number) => boolean): void {
  if (!(v instanceof Uint8Array) || !allowed(v.length)) malformed(`${name} has ${v?.length} bytes`);
}

function checkString(name: string, v: string, max: number = RECORD_LIMITS.maxStringLength): void {
  if (typeof v !== 'string' || v.length > max) malformed(`${name} is not a string of at most ${max} characters`);
}

function checkUint(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) malformed(`${name} is not a non-negative safe integer`);
}

const is32 = (n: number) => n === 32;
const is0or32 = (n: number) => n === 0 || n === 32;

/** Checks every field against the format's rules; throws `EW_PROVENANCE_MALFORMED`. */
function validate(f: RecordFields): void {
  if (f.version !== RECORD_VERSION) malformed(`unsupported version ${f.version}`);
  checkBytes('deviceKeyid', f.deviceKeyid, is32);
  checkUint('index', f.index);
  if (!Number.isSafeInteger(f.timeUnixMs)) malformed('timeUnixMs is not a safe integer');
  checkBytes('bootId', f.bootId, (n) => n <= RECORD_LIMITS.maxBootIdBytes);
  if (!Number.isFinite(f.monotonicNs) || f.monotonicNs < 0) malformed('monotonicNs is not a non-negative number');
  checkBytes('modelDigest', f.modelDigest, is0or32);
  checkString('modelName', f.modelName);
  checkBytes('policyDigest', f.policyDigest, (n) => n <= RECORD_LIMITS.maxPolicyDigestBytes);
  if (typeof f.decision !== 'object' || f.decision === null || !Object.hasOwn(OUTCOME_TO_PROTO, f.decision.outcome)) {
    malformed('decision outcome is not allowed, blocked or redacted');
  }
  checkString('decision.ruleId', f.decision.ruleId);
  checkString('decision.authority', f.decision.authority);
  checkBytes('inputDigest', f.inputDigest, is32);
  checkBytes('outputDigest', f.outputDigest, is32);
  checkString('executionProvider', f.executionProvider);
  checkString('runtimeVersion', f.runtimeVersion);
  checkString('sdkVersion', f.sdkVersion);
  checkBytes('prevLeafHash', f.prevLeafHash, is0or32);
  const keys = Object.keys(f.labels);
  if (keys.length > RECORD_LIMITS.maxLabels) malformed(`more than ${RECORD_LIMITS.maxLabels} labels`);
  for (const k of keys) {
    checkString('label key', k, RECORD_LIMITS.maxLabelKeyLength);
    checkString(`label ${JSON.stringify(k)}`, f.labels[k]!, RECORD_LIMITS.maxLabelValueLength);
  }
}

/** Encodes a record as protobuf bytes (the DSSE payload and the Merkle leaf). Validates first. */
export function encodeRecord(fields: RecordFields): Uint8Array {
  if (typeof fields !== 'object' || fields === null) malformed('not an object');
  const labels = fields.labels ?? {};
  if (typeof labels !== 'object') malformed('labels is not an object');
  validate({ ...fields, labels });
  const bytes = edgewarden.v1.Record.encode({
    version: fields.version,
    deviceKeyid: fields.deviceKeyid,
    index: fields.index,
    timeUnixMs: fields.timeUnixMs,
    bootId: fields.bootId,
    monotonicNs: fields.monotonicNs,
    clockSynced: fields.clockSynced,
    modelDigest: fields.modelDigest,
    modelName: fields.modelName,
    policyDigest: fields.policyDigest,
    decision: {
      outcome: OUTCOME_TO_PROTO[fields.decision.outcome],
      ruleId: fields.decision.ruleId,
      authority: fields.decision.authority,
    },
    inputDigest: fields.inputDigest,
    outputDigest: fields.outputDigest,
    executionProvider: fields.executionProvider,
    runtimeVersion: fields.runtimeVersion,
    sdkVersion: fields.sdkVersion,
    prevLeafHash: fields.prevLeafHash,
    labels,
    salted: fields.salted,
  }).finish();
  if (bytes.length > RECORD_LIMITS.maxBytes) malformed(`encodes to ${bytes.length} bytes`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length); // a plain view, not a Buffer
}

/**
 * Decodes record bytes. Throws `EW_PROVENANCE_MALFORMED` on anything that is not a valid record
 * (bad wire format, wrong field sizes, too many or too long labels). Labels come back in a
 * null-prototype object, so a `__proto__` key is an ordinary key and cannot touch any prototype.
 */
export function decodeRecord(bytes: Uint8Array): RecordFields {
  if (!(bytes instanceof Uint8Array)) malformed('not bytes');
  if (bytes.length > RECORD_LIMITS.maxBytes) malformed(`${bytes.length} bytes exceeds ${RECORD_LIMITS.maxBytes}`);
  let m: edgewarden.v1.Record;
  try {
    m = edgewarden.v1.Record.decode(bytes);
  } catch (cause) {
    return malformed('bytes do not decode', cause);
  }
  const labels = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(m.labels ?? {})) labels[k] = v;
  const outcome = PROTO_TO_OUTCOME[m.decision?.outcome ?? 0];
  if (!outcome) malformed('decision outcome missing or unknown');
  const f: RecordFields = {
    version: m.version ?? 0,
    deviceKeyid: copy(m.deviceKeyid),
    index: m.index ?? 0,
    timeUnixMs: m.timeUnixMs ?? 0,
    bootId: copy(m.bootId),
    monotonicNs: m.monotonicNs ?? 0,
    clockSynced: m.clockSynced === true,
    modelDigest: copy(m.modelDigest),
    modelName: m.modelName ?? '',
    policyDigest: copy(m.policyDigest),
    decision: { outcome, ruleId: m.decision?.ruleId ?? '', authority: m.decision?.authority ?? '' },
    inputDigest: copy(m.inputDigest),
    outputDigest: copy(m.outputDigest),
    executionProvider: m.executionProvider ?? '',
    runtimeVersion: m.runtimeVersion ?? '',
    sdkVersion: m.sdkVersion ?? '',
    prevLeafHash: copy(m.prevLeafHash),
    labels,
    salted: m.salted === true,
  };
  validate(f);
  return f;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** JSON view of a record for result files and humans: bytes as lowercase hex. Informational only. */
export function recordToJson(r: RecordFields): Record<string, unknown> {
  const labels: Record<string, string> = {};
  // Sorted keys and defineProperty keep the view stable and a `__proto__` label an ordinary key.
  for (const k of Object.keys(r.labels).sort()) {
    Object.defineProperty(labels, k, { value: r.labels[k], enumerable: true, writable: true, configurable: true });
  }
  return {
    version: r.version,
    deviceKeyid: hex(r.deviceKeyid),
    index: r.index,
    timeUnixMs: r.timeUnixMs,
    bootId: hex(r.bootId),
    monotonicNs: r.monotonicNs,
    clockSynced: r.clockSynced,
    modelDigest: hex(r.modelDigest),
    modelName: r.modelName,
    policyDigest: hex(r.policyDigest),
    decision: { ...r.decision },
    inputDigest: hex(r.inputDigest),
    outputDigest: hex(r.outputDigest),
    executionProvider: r.executionProvider,
    runtimeVersion: r.runtimeVersion,
    sdkVersion: r.sdkVersion,
    prevLeafHash: hex(r.prevLeafHash),
    labels,
    salted: r.salted,
  };
}

/**
 * Reads only `device_keyid` (2), `index` (3) and `prev_leaf_hash` (17) from record bytes, skipping the rest:
 * the audit log checks the hash chain with it on every append and open, far cheaper than a full decode.
 * Returns undefined when the bytes are not well-formed protobuf at the top level.
 */
export function readChainFields(
  bytes: Uint8Array,
): { index: number; prevLeafHash: Uint8Array; deviceKeyid: Uint8Array } | undefined {
  let pos = 0;
  let index = 0;
  let prev: Uint8Array = EMPTY;
  let keyid: Uint8Array = EMPTY;
  const end = bytes.length;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) return -1;
      const b = bytes[pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    return -1;
  };
  while (pos < end) {
    const tag = varint();
    if (tag < 0) return undefined;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) return undefined;
    if (wire === 0) {
      const v = varint();
      if (v < 0) return undefined;
      if (field === 3) index = v;
    } else if (wire === 2) {
      const len = varint();
      if (len < 0 || pos + len > end) return undefined;
      if (field === 17) prev = bytes.subarray(pos, pos + len);
      else if (field === 2) keyid = bytes.subarray(pos, pos + len);
      pos += len;
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 5) {
      pos += 4;
    } else {
      return undefined;
    }
  }
  if (pos !== end || !Number.isSafeInteger(index)) return undefined;
  return { index, prevLeafHash: prev, deviceKeyid: keyid };
}
