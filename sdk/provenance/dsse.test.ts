import { describe, expect, it } from 'vitest';
import {
  decodeEnvelope,
  encodeEnvelope,
  envelopeFromJson,
  envelopeToJson,
  PAYLOAD_TYPES,
  pae,
  signEnvelope,
  verifyEnvelope,
} from './dsse';
import { KeySigner, TrustStore } from './keys';

describe('DSSE', () => {
  it('builds PAE as the DSSE spec example does', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });

  it('signs, round-trips through binary and JSON, and verifies', async () => {
    const signer = KeySigner.generate();
    const env = await signEnvelope(signer, PAYLOAD_TYPES.record, new Uint8Array([1, 2, 3]));
    const trust = new TrustStore([signer.publicKey]);
    expect(verifyEnvelope(decodeEnvelope(encodeEnvelope(env)), trust, PAYLOAD_TYPES.record)).toMatchObject({
      ok: true,
    });
    expect(
      verifyEnvelope(envelopeFromJson(JSON.parse(JSON.stringify(envelopeToJson(env)))), trust, PAYLOAD_TYPES.record).ok,
    ).toBe(true);
  });

  it('names each failure', async () => {
    const signer = KeySigner.generate();
    const env = await signEnvelope(signer, PAYLOAD_TYPES.record, new Uint8Array([1, 2, 3]));
    const trust = new TrustStore([signer.publicKey]);
    expect(verifyEnvelope(env, trust, PAYLOAD_TYPES.checkpoint)).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_PAYLOAD_TYPE',
    });
    expect(verifyEnvelope(env, new TrustStore([KeySigner.generate().publicKey]), PAYLOAD_TYPES.record)).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_UNTRUSTED_KEY',
    });
    const tampered = { ...env, payload: new Uint8Array([1, 2, 4]) };
    expect(verifyEnvelope(tampered, trust, PAYLOAD_TYPES.record)).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_SIGNATURE',
    });
    expect(() => decodeEnvelope(new Uint8Array([0x0a, 0xff]))).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_MALFORMED' }),
    );
    expect(() => envelopeFromJson({ payloadType: 'x', payload: '!!', signatures: [] })).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_MALFORMED' }),
    );
  });
});
