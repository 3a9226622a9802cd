// Test-only: a named corpus of forged and malformed device messages, each with the code the
// collector must reject it under. Built from live simulated devices so every "valid" part is real.
import { createHash } from 'node:crypto';
import { edgewarden } from '../__generated__/messages.js';
import { edgewarden as provenanceProto } from '../__generated__/provenance.js';
import {
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  envelopeToJson,
  PAYLOAD_TYPES,
  signEnvelopeSync,
} from '../provenance/dsse';
import { buildHeartbeat } from '../telemetry/heartbeat';
import type { RejectCode } from './codes';
import type { SimDevice } from './testkit';

export interface CorpusCase {
  name: string;
  topic: string;
  payload: Uint8Array;
  /** The code it must be rejected with (one of several where the bytes decide, e.g. a flipped type). */
  code: RejectCode | RejectCode[];
}

/** Deterministic pseudo-random bytes (SHA-256 in counter mode) so the corpus is the same every run. */
export function seededBytes(seed: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0, c = 0; i < n; c++) {
    const h = createHash('sha256').update(`${seed}/${c}`).digest();
    out.set(h.subarray(0, Math.min(32, n - i)), i);
    i += 32;
  }
  return out;
}

const flip = (b: Uint8Array, byte: number, bit: number) => {
  const c = new Uint8Array(b);
  c[byte]! ^= 1 << bit;
  return c;
};

function indexOf(hay: Uint8Array, needle: Uint8Array | string, from = 0): number {
  const i = Buffer.from(hay).indexOf(typeof needle === 'string' ? Buffer.from(needle) : Buffer.from(needle), from);
  if (i < 0) throw new Error('corpus: region not found');
  return i;
}

/**
 * The corpus. Preconditions (the test sets them up): `a` and `b` are enrolled, each has an accepted
 * birth with bd_seq 1 and heartbeats with seq 1..n stored; `b` has a stored checkpoint of tree size
 * `b.tree.size` (10); `c` is not enrolled. `fresh` is a valid heartbeat of `a` not sent yet.
 */
