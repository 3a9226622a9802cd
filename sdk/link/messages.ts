import { edgewarden } from '../__generated__/messages.js';
import { EdgewardenError } from '../errors';
import type { LinkCode } from './codes';

const pb = edgewarden.v1;

/** The link protocol version this host speaks (HelloRequest.protocol_version / Hello.protocol_version). */
export const PROTOCOL_VERSION = 1;

/** Sample encodings of a sensor (proto SampleFormat). */
export const SampleFormat = {
  UNSPECIFIED: 0,
  INT16_LE: 1,
  FLOAT32_LE: 2,
  UINT8: 3,
  INT32_LE: 4,
} as const;
export type SampleFormat = (typeof SampleFormat)[keyof typeof SampleFormat];

/** Kinds of actuator (proto ActuatorKind). */
export const ActuatorKind = { UNSPECIFIED: 0, LED: 1, RELAY: 2, PWM: 3 } as const;
export type ActuatorKind = (typeof ActuatorKind)[keyof typeof ActuatorKind];

/** Why the firmware refused a request (proto NackReason); the wire code travels in `EW_LINK_NACK` errors. */
export const NackReason = {
  UNSPECIFIED: 0,
  UNKNOWN_ACTUATOR: 1,
  BAD_VALUE: 2,
  BUSY: 3,
  UNSUPPORTED: 4,
  MALFORMED: 5,
} as const;
export type NackReason = (typeof NackReason)[keyof typeof NackReason];

/** The name of a NackReason code, or `REASON_<n>` for a code this host does not know. */
export function nackReasonName(code: number): string {
  const hit = Object.entries(NackReason).find(([, v]) => v === code);
  return hit ? hit[0] : `REASON_${code}`;
}

export interface SensorDescriptor {
  id: number;
  name: string;
  format: number;
  rateHz: number;
  channels: number;
}

export interface ActuatorDescriptor {
  id: number;
  name: string;
  kind: number;
}

/** What the firmware says about itself in Hello. */
export interface HelloInfo {
  firmwareName: string;
  firmwareVersion: string;
  protocolVersion: number;
  uniqueId: Uint8Array;
  sensors: SensorDescriptor[];
  actuators: ActuatorDescriptor[];
  /** Largest LinkMessage the firmware accepts; 0 means "not said" (use MAX_PAYLOAD). */
  maxRxPayload: number;
}

export interface SensorBatch {
  sensorId: number;
  /** Device time of the first sample, microseconds. */
  firstSampleUs: number;
  /** Samples per channel. */
  sampleCount: number;
  samples: Uint8Array;
}

export interface CommandBody {
  actuatorId: number;
  /** LED/relay: 0 off, 1 on; PWM: duty 0..10000. */
  value: number;
  /** 0: until told otherwise. */
  durationMs: number;
}

export interface ResultBody {
  modelName: string;
  label: number;
  score: number;
  recordDigest: Uint8Array;
}

/** The body of a LinkMessage: one variant per oneof case, discriminated by `type`. */
export type LinkBody =
  | { type: 'helloRequest'; protocolVersion: number }
  | ({ type: 'hello' } & HelloInfo)
  | ({ type: 'sensorBatch' } & SensorBatch)
  | ({ type: 'command' } & CommandBody)
  | { type: 'ack'; ackSeq: number }
  | { type: 'nack'; ackSeq: number; reason: number; detail: string }
  | { type: 'ping'; timeUs: number }
  | { type: 'pong'; timeUs: number }
  | { type: 'log'; level: number; text: string }
  | ({ type: 'result' } & ResultBody);

export type LinkBodyType = LinkBody['type'];

/** One message on the link. `seq` numbers requests (1..2^32-1, wrapping to 1); unsolicited messages carry 0. */
export interface LinkMessage {
  seq: number;
  body: LinkBody;
}

const BODY_TYPES: readonly LinkBodyType[] = [
  'helloRequest',
  'hello',
  'sensorBatch',
  'command',
  'ack',
  'nack',
  'ping',
  'pong',
  'log',
  'result',
];

const err = (code: LinkCode, message: string, details?: Record<string, unknown>, cause?: unknown) =>
  new EdgewardenError<LinkCode>(code, message, { details, cause });

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isI32 = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff;
const isU53 = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function check(ok: boolean, field: string, value: unknown): void {
  if (!ok)
    throw err('EW_LINK_INVALID_MESSAGE', `invalid value for ${field}: ${String(value)}`, {
      field,
      value: String(value),
    });
}

function u32(obj: object, field: string): void {
  const v = (obj as Record<string, unknown>)[field];
  check(isU32(v), field, v);
}

