import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeySigner } from '../provenance/keys';
import { PolicyManager } from './manager';
import { TrustConfig } from './trust';
import { decodePolicyEnvelope } from './verify';

describe('trust configuration', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ew-trust-'));
    await mkdir(join(dir, 'authorities'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads keys by file name, roles and thresholds from trust.yaml', async () => {
    for (const n of ['owner', 'acme', 'commons']) {
      await writeFile(join(dir, 'authorities', `${n}.pub`), KeySigner.generate().publicKeyPem());
    }
    await writeFile(join(dir, 'trust.yaml'), 'authorities:\n  acme: { role: fleet }\nthresholds:\n  models: 2\n');
    const t = await TrustConfig.load(dir);
    expect(t.authorities.map((a) => [a.name, a.role])).toEqual([
      ['acme', 'fleet'],
      ['commons', 'community'],
      ['owner', 'owner'],
    ]);
    expect(t.thresholds).toMatchObject({ models: 2, outputs: 1 });
  });

  it('refuses a threshold that can never be met, a role for a missing key, and names bad keys by line', async () => {
    await writeFile(join(dir, 'authorities', 'owner.pub'), KeySigner.generate().publicKeyPem());
    await writeFile(join(dir, 'trust.yaml'), 'thresholds:\n  models: 2\n');
    await expect(TrustConfig.load(dir)).rejects.toMatchObject({ code: 'EW_POLICY_TRUST' });
    await writeFile(join(dir, 'trust.yaml'), 'authorities:\n  ghost: { role: fleet }\n');
    await expect(TrustConfig.load(dir)).rejects.toMatchObject({ code: 'EW_POLICY_TRUST' });
    await writeFile(join(dir, 'trust.yaml'), 'authorities:\n  owner: { role: king }\n');
    await expect(TrustConfig.load(dir)).rejects.toMatchObject({
      code: 'EW_POLICY_SCHEMA',
      details: { key: 'authorities.owner.role', line: 2 },
    });
    await writeFile(join(dir, 'authorities', 'bad.pub'), 'not a key');
    await writeFile(join(dir, 'trust.yaml'), '{}');
    await expect(TrustConfig.load(dir)).rejects.toMatchObject({ code: 'EW_POLICY_TRUST' });
  });

  it('addAuthority persists the key and its role', async () => {
    const home = join(dir, 'home');
    const mgr = new PolicyManager({ trust: new TrustConfig([]), home });
    await mgr.addAuthority('acme', KeySigner.generate().publicKeyPem(), 'fleet');
    const t = await TrustConfig.load(join(home, 'policy'));
    expect(t.get('acme')?.role).toBe('fleet');
  });

  it('hostile signed-policy bytes only ever throw EW_POLICY_MALFORMED', () => {
    let seed = 11;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 3000; i++) {
      const b = new Uint8Array(rnd() % 200);
      for (let k = 0; k < b.length; k++) b[k] = rnd() & 0xff;
      if (i % 5 === 0 && b.length > 0) b[0] = 0x7b;
      try {
        decodePolicyEnvelope(b);
      } catch (err) {
        expect((err as { code?: string }).code).toBe('EW_POLICY_MALFORMED');
      }
    }
  });
});
