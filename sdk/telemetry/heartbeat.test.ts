import { describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { encodeEnvelope, PAYLOAD_TYPES, verifyEnvelope } from '../provenance/dsse';
import { KeySigner, TrustStore } from '../provenance/keys';
import { decodeDeviceCommand, decodeReceipt, encodeDeviceCommand, encodeReceipt } from './control';
import {
  buildHeartbeat,
  decodeHeartbeat,
  decodeSignedHeartbeat,
  type HeartbeatInput,
  MAX_HEARTBEAT_BYTES,
  reduceForShare,
  signHeartbeat,
} from './heartbeat';
import { decodeLifecycle, decodeSignedLifecycle, encodeLifecycle, signLifecycle } from './lifecycle';

const signer = KeySigner.generate();
const keyid = new Uint8Array(signer.keyId);

function sample(): HeartbeatInput {
  return {
    deviceKeyid: keyid,
    fleet: 'workshop',
    bdSeq: 3,
    seq: 42,
    timeUnixMs: 1_800_000_000_000,
    bootId: new Uint8Array(16).fill(7),
    board: { model: 'Raspberry Pi 4 Model B Rev 1.4', family: 'raspberry-pi', arch: 'arm64', os: 'Debian 12', cpus: 4 },
    health: {
      tempMilliC: 51_000,
      throttled: 0x50000,
      memTotalBytes: 4e9,
      memAvailableBytes: 2e9,
      diskFreeBytes: 1e10,
      load1Milli: 250,
      uptimeS: 3600,
    },
    models: [
      {
        digest: new Uint8Array(32).fill(1),
        name: 'vad',
        inferences: 1000,
        blocked: 2,
        errors: 1,
        p50Us: 700,
        p99Us: 1500,
        executionProvider: 'cpu',
      },
    ],
    policyDigest: new Uint8Array(32).fill(9),
    compliance: { state: 'degraded', reasons: ['unlisted model flagged'] },
    checkpoint: { payload: new Uint8Array([1, 2, 3]), payloadType: PAYLOAD_TYPES.checkpoint, signatures: [] },
    consistencyProof: [new Uint8Array(32).fill(4), new Uint8Array(32).fill(5)],
    previousTreeSize: 10,
    outboxDepth: 5,
    dropped: 1,
    historical: true,
    share: 'full',
    policyRefusals: ['EW_POLICY_SIGNATURE owner v4'],
    auditAlerts: ['index 17: EW_PROVENANCE_CHAIN'],
  };
}

describe('heartbeat', () => {
  it('round-trips every field', () => {
    const input = sample();
    const hb = decodeHeartbeat(buildHeartbeat(input));
    expect(hb).toMatchObject({ ...input, sdkVersion: expect.any(String) });
    expect(hb.health?.tempMilliC).toBe(51_000);
  });

  it('signs as a DSSE heartbeat envelope that verifies and decodes', async () => {
    const env = await signHeartbeat(signer, sample());
    expect(env.payloadType).toBe(PAYLOAD_TYPES.heartbeat);
    const trust = new TrustStore();
    trust.add(signer.publicKey);
    expect(verifyEnvelope(env, trust, PAYLOAD_TYPES.heartbeat).ok).toBe(true);
    const { heartbeat } = decodeSignedHeartbeat(encodeEnvelope(env));
    expect(heartbeat.seq).toBe(42);
  });

  it('refuses a lifecycle envelope where a heartbeat is expected', async () => {
    const env = await signLifecycle(signer, {
      kind: 'birth',
      deviceKeyid: keyid,
      fleet: 'f',
      bdSeq: 1,
      timeUnixMs: 1,
      bootId: new Uint8Array(16),
    });
    expect(() => decodeSignedHeartbeat(encodeEnvelope(env))).toThrow(/payloadType/);
  });

  it('rejects bad input with EW_TELEMETRY_INPUT naming the field', () => {
    for (const [patch, field] of [
      [{ deviceKeyid: new Uint8Array(3) }, 'deviceKeyid'],
      [{ seq: -1 }, 'seq'],
      [{ bdSeq: 1.5 }, 'bdSeq'],
      [{ fleet: '' }, 'fleet'],
      [{ models: new Array(300).fill(sample().models![0]) }, 'models'],
      [{ auditAlerts: ['x'.repeat(300)] }, 'auditAlerts'],
    ] as const) {
      try {
        buildHeartbeat({ ...sample(), ...(patch as Partial<HeartbeatInput>) });
        expect.unreachable();
      } catch (e) {
        expect(isEdgewardenError(e, 'EW_TELEMETRY_INPUT')).toBe(true);
        expect((e as { details: { field: string } }).details.field).toBe(field);
      }
    }
  });

  it('never crashes on hostile bytes: every truncation, bit flip and garbage is decoded or EW_TELEMETRY_MALFORMED', () => {
    const good = buildHeartbeat(sample());
    const tries: Uint8Array[] = [new Uint8Array(MAX_HEARTBEAT_BYTES + 1), new Uint8Array([0xff, 0xff, 0xff])];
    for (let i = 0; i < good.length; i++) tries.push(good.subarray(0, i));
    for (let i = 0; i < good.length * 8; i += 3) {
      const b = Uint8Array.from(good);
      b[i >> 3]! ^= 1 << (i & 7);
      tries.push(b);
    }
    let seed = 1;
    for (let i = 0; i < 300; i++) {
      const b = new Uint8Array(1 + (i % 97));
      for (let j = 0; j < b.length; j++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        b[j] = seed >>> 24;
      }
      tries.push(b);
    }
    let rejected = 0;
    for (const t of tries) {
      try {
        decodeHeartbeat(t);
      } catch (e) {
        expect(isEdgewardenError(e, 'EW_TELEMETRY_MALFORMED')).toBe(true);
        rejected++;
      }
    }
    // Every strict prefix that cuts a field is refused; the oversized and 0xff inputs too.
    expect(rejected).toBeGreaterThan(good.length / 2);
  });
});

describe('reduceForShare', () => {
  it('full keeps everything', () => {
    const hb = decodeHeartbeat(buildHeartbeat(reduceForShare(sample(), 'full')));
    expect(hb.health?.tempMilliC).toBe(51_000);
    expect(hb.models[0]?.name).toBe('vad');
  });

  it('summary drops health, model names and latencies, keeps compliance, checkpoint and counts', () => {
    const hb = decodeHeartbeat(buildHeartbeat(reduceForShare(sample(), 'summary')));
    expect(hb.share).toBe('summary');
    expect(hb.health).toBeUndefined();
    expect(hb.models[0]).toMatchObject({ name: '', p50Us: 0, p99Us: 0, executionProvider: '', inferences: 1000 });
    expect(hb.models[0]?.digest).toEqual(new Uint8Array(32).fill(1));
    expect(hb.board).toMatchObject({ family: 'raspberry-pi', arch: 'arm64', model: '', os: '' });
    expect(hb.compliance.state).toBe('degraded');
    expect(hb.checkpoint?.payload).toEqual(new Uint8Array([1, 2, 3]));
    expect(hb.consistencyProof).toHaveLength(2);
    expect(hb.auditAlerts).toHaveLength(1);
  });

  it('none is a liveness beacon only', () => {
    const hb = decodeHeartbeat(buildHeartbeat(reduceForShare(sample(), 'none')));
    expect(hb.share).toBe('none');
    expect(hb).toMatchObject({ seq: 42, bdSeq: 3, outboxDepth: 5, dropped: 1, models: [], auditAlerts: [] });
    expect(hb.board).toBeUndefined();
    expect(hb.health).toBeUndefined();
    expect(hb.checkpoint).toBeUndefined();
    expect(hb.policyDigest).toHaveLength(0);
    expect(hb.compliance.state).toBe('unspecified');
  });
});

describe('lifecycle, receipt, command', () => {
  it('round-trips birth and death', async () => {
    const f = {
      kind: 'death',
      deviceKeyid: keyid,
      fleet: 'f',
      bdSeq: 7,
      timeUnixMs: 5,
      bootId: new Uint8Array(16),
      clean: true,
    } as const;
    expect(decodeLifecycle(encodeLifecycle(f))).toMatchObject(f);
    const env = await signLifecycle(signer, { ...f, kind: 'birth' });
    expect(decodeSignedLifecycle(encodeEnvelope(env)).lifecycle).toMatchObject({ kind: 'birth', bdSeq: 7 });
    expect(() => decodeLifecycle(new Uint8Array([8, 9]))).toThrow(/unknown kind/);
  });

  it('never crash on bit flips and truncations: decoded or EW_TELEMETRY_MALFORMED', async () => {
    const lifecycle = encodeLifecycle({
      kind: 'birth',
      deviceKeyid: keyid,
      fleet: 'f',
      bdSeq: 300,
      timeUnixMs: 1_800_000_000_000,
      bootId: new Uint8Array(16).fill(3),
    });
    const signed = encodeEnvelope(await signHeartbeat(signer, sample()));
    const cases: [Uint8Array, (b: Uint8Array) => unknown][] = [
      [lifecycle, decodeLifecycle],
      [encodeReceipt({ storedSeq: 1234567, timeUnixMs: 99, collector: 'c' }), decodeReceipt],
      [encodeDeviceCommand({ kind: 'backfill', fromSeq: 5, toSeq: 500 }), decodeDeviceCommand],
      [signed, decodeSignedHeartbeat],
    ];
    for (const [good, decode] of cases) {
      const tries: Uint8Array[] = [];
      for (let i = 0; i < good.length; i++) tries.push(good.subarray(0, i));
      for (let i = 0; i < good.length * 8; i++) {
        const b = Uint8Array.from(good);
        b[i >> 3]! ^= 1 << (i & 7);
        tries.push(b);
      }
      for (const t of tries) {
        try {
          decode(t);
        } catch (e) {
          expect(isEdgewardenError(e, 'EW_TELEMETRY_MALFORMED')).toBe(true);
        }
      }
    }
  });

  it('round-trips receipts and commands and rejects garbage', () => {
    expect(decodeReceipt(encodeReceipt({ storedSeq: 99, timeUnixMs: 3, collector: 'c1' }))).toEqual({
      storedSeq: 99,
      timeUnixMs: 3,
      collector: 'c1',
    });
    expect(decodeDeviceCommand(encodeDeviceCommand({ kind: 'rebirth' }))).toEqual({ kind: 'rebirth' });
    expect(decodeDeviceCommand(encodeDeviceCommand({ kind: 'backfill', fromSeq: 3, toSeq: 9 }))).toEqual({
      kind: 'backfill',
      fromSeq: 3,
      toSeq: 9,
    });
    for (const bad of [new Uint8Array(0), new Uint8Array([0xff]), new Uint8Array(5000)]) {
      expect(() => decodeDeviceCommand(bad)).toThrow(expect.objectContaining({ code: 'EW_TELEMETRY_MALFORMED' }));
    }
    expect(() => decodeReceipt(new Uint8Array([0x0a, 0xff]))).toThrow(
      expect.objectContaining({ code: 'EW_TELEMETRY_MALFORMED' }),
    );
    expect(() => decodeDeviceCommand(encodeDeviceCommand({ kind: 'backfill', fromSeq: 9, toSeq: 3 }))).toThrow(/toSeq/);
  });
});
