import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { PAYLOAD_TYPES, pae } from '../provenance/dsse';
import { KeySigner } from '../provenance/keys';
import { lifecyclePublicKey, withLifecyclePublicKey } from './lifecycle-key';
import { SimDevice } from './testkit';
import { VerifierPool } from './verifier-pool';
import { type EnrolledKey, verifyDeviceMessage } from './verify-message';

const dev = new SimDevice('f');
const keys = new Map<string, EnrolledKey>([
  [
    Buffer.from(dev.signer.keyId).toString('hex'),
    { deviceId: dev.id, key: dev.signer.publicKeyObject, status: 'approved' },
  ],
]);
const lookup = (h: string) => keys.get(h);

describe('verifyDeviceMessage', () => {
  it('accepts a valid heartbeat and returns its decoded fields', () => {
    const v = verifyDeviceMessage(dev.topic('hb'), dev.heartbeat(), lookup, { nowMs: Date.now() });
    expect(v).toMatchObject({ ok: true, kind: 'hb', deviceId: dev.id, fleet: 'f' });
  });

  it('never throws on arbitrary bytes or topics, and never accepts them', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2048 }),
        fc.constantFrom('hb', 'birth', 'death', 'ckpt', 'cmd'),
        (bytes, kind) => {
          const v = verifyDeviceMessage(`ew/v1/f/${dev.id}/${kind}`, bytes, lookup, { nowMs: Date.now() });
          expect(v.ok).toBe(false);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('never accepts a valid message with any single byte changed', () => {
    const good = dev.heartbeat();
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const bad = new Uint8Array(good);
        bad[i]! ^= x;
        expect(verifyDeviceMessage(dev.topic('hb'), bad, lookup, { nowMs: Date.now() }).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects topics that are not device message topics', () => {
    const hb = dev.heartbeat();
    for (const t of ['ew/v1/f/policy/owner', 'ew/v2/f/x/hb', `ew/v1/f/${dev.id}/receipt`, 'other']) {
      expect(verifyDeviceMessage(t, hb, lookup, { nowMs: Date.now() })).toMatchObject({
        ok: false,
        code: 'EW_FLEET_TOPIC',
      });
    }
  });
});

describe('birth public key (TOFU) field', () => {
  it('round-trips and ignores malformed bytes', () => {
    const key = new Uint8Array(32).fill(9);
    expect(lifecyclePublicKey(withLifecyclePublicKey(new Uint8Array([8, 1]), key))).toEqual(key);
    expect(lifecyclePublicKey(new Uint8Array([0x4a, 40, 1]))).toBeUndefined();
    expect(lifecyclePublicKey(new Uint8Array([0xff, 0xff, 0xff]))).toBeUndefined();
    expect(lifecyclePublicKey(new Uint8Array(0))).toBeUndefined();
  });
});

describe('VerifierPool', () => {
  it('agrees with node:crypto on good and bad signatures, in batches', async () => {
    const pool = new VerifierPool(2, 16);
    try {
      const msg = pae(PAYLOAD_TYPES.heartbeat, new Uint8Array([1, 2, 3]));
      const sig = dev.signer.signSync(msg);
      const bad = new Uint8Array(sig);
      bad[5]! ^= 1;
      const jobs = Array.from({ length: 50 }, (_, i) => pool.verify(dev.signer.publicKey, msg, i % 2 ? bad : sig));
      expect(await Promise.all(jobs)).toEqual(Array.from({ length: 50 }, (_, i) => i % 2 === 0));
      expect(await pool.verify(new Uint8Array(31), msg, sig)).toBe(false);
    } finally {
      await pool.close();
    }
    expect(await pool.verify(dev.signer.publicKey, new Uint8Array(1), new Uint8Array(64))).toBe(false);
  });

  it.each(['libsodium where installed', 'node:crypto'])(
    'finds each signature at its offset in a mixed batch (%s)',
    async (backend) => {
      if (backend === 'node:crypto') vi.stubEnv('EDGEWARDEN_ED25519', 'node');
      const pool = new VerifierPool(1, 64);
      try {
        const signers = [KeySigner.generate(), KeySigner.generate(), KeySigner.generate()];
        const cases = Array.from({ length: 60 }, (_, i) => {
          const s = signers[i % 3] as KeySigner;
          const msg = new Uint8Array(i * 13).fill(i);
          const sig = s.signSync(msg);
          const kind = i % 4; // 0 good, 1 flipped signature, 2 another key, 3 not a key at all
          if (kind === 1) sig[i % 64]! ^= 0x10;
          const key =
            kind === 2
              ? (signers[(i + 1) % 3] as KeySigner).publicKey
              : kind === 3
                ? new Uint8Array(32).fill(0xff)
                : s.publicKey;
          return { key, msg, sig, ok: kind === 0 };
        });
        const got = await Promise.all(cases.map((c) => pool.verify(c.key, c.msg, c.sig)));
        expect(got).toEqual(cases.map((c) => c.ok));
      } finally {
        await pool.close();
        vi.unstubAllEnvs();
      }
    },
  );
});