export function buildCorpus(a: SimDevice, b: SimDevice, c: SimDevice, now: number, fresh: Uint8Array): CorpusCase[] {
  const out: CorpusCase[] = [];
  const add = (name: string, topic: string, payload: Uint8Array, code: CorpusCase['code']) =>
    out.push({ name, topic, payload, code });
  const hb = a.topic('hb');
  const signHb = (d: SimDevice, over: Parameters<SimDevice['nextInput']>[0] = {}, signer = d) =>
    encodeEnvelope(signer.sign(PAYLOAD_TYPES.heartbeat, buildHeartbeat(d.nextInput(over))));
  const env = decodeEnvelope(fresh);
  const sig = env.signatures[0]!;

  // Bit flips of one valid envelope, sampled over every region whose outcome is determined.
  const payloadAt = indexOf(fresh, env.payload);
  for (let i = 0; i < 8; i++) {
    const byte = payloadAt + Math.floor(((i + 0.5) * env.payload.length) / 8);
    add(`bitflip payload[${byte - payloadAt}] bit ${i}`, hb, flip(fresh, byte, i), 'EW_FLEET_SIGNATURE');
  }
  const sigAt = indexOf(fresh, sig.sig);
  for (let i = 0; i < 8; i++) {
    add(`bitflip sig[${i * 8}] bit ${(i * 3) % 8}`, hb, flip(fresh, sigAt + i * 8, (i * 3) % 8), 'EW_FLEET_SIGNATURE');
  }
  // The keyid also appears inside the payload (device_keyid): take the one in the signature.
  const keyidAt = indexOf(fresh, sig.keyid, payloadAt + env.payload.length);
  for (let i = 0; i < 4; i++) {
    add(`bitflip keyid[${i * 9}] bit ${i}`, hb, flip(fresh, keyidAt + i * 9, i), 'EW_FLEET_UNKNOWN_KEY');
  }
  const typeAt = indexOf(fresh, PAYLOAD_TYPES.heartbeat);
  const kindAt = typeAt + PAYLOAD_TYPES.heartbeat.indexOf('heartbeat');
  const verAt = typeAt + PAYLOAD_TYPES.heartbeat.indexOf('.v1+') + 2;
  add('bitflip payloadType kind bit 0', hb, flip(fresh, kindAt, 0), 'EW_FLEET_PAYLOAD_TYPE');
  add('bitflip payloadType kind bit 5', hb, flip(fresh, kindAt + 3, 5), 'EW_FLEET_PAYLOAD_TYPE');
  add('bitflip payloadType version 1→3', hb, flip(fresh, verAt, 1), 'EW_FLEET_VERSION');
  add('bitflip payloadType version 1→!', hb, flip(fresh, verAt, 4), 'EW_FLEET_PAYLOAD_TYPE');

  // Truncations.
  add('truncated to 1 byte', hb, fresh.subarray(0, 1), 'EW_FLEET_MALFORMED');
  add('truncated to half', hb, fresh.subarray(0, Math.floor(fresh.length / 2)), 'EW_FLEET_MALFORMED');
  add('truncated by 1 byte', hb, fresh.subarray(0, fresh.length - 1), 'EW_FLEET_MALFORMED');
  add('truncated by 20 bytes', hb, fresh.subarray(0, fresh.length - 20), 'EW_FLEET_MALFORMED');

  // Garbage.
  add('empty payload', hb, new Uint8Array(0), 'EW_FLEET_MALFORMED');
  add('garbage 16 bytes', hb, seededBytes('g16', 16), 'EW_FLEET_MALFORMED');
  add('garbage 300 bytes', hb, seededBytes('g300', 300), 'EW_FLEET_MALFORMED');
  add('garbage 4 KB', hb, seededBytes('g4k', 4096), 'EW_FLEET_MALFORMED');
  add('text instead of protobuf', hb, new TextEncoder().encode('hello, collector'), 'EW_FLEET_MALFORMED');
  add(
    'DSSE JSON instead of protobuf',
    hb,
    new TextEncoder().encode(JSON.stringify(envelopeToJson(env))),
    'EW_FLEET_MALFORMED',
  );
  add('garbage on the checkpoint topic', a.topic('ckpt'), seededBytes('ck', 64), 'EW_FLEET_MALFORMED');
  add('garbage on the birth topic', a.topic('birth'), seededBytes('bi', 64), 'EW_FLEET_MALFORMED');
  add('oversized random', hb, seededBytes('big', 70 * 1024), 'EW_FLEET_OVERSIZED');
  add(
    'oversized signed envelope',
    hb,
    encodeEnvelope(a.sign(PAYLOAD_TYPES.heartbeat, seededBytes('bigp', 70 * 1024))),
    'EW_FLEET_OVERSIZED',
  );
  add(
    'validly signed garbage payload',
    hb,
    encodeEnvelope(a.sign(PAYLOAD_TYPES.heartbeat, seededBytes('sg', 200))),
    'EW_FLEET_MALFORMED',
  );

  // Types and versions.
  add(
    'unknown payloadType (application/json)',
    hb,
    encodeEnvelope(a.sign('application/json', buildHeartbeat(a.nextInput()))),
    'EW_FLEET_PAYLOAD_TYPE',
  );
  add(
    'unknown version heartbeat.v2',
    hb,
    encodeEnvelope(a.sign('application/vnd.edgewarden.heartbeat.v2+protobuf', buildHeartbeat(a.nextInput()))),
    'EW_FLEET_VERSION',
  );
  add('a birth on the heartbeat topic', hb, a.birth(), 'EW_FLEET_PAYLOAD_TYPE');
  add('a heartbeat on the birth topic', a.topic('birth'), signHb(a), 'EW_FLEET_PAYLOAD_TYPE');
  add('a death on the birth topic', a.topic('birth'), a.death(), 'EW_FLEET_MALFORMED');
  add('a heartbeat on the checkpoint topic', a.topic('ckpt'), signHb(a), 'EW_FLEET_PAYLOAD_TYPE');
  add('bad share level (signed)', hb, signBadShare(a), 'EW_FLEET_MALFORMED');

  // Keys and signatures.
  add('wrong key: unenrolled device on its own topic', c.topic('hb'), signHb(c), 'EW_FLEET_UNKNOWN_KEY');
  add('wrong key: unenrolled device on an enrolled topic', hb, signHb(c), 'EW_FLEET_UNKNOWN_KEY');
  add('wrong key claiming the enrolled keyid', hb, claimKeyid(c, a), 'EW_FLEET_SIGNATURE');
  add('no signatures', hb, withSignatures(fresh, []), 'EW_FLEET_SIGNATURE');
  add('nine signatures', hb, withSignatures(fresh, Array(9).fill(sig)), 'EW_FLEET_SIGNATURE');
  add(
    'signature of 63 bytes',
    hb,
    withSignatures(fresh, [{ keyid: sig.keyid, sig: sig.sig.subarray(0, 63) }]),
    'EW_FLEET_SIGNATURE',
  );
  add(
    'all-zero signature',
    hb,
    withSignatures(fresh, [{ keyid: sig.keyid, sig: new Uint8Array(64) }]),
    'EW_FLEET_SIGNATURE',
  );
  add(
    'unenrolled birth without a key (allowlist)',
    c.topic('birth'),
    c.birth({ withKey: false }),
    'EW_FLEET_UNKNOWN_KEY',
  );
  add('unenrolled birth with its key (allowlist, no TOFU)', c.topic('birth'), c.birth(), 'EW_FLEET_UNKNOWN_KEY');
  add(
    'embedded checkpoint signed by another key',
    hb,
    signHb(a, { checkpoint: withSigner(a.checkpointEnvelope(4, seededBytes('r', 32)), c) }),
    'EW_FLEET_SIGNATURE',
  );
  add(
    'embedded checkpoint with a heartbeat payloadType',
    hb,
    signHb(a, { checkpoint: a.sign(PAYLOAD_TYPES.heartbeat, new Uint8Array(4)) }),
    'EW_FLEET_PAYLOAD_TYPE',
  );

  // Topic and identity.
  add('valid signature on another device topic', b.topic('hb'), fresh, 'EW_FLEET_DEVICE_MISMATCH');
  add('valid signature on an unenrolled device topic', c.topic('hb'), fresh, 'EW_FLEET_DEVICE_MISMATCH');
  add(
    'signed device keyid of another device',
    hb,
    signHb(a, { deviceKeyid: b.signer.keyId }),
    'EW_FLEET_DEVICE_MISMATCH',
  );
  add(
    'signed fleet differs from the topic fleet',
    hb,
    signHb(a, { fleet: 'another-fleet' }),
    'EW_FLEET_FLEET_MISMATCH',
  );
  add('birth signed for another fleet', a.topic('birth'), birthFor(a, 'another-fleet'), 'EW_FLEET_FLEET_MISMATCH');
  add(
    'embedded checkpoint naming another device',
    hb,
    signHb(a, { checkpoint: a.sign(PAYLOAD_TYPES.checkpoint, checkpointPayload(b, 3, seededBytes('x', 32), now)) }),
    'EW_FLEET_DEVICE_MISMATCH',
  );

  // Time, sequence and lifecycle.
  add('future timestamp (1 h)', hb, signHb(a, { timeUnixMs: now + 3_600_000 }), 'EW_FLEET_CLOCK_SKEW');
  add(
    'future birth timestamp',
    a.topic('birth'),
    a.birth({ bdSeq: 9, timeMs: now + 3_600_000 }),
    'EW_FLEET_CLOCK_SKEW',
  );
  add('replayed seq 1', hb, a.heartbeatLog[0]!, 'EW_FLEET_REPLAY');
  add('replayed seq 2', hb, a.heartbeatLog[1]!, 'EW_FLEET_REPLAY');
  add('heartbeat for a stale bd_seq', hb, signHb(a, { bdSeq: 0 }), 'EW_FLEET_STALE');
  add(
    'stale birth (older bd_seq and time)',
    a.topic('birth'),
    a.birth({ bdSeq: 0, timeMs: now - 60_000 }),
    'EW_FLEET_STALE',
  );
  add('stale bd_seq death', a.topic('death'), a.death({ bdSeq: 0 }), 'EW_FLEET_BD_SEQ');
  add('death for a bd_seq not yet born', a.topic('death'), a.death({ bdSeq: 7 }), 'EW_FLEET_BD_SEQ');
  add('stale bd_seq death of another device', b.topic('death'), b.death({ bdSeq: 0 }), 'EW_FLEET_BD_SEQ');

  // History: checkpoints that contradict the one stored for b (tree size 10).
  const size = b.tree.size;
  add(
    'inconsistent checkpoint: same size, other root',
    b.topic('hb'),
    signHb(b, { checkpoint: b.checkpointEnvelope(size, seededBytes('root', 32)) }),
    'EW_FLEET_CHECKPOINT_INCONSISTENT',
  );
  const grown = [...Array(5)].map((_, i) => seededBytes(`leaf${i}`, 32));
  for (const l of grown) b.tree.append(l);
  add(
    'inconsistent checkpoint: growth with a proof that does not hold',
    b.topic('hb'),
    signHb(b, {
      checkpoint: b.checkpointEnvelope(b.tree.size, seededBytes('root2', 32)),
      previousTreeSize: size,
      consistencyProof: b.tree.consistencyProof(size),
    }),
    'EW_FLEET_CHECKPOINT_INCONSISTENT',
  );
  add(
    'inconsistent checkpoint on the checkpoint topic',
    b.topic('ckpt'),
    encodeEnvelope(b.checkpointEnvelope(size, seededBytes('root3', 32))),
    'EW_FLEET_CHECKPOINT_INCONSISTENT',
  );
  return out;
}

