import { describe, expect, it } from 'vitest';
import { PAYLOAD_TYPES, verifyEnvelope } from '../provenance/dsse';
import { KeySigner, TrustStore } from '../provenance/keys';
import { decodeSignedHeartbeat } from '../telemetry/heartbeat';
import { MemoryPublisher } from './memory-publisher';

describe('MemoryPublisher', () => {
  it('records heartbeats reduced to its share level, signed with real crypto, in seq order', async () => {
    const signer = KeySigner.generate();
    const p = new MemoryPublisher({ share: 'summary', signer });
    const base = {
      deviceKeyid: new Uint8Array(signer.keyId),
      fleet: 'f',
      bdSeq: 0,
      timeUnixMs: 1,
      bootId: new Uint8Array(16),
      health: { throttled: 0, memTotalBytes: 1, memAvailableBytes: 1, diskFreeBytes: 1, load1Milli: 1, uptimeS: 1 },
    };
    await p.publish({ ...base, seq: 1 });
    await p.publish({ ...base, seq: 2 });
    await expect(p.publish({ ...base, seq: 2 })).rejects.toThrow(/must exceed/);
    expect(p.published.map((x) => x.heartbeat.seq)).toEqual([1, 2]);
    expect(p.published[0]!.heartbeat.health).toBeUndefined();
    const { envelope, heartbeat } = decodeSignedHeartbeat(p.published[1]!.envelope!);
    const trust = new TrustStore();
    trust.add(signer.publicKey);
    expect(verifyEnvelope(envelope, trust, PAYLOAD_TYPES.heartbeat).ok).toBe(true);
    expect(heartbeat.share).toBe('summary');
    expect(p.stats()).toMatchObject({ lastSeq: 2, sent: 2, outboxDepth: 0 });
  });
});