/** Checks field ranges so that encoding never silently truncates a number. */
function validate(msg: LinkMessage): void {
  check(isU32(msg.seq), 'seq', msg.seq);
  const b = msg.body;
  check(BODY_TYPES.includes(b?.type), 'body.type', b?.type);
  switch (b.type) {
    case 'helloRequest':
      u32(b, 'protocolVersion');
      break;
    case 'hello':
      for (const f of ['protocolVersion', 'maxRxPayload'] as const) u32(b, f);
      check(b.uniqueId instanceof Uint8Array, 'uniqueId', b.uniqueId);
      for (const s of b.sensors) for (const f of ['id', 'format', 'rateHz', 'channels'] as const) u32(s, f);
      for (const a of b.actuators) for (const f of ['id', 'kind'] as const) u32(a, f);
      break;
    case 'sensorBatch':
      u32(b, 'sensorId');
      u32(b, 'sampleCount');
      check(isU53(b.firstSampleUs), 'firstSampleUs', b.firstSampleUs);
      check(b.samples instanceof Uint8Array, 'samples', b.samples);
      break;
    case 'command':
      u32(b, 'actuatorId');
      u32(b, 'durationMs');
      check(isI32(b.value), 'value', b.value);
      break;
    case 'ack':
      u32(b, 'ackSeq');
      break;
    case 'nack':
      u32(b, 'ackSeq');
      u32(b, 'reason');
      break;
    case 'ping':
    case 'pong':
      check(isU53(b.timeUs), 'timeUs', b.timeUs);
      break;
    case 'log':
      u32(b, 'level');
      break;
    case 'result':
      u32(b, 'label');
      check(typeof b.score === 'number', 'score', b.score);
      check(b.recordDigest instanceof Uint8Array, 'recordDigest', b.recordDigest);
      break;
  }
}

/** Encodes a LinkMessage to its protobuf bytes (the frame payload). Throws `EW_LINK_INVALID_MESSAGE`. */
export function encodeLinkMessage(msg: LinkMessage): Uint8Array {
  validate(msg);
  const { type, ...fields } = msg.body;
  return pb.LinkMessage.encode({ seq: msg.seq, [type]: fields }).finish();
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const bytes = (v: unknown): Uint8Array => (v instanceof Uint8Array ? v : new Uint8Array(0));

/**
 * Decodes frame payload bytes to a LinkMessage with every field present (proto3 defaults filled in).
 * Throws `EW_LINK_MALFORMED` for bytes that are not a LinkMessage or carry no known body; hostile
 * bytes never escape as anything but that error.
 */
export function decodeLinkMessage(payload: Uint8Array): LinkMessage {
  let m: edgewarden.v1.LinkMessage;
  try {
    m = pb.LinkMessage.decode(payload);
  } catch (cause) {
    throw err(
      'EW_LINK_MALFORMED',
      `not a LinkMessage: ${(cause as Error)?.message ?? cause}`,
      { size: payload.length },
      cause,
    );
  }
  const seq = num(m.seq);
  const type = m.body;
  if (type === undefined) throw err('EW_LINK_MALFORMED', 'LinkMessage without a known body', { seq });
  const f = (m[type] ?? {}) as Record<string, unknown>;
  let body: LinkBody;
  switch (type) {
    case 'helloRequest':
      body = { type, protocolVersion: num(f.protocolVersion) };
      break;
    case 'hello':
      body = {
        type,
        firmwareName: str(f.firmwareName),
        firmwareVersion: str(f.firmwareVersion),
        protocolVersion: num(f.protocolVersion),
        uniqueId: bytes(f.uniqueId),
        sensors: ((f.sensors as Record<string, unknown>[] | undefined) ?? []).map((s) => ({
          id: num(s.id),
          name: str(s.name),
          format: num(s.format),
          rateHz: num(s.rateHz),
          channels: num(s.channels),
        })),
        actuators: ((f.actuators as Record<string, unknown>[] | undefined) ?? []).map((a) => ({
          id: num(a.id),
          name: str(a.name),
          kind: num(a.kind),
        })),
        maxRxPayload: num(f.maxRxPayload),
      };
      break;
    case 'sensorBatch':
      body = {
        type,
        sensorId: num(f.sensorId),
        firstSampleUs: num(f.firstSampleUs),
        sampleCount: num(f.sampleCount),
        samples: bytes(f.samples),
      };
      break;
    case 'command':
      body = { type, actuatorId: num(f.actuatorId), value: num(f.value), durationMs: num(f.durationMs) };
      break;
    case 'ack':
      body = { type, ackSeq: num(f.ackSeq) };
      break;
    case 'nack':
      body = { type, ackSeq: num(f.ackSeq), reason: num(f.reason), detail: str(f.detail) };
      break;
    case 'ping':
    case 'pong':
      body = { type, timeUs: num(f.timeUs) };
      break;
    case 'log':
      body = { type, level: num(f.level), text: str(f.text) };
      break;
    case 'result':
      body = {
        type,
        modelName: str(f.modelName),
        label: num(f.label),
        score: num(f.score),
        recordDigest: bytes(f.recordDigest),
      };
      break;
  }
  return { seq, body };
}

/** A JSON-friendly view of a message (bytes as lowercase hex), as `link monitor --json` prints it. */
export function linkMessageToJson(msg: LinkMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(msg.body)) {
    if (v instanceof Uint8Array) out[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
    else if (Array.isArray(v)) out[k] = v.map((x) => ({ ...x }));
    else out[k] = v;
  }
  return { seq: msg.seq, ...out };
}