function withSignatures(bytes: Uint8Array, sigs: { keyid: Uint8Array; sig: Uint8Array }[]): Uint8Array {
  const e = edgewarden.v1.Envelope.decode(bytes);
  return edgewarden.v1.Envelope.encode({ payload: e.payload, payloadType: e.payloadType, signatures: sigs }).finish();
}

function withSigner(env: Envelope, by: SimDevice): Envelope {
  return by.sign(env.payloadType, env.payload);
}

function claimKeyid(by: SimDevice, victim: SimDevice): Uint8Array {
  const payload = buildHeartbeat(victim.nextInput());
  const e = signEnvelopeSync(by.signer, PAYLOAD_TYPES.heartbeat, payload);
  e.signatures[0]!.keyid = victim.signer.keyId;
  return encodeEnvelope(e);
}

function checkpointPayload(d: SimDevice, size: number, root: Uint8Array, now: number): Uint8Array {
  return provenanceProto.v1.Checkpoint.encode({
    deviceKeyid: d.signer.keyId,
    treeSize: size,
    rootHash: root,
    timeUnixMs: now,
    bootId: d.bootId,
  }).finish();
}

function birthFor(d: SimDevice, fleet: string): Uint8Array {
  const payload = edgewarden.v1.Lifecycle.encode({
    kind: edgewarden.v1.Lifecycle.Kind.BIRTH,
    deviceKeyid: d.signer.keyId,
    fleet,
    bdSeq: 5,
    timeUnixMs: Date.now(),
    bootId: d.bootId,
  }).finish();
  return encodeEnvelope(d.sign(PAYLOAD_TYPES.lifecycle, payload));
}

function signBadShare(d: SimDevice): Uint8Array {
  const input = d.nextInput();
  const m = edgewarden.v1.Heartbeat.decode(buildHeartbeat(input));
  m.share = 'secret';
  return encodeEnvelope(d.sign(PAYLOAD_TYPES.heartbeat, edgewarden.v1.Heartbeat.encode(m).finish()));
}
