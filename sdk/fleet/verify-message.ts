import { createPublicKey, type KeyObject } from 'node:crypto';
import { edgewarden as provenanceProto } from '../__generated__/provenance.js';
import { decodeEnvelope, type Envelope, PAYLOAD_TYPES, pae } from '../provenance/dsse';
import { verifyEd25519 } from '../provenance/ed25519';
import { deviceIdOf, keyIdOf } from '../provenance/keys';
import { decodeHeartbeat, type Heartbeat, MAX_SIGNED_HEARTBEAT_BYTES } from '../telemetry/heartbeat';
import { decodeLifecycle, type LifecycleFields } from '../telemetry/lifecycle';
import { type DeviceTopicKind, parseDeviceTopic } from '../telemetry/topics';
import { sameBytes } from '../util/bytes';
import type { RejectCode } from './codes';
import { lifecyclePublicKey } from './lifecycle-key';

/** A key the collector trusts for one device. */
export interface EnrolledKey {
  deviceId: string;
  /** Ed25519 public key. */
  key: KeyObject;
  /** `pending` while a TOFU device waits for approval. */
  status: 'approved' | 'pending';
  /** The raw 32-byte key (lets a worker thread verify without the KeyObject). */
  raw?: Uint8Array;
}

/** Checks one Ed25519 signature over `msg` (the DSSE PAE bytes). */
export type SignatureCheck = (key: KeyObject, raw: Uint8Array | undefined, msg: Uint8Array, sig: Uint8Array) => boolean;

/** The default {@link SignatureCheck}: on this thread, libsodium when present, else node:crypto. */
export const checkSignatureInline: SignatureCheck = (key, _raw, msg, sig) => verifyEd25519(msg, sig, key);

/** Looks up an enrolled key by its keyid (lowercase hex of the 32-byte keyid). */
export type KeyLookup = (keyidHex: string) => EnrolledKey | undefined;

/** A checkpoint as the collector reads it (from `…/ckpt` or inside a heartbeat). */
export interface CheckpointInfo {
  treeSize: number;
  rootHash: Uint8Array;
  timeUnixMs: number;
  bootId: Uint8Array;
}

interface Common {
  ok: true;
  fleet: string;
  deviceId: string;
  keyid: Uint8Array;
  envelope: Envelope;
  /** The enrolled key (undefined only for a self-signed TOFU birth). */
  enrolled: EnrolledKey | undefined;
}

/** A message whose envelope verified and whose payload decoded and matches its topic. */
export type VerifiedMessage = VerifiedHeartbeat | VerifiedLifecycle | VerifiedCheckpoint;
export type VerifiedHeartbeat = Common & { kind: 'hb'; heartbeat: Heartbeat; checkpoint?: CheckpointInfo };
export type VerifiedLifecycle = Common & {
  kind: 'birth' | 'death';
  lifecycle: Required<LifecycleFields>;
  publicKey?: Uint8Array;
};
export type VerifiedCheckpoint = Common & { kind: 'ckpt'; checkpoint: CheckpointInfo };

/** Why a message was refused. `deviceId` is the topic's device when the topic parsed. */
export interface Rejection {
  ok: false;
  code: RejectCode;
  message: string;
  deviceId?: string;
}

/** Options of {@link verifyDeviceMessage}. */
export interface VerifyMessageOptions {
  /** Largest message accepted (default: the largest signed heartbeat). */
  maxBytes?: number;
  /** Now, in collector wall-clock ms. */
  nowMs: number;
  /** How far a signed timestamp may lie in the future (default 5 minutes). */
  maxSkewMs?: number;
  /**
   * The embedded checkpoint this device's last accepted heartbeat carried. When a heartbeat carries
   * the very same signed bytes again (an idle device), its signature is not checked twice.
   */
  seenCheckpoint?: (deviceId: string) => Envelope | undefined;
  /** How signatures are checked (default: inline). The collector batches them to worker threads. */
  checkSignature?: SignatureCheck;
}

const TYPE_BY_KIND: Record<'hb' | 'birth' | 'death' | 'ckpt', string> = {
  hb: PAYLOAD_TYPES.heartbeat,
  birth: PAYLOAD_TYPES.lifecycle,
  death: PAYLOAD_TYPES.lifecycle,
  ckpt: PAYLOAD_TYPES.checkpoint,
};
const EDGEWARDEN_TYPE = /^application\/vnd\.edgewarden\.([a-z]+)\.v(\d+)\+protobuf$/;

/** Default allowed clock skew for signed timestamps. */
export const DEFAULT_MAX_SKEW_MS = 5 * 60_000;

const reject = (code: RejectCode, message: string, deviceId?: string): Rejection =>
  deviceId === undefined ? { ok: false, code, message } : { ok: false, code, message, deviceId };

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function typeCheck(actual: string, expected: string): { code: RejectCode; message: string } | undefined {
  if (actual === expected) return undefined;
  const a = EDGEWARDEN_TYPE.exec(actual);
  const e = EDGEWARDEN_TYPE.exec(expected);
  if (a && e && a[1] === e[1]) {
    return { code: 'EW_FLEET_VERSION', message: `${a[1]} version v${a[2]} is not supported (expected v${e[2]})` };
  }
  return {
    code: 'EW_FLEET_PAYLOAD_TYPE',
    message: `payloadType ${JSON.stringify(actual.slice(0, 100))}, expected ${expected}`,
  };
}

