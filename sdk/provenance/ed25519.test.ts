import { createPublicKey, generateKeyPairSync, sign as nodeSign, verify as nodeVerify, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ed25519Backend, probeSodium, SODIUM_NATIVE_VERSION, sodiumBinaryPath, verifyEd25519 } from './ed25519';

// The group order L of Ed25519, little-endian: S + L is the same scalar, but not a canonical one.
const L = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');

function addL(s: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const v = (s[i] as number) + (L[i] as number) + carry;
    out[i] = v & 0xff;
    carry = v >> 8;
  }
  return out;
}

describe('Ed25519 backends', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('uses libsodium where sodium-native has a binary for this platform, node:crypto otherwise', () => {
    const found = sodiumBinaryPath();
    const backend = ed25519Backend();
    if (found.path) expect(backend).toEqual({ name: 'libsodium' });
    else expect(backend).toMatchObject({ name: 'node:crypto', reason: found.reason });
  });

  it('package.json pins the sodium-native version whose binary this code calls', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
      optionalDependencies?: Record<string, string>;
    };
    expect(pkg.optionalDependencies?.['sodium-native']).toBe(SODIUM_NATIVE_VERSION);
  });

  it('falls back to node:crypto, saying why, when sodium-native is missing, another version, without a binary, or broken', () => {
    const root = mkdtempSync(join(tmpdir(), 'ew-sodium-'));
    try {
      const fake = (name: string, version: string | undefined, binary?: string) => {
        const dir = join(root, name);
        const pkg = join(dir, 'node_modules', 'sodium-native');
        if (version !== undefined) {
          mkdirSync(pkg, { recursive: true });
          writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'sodium-native', version }));
        } else mkdirSync(dir, { recursive: true });
        if (binary !== undefined) {
          const at = join(pkg, 'prebuilds', `${process.platform}-${process.arch}`);
          mkdirSync(at, { recursive: true });
          writeFileSync(join(at, 'sodium-native.node'), binary);
        }
        return join(dir, 'app.js');
      };
      expect(probeSodium(fake('none', undefined)).backend).toEqual({
        name: 'node:crypto',
        reason: 'sodium-native is not installed',
      });
      expect(probeSodium(fake('other', '9.9.9')).backend.reason).toBe(
        `sodium-native 9.9.9 is installed; edgewarden calls ${SODIUM_NATIVE_VERSION}'s binary`,
      );
      expect(probeSodium(fake('nobinary', SODIUM_NATIVE_VERSION)).backend.reason).toBe(
        `sodium-native has no prebuilt binary for ${process.platform}-${process.arch}`,
      );
      const broken = probeSodium(fake('broken', SODIUM_NATIVE_VERSION, 'not a shared object'));
      expect(broken.binding).toBeNull();
      expect(broken.backend.name).toBe('node:crypto');
      expect(broken.backend.reason).toMatch(/^sodium-native did not load: /);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('EDGEWARDEN_ED25519=node keeps node:crypto and says why', async () => {
    vi.stubEnv('EDGEWARDEN_ED25519', 'node');
    vi.resetModules();
    const fresh = await import('./ed25519');
    expect(fresh.ed25519Backend()).toEqual({ name: 'node:crypto', reason: 'EDGEWARDEN_ED25519=node' });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const msg = randomBytes(40);
    expect(fresh.verifyEd25519(msg, nodeSign(null, msg, privateKey), publicKey)).toBe(true);
  });

  it('agrees with node:crypto on a good signature and on every single-bit flip of it', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const msg = randomBytes(300);
    const sig = nodeSign(null, msg, privateKey);
    expect(verifyEd25519(msg, sig, publicKey)).toBe(true);
    for (let bit = 0; bit < 512; bit++) {
      const bad = Buffer.from(sig);
      bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
      expect(verifyEd25519(msg, bad, publicKey)).toBe(nodeVerify(null, msg, publicKey, bad));
      expect(verifyEd25519(msg, bad, publicKey)).toBe(false);
    }
    for (let bit = 0; bit < msg.length * 8; bit += 7) {
      const bad = Buffer.from(msg);
      bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
      expect(verifyEd25519(bad, sig, publicKey)).toBe(false);
    }
  });

  it('refuses another key, a short or long signature, and S + L (a non-canonical S)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const other = generateKeyPairSync('ed25519').publicKey;
    const msg = randomBytes(50);
    const sig = nodeSign(null, msg, privateKey);
    expect(verifyEd25519(msg, sig, other)).toBe(false);
    expect(verifyEd25519(msg, sig.subarray(0, 63), publicKey)).toBe(false);
    expect(verifyEd25519(msg, Buffer.concat([sig, Buffer.alloc(1)]), publicKey)).toBe(false);
    const malleable = Buffer.concat([sig.subarray(0, 32), addL(sig.subarray(32))]);
    expect(nodeVerify(null, msg, publicKey, malleable)).toBe(false);
    expect(verifyEd25519(msg, malleable, publicKey)).toBe(false);
  });

  it('verifies views at any offset, pooled Buffers and shared memory', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const publicKey = createPublicKey(privateKey);
    const msg = randomBytes(33);
    const sig = nodeSign(null, msg, privateKey);
    const holder = new Uint8Array(200);
    holder.set(msg, 7);
    holder.set(sig, 100);
    expect(verifyEd25519(holder.subarray(7, 40), holder.subarray(100, 164), publicKey)).toBe(true);
    expect(verifyEd25519(Buffer.from(msg), Buffer.from(sig), publicKey)).toBe(true);
    const shared = new Uint8Array(new SharedArrayBuffer(33));
    shared.set(msg);
    expect(verifyEd25519(shared, sig, publicKey)).toBe(true);
    // An empty message, also as a view at the very end of its buffer.
    const empty = nodeSign(null, new Uint8Array(0), privateKey);
    expect(verifyEd25519(new Uint8Array(0), empty, publicKey)).toBe(true);
    expect(verifyEd25519(new Uint8Array(10).subarray(10), empty, publicKey)).toBe(true);
    // A private key object verifies with its public half.
    expect(verifyEd25519(msg, sig, privateKey)).toBe(true);
  });
});
