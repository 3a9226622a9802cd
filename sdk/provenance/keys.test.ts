import { createPrivateKey, createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeySigner, keyIdOf, loadKeyFileSigner, rawPublicKey, writeKeyPair } from './keys';

const root = mkdtempSync(join(tmpdir(), 'ew-keys-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('keys', () => {
  it('rawPublicKey gives the 32 bytes at the end of the SPKI DER', () => {
    for (let i = 0; i < 5; i++) {
      const pub = createPublicKey(KeySigner.generate().privateKeyPem());
      const der = pub.export({ format: 'der', type: 'spki' });
      expect(Buffer.from(rawPublicKey(pub)).equals(der.subarray(der.length - 32))).toBe(true);
    }
  });

  it('a key file read back is the same key, and its PEM text is handed on as written', async () => {
    const written = await writeKeyPair(join(root, 'a'), 'device');
    const path = join(root, 'a', 'device.key');
    const text = readFileSync(path, 'utf8');
    const loaded = await loadKeyFileSigner(path);
    expect(Buffer.from(loaded.keyId).equals(Buffer.from(written.keyId))).toBe(true);
    expect(Buffer.from(loaded.keyId).equals(Buffer.from(keyIdOf(loaded.publicKey)))).toBe(true);
    expect(loaded.privateKeyPem()).toBe(text);
    const msg = Buffer.from('hello');
    expect(verify(null, msg, createPublicKey(createPrivateKey(loaded.privateKeyPem())), loaded.signSync(msg))).toBe(
      true,
    );
  });

  it('PEM text that is more than one PKCS#8 block is encoded again, not handed on', () => {
    const pem = KeySigner.generate().privateKeyPem();
    const withComment = `a comment before the key\n${pem}`;
    const s = KeySigner.fromPem(withComment);
    expect(s.privateKeyPem()).toBe(pem);
    expect(KeySigner.fromPem(pem).privateKeyPem()).toBe(pem);
  });
});