/** Decodes a checkpoint payload, or a reason it is not one. */
function decodeCheckpointPayload(bytes: Uint8Array): CheckpointInfo & { deviceKeyid: Uint8Array } {
  const m = provenanceProto.v1.Checkpoint.decode(bytes);
  if (m.deviceKeyid.length !== 32) throw new Error('checkpoint deviceKeyid must be 32 bytes');
  if (m.rootHash.length !== 32) throw new Error('checkpoint rootHash must be 32 bytes');
  if (!Number.isSafeInteger(m.treeSize) || m.treeSize < 0) throw new Error('checkpoint treeSize out of range');
  if (!Number.isSafeInteger(m.timeUnixMs)) throw new Error('checkpoint time out of range');
  return {
    deviceKeyid: m.deviceKeyid,
    treeSize: m.treeSize,
    rootHash: m.rootHash,
    timeUnixMs: m.timeUnixMs,
    bootId: m.bootId,
  };
}

/**
 * Checks one MQTT message from a device topic: size, topic, envelope, payloadType and version,
 * signature by the device's enrolled key, payload decoding, and that the signed device id, fleet and
 * timestamp agree with the topic and the clock. Pure and synchronous; never throws. Stateful checks
 * (replay, bd_seq, checkpoint consistency, TOFU approval) are the collector's.
 *
 * A birth signed by a key nobody enrolled is accepted here as `enrolled: undefined` when it carries
 * its own public key and that key verifies it (trust-on-first-use decides what to do with it).
 */
export function verifyDeviceMessage(
  topic: string,
  payload: Uint8Array,
  keys: KeyLookup,
  opts: VerifyMessageOptions,
): VerifiedMessage | Rejection {
  const maxBytes = opts.maxBytes ?? MAX_SIGNED_HEARTBEAT_BYTES;
  if (payload.length > maxBytes) return reject('EW_FLEET_OVERSIZED', `${payload.length} bytes exceed ${maxBytes}`);
  const t = parseDeviceTopic(topic);
  if (!t || !(t.kind in TYPE_BY_KIND)) return reject('EW_FLEET_TOPIC', `not a device topic: ${topic.slice(0, 200)}`);
  const kind = t.kind as Exclude<DeviceTopicKind, 'receipt' | 'cmd'>;
  const dev = t.device;
  if (payload.length === 0) return reject('EW_FLEET_MALFORMED', 'empty payload', dev);

  let envelope: Envelope;
  try {
    envelope = decodeEnvelope(payload, maxBytes);
  } catch {
    return reject('EW_FLEET_MALFORMED', 'payload is not a DSSE envelope', dev);
  }
  const typeErr = typeCheck(envelope.payloadType, TYPE_BY_KIND[kind]);
  if (typeErr) return reject(typeErr.code, typeErr.message, dev);
  if (envelope.signatures.length === 0 || envelope.signatures.length > 8) {
    return reject('EW_FLEET_SIGNATURE', `envelope has ${envelope.signatures.length} signatures`, dev);
  }

  // Find the enrolled key among the signatures' keyids; verify the bytes as received.
  let enrolled: EnrolledKey | undefined;
  let sig: { keyid: Uint8Array; sig: Uint8Array } | undefined;
  for (const s of envelope.signatures) {
    const k = s.keyid.length === 32 ? keys(hex(s.keyid)) : undefined;
    if (k) {
      enrolled = k;
      sig = s;
      break;
    }
  }
  let publicKey: Uint8Array | undefined;
  let verifyKey: KeyObject | undefined = enrolled?.key;
  let verifyRaw: Uint8Array | undefined = enrolled?.raw;
  const check = opts.checkSignature ?? checkSignatureInline;
  if (!enrolled) {
    // Trust-on-first-use: a birth may introduce its own key; anything else needs an enrolled one.
    publicKey = kind === 'birth' ? lifecyclePublicKey(envelope.payload) : undefined;
    const kid = publicKey ? keyIdOf(publicKey) : undefined;
    sig = kid ? envelope.signatures.find((s) => sameBytes(s.keyid, kid)) : undefined;
    if (!publicKey || !sig) return reject('EW_FLEET_UNKNOWN_KEY', 'no signature by an enrolled key', dev);
    verifyRaw = publicKey;
    verifyKey = createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), publicKey]),
      format: 'der',
      type: 'spki',
    });
  }
  if (sig?.sig.length !== 64 || !check(verifyKey!, verifyRaw, pae(envelope.payloadType, envelope.payload), sig.sig)) {
    return reject('EW_FLEET_SIGNATURE', 'signature does not verify', dev);
  }
  const keyid = sig.keyid;
  const signerDevice = enrolled ? enrolled.deviceId : deviceIdOf(keyid);
  if (signerDevice !== dev) {
    return reject('EW_FLEET_DEVICE_MISMATCH', `signed by device ${signerDevice}, published on ${dev}'s topic`, dev);
  }

  const skew = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  const checkTime = (ms: number): Rejection | undefined =>
    ms > opts.nowMs + skew
      ? reject('EW_FLEET_CLOCK_SKEW', `signed time is ${ms - opts.nowMs} ms in the future (allowed ${skew})`, dev)
      : undefined;
  const checkIds = (deviceKeyid: Uint8Array, fleet: string | undefined): Rejection | undefined => {
    if (!sameBytes(deviceKeyid, keyid)) {
      return reject('EW_FLEET_DEVICE_MISMATCH', 'the signed device keyid is not the signing key', dev);
    }
    if (fleet !== undefined && fleet !== t.fleet) {
      return reject('EW_FLEET_FLEET_MISMATCH', `signed fleet ${JSON.stringify(fleet)} ≠ topic fleet ${t.fleet}`, dev);
    }
    return undefined;
  };
  const common = { ok: true as const, fleet: t.fleet, deviceId: dev, keyid, envelope, enrolled };

  if (kind === 'hb') {
    let heartbeat: Heartbeat;
    try {
      heartbeat = decodeHeartbeat(envelope.payload);
    } catch (e) {
      return reject('EW_FLEET_MALFORMED', `heartbeat: ${(e as Error).message}`, dev);
    }
    const bad = checkIds(heartbeat.deviceKeyid, heartbeat.fleet) ?? checkTime(heartbeat.timeUnixMs);
    if (bad) return bad;
    if (!heartbeat.checkpoint) return { ...common, kind, heartbeat };
    const cp = openCheckpoint(
      heartbeat.checkpoint,
      keyid,
      verifyKey!,
      verifyRaw,
      check,
      dev,
      opts.seenCheckpoint?.(dev),
    );
    if (!cp.ok) return cp;
    return checkTime(cp.checkpoint.timeUnixMs) ?? { ...common, kind, heartbeat, checkpoint: cp.checkpoint };
  }
  if (kind === 'ckpt') {
    let cp: CheckpointInfo & { deviceKeyid: Uint8Array };
    try {
      cp = decodeCheckpointPayload(envelope.payload);
    } catch (e) {
      return reject('EW_FLEET_MALFORMED', `checkpoint: ${(e as Error).message}`, dev);
    }
    const bad = checkIds(cp.deviceKeyid, undefined) ?? checkTime(cp.timeUnixMs);
    if (bad) return bad;
    return { ...common, kind, checkpoint: cp };
  }
  let lifecycle: Required<LifecycleFields>;
  try {
    lifecycle = decodeLifecycle(envelope.payload);
  } catch (e) {
    return reject('EW_FLEET_MALFORMED', `lifecycle: ${(e as Error).message}`, dev);
  }
  if (lifecycle.kind !== kind) {
    return reject('EW_FLEET_MALFORMED', `a ${lifecycle.kind} published on a ${kind} topic`, dev);
  }
  const bad = checkIds(lifecycle.deviceKeyid, lifecycle.fleet) ?? checkTime(lifecycle.timeUnixMs);
  if (bad) return bad;
  return publicKey ? { ...common, kind, lifecycle, publicKey } : { ...common, kind, lifecycle };
}

/** Verifies and decodes the checkpoint envelope embedded in a heartbeat (same device key). */
function openCheckpoint(
  env: Envelope,
  keyid: Uint8Array,
  key: KeyObject,
  raw: Uint8Array | undefined,
  check: SignatureCheck,
  dev: string,
  seen: Envelope | undefined,
): { ok: true; checkpoint: CheckpointInfo } | Rejection {
  const typeErr = typeCheck(env.payloadType, PAYLOAD_TYPES.checkpoint);
  if (typeErr) return reject(typeErr.code, `embedded checkpoint: ${typeErr.message}`, dev);
  const s = env.signatures.find((x) => sameBytes(x.keyid, keyid));
  const already =
    s !== undefined &&
    seen !== undefined &&
    sameBytes(seen.payload, env.payload) &&
    seen.signatures.some((x) => sameBytes(x.keyid, keyid) && sameBytes(x.sig, s.sig));
  if (!already && (s?.sig.length !== 64 || !check(key, raw, pae(env.payloadType, env.payload), s.sig))) {
    return reject('EW_FLEET_SIGNATURE', 'embedded checkpoint is not signed by the device key', dev);
  }
  let cp: CheckpointInfo & { deviceKeyid: Uint8Array };
  try {
    cp = decodeCheckpointPayload(env.payload);
  } catch (e) {
    return reject('EW_FLEET_MALFORMED', `embedded checkpoint: ${(e as Error).message}`, dev);
  }
  if (!sameBytes(cp.deviceKeyid, keyid)) {
    return reject('EW_FLEET_DEVICE_MISMATCH', 'embedded checkpoint names another device', dev);
  }
  return { ok: true, checkpoint: cp };
}
