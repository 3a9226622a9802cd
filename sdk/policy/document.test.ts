import { describe, expect, it } from 'vitest';
import { edgewarden } from '../__generated__/messages.js';
import { EdgewardenError } from '../errors';
import { decodePolicy, encodePolicyDocument } from './canonical';
import { parsePolicyDocument } from './document';
import { POLICY_TEMPLATE } from './template';

function schemaError(text: string): EdgewardenError {
  try {
    parsePolicyDocument(text, 'p.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(EdgewardenError);
    return err as EdgewardenError;
  }
  throw new Error('expected an error');
}

const HEAD = 'apiVersion: edgewarden/v1\nkind: Policy\nauthority: owner\nversion: 2\n';

describe('policy documents', () => {
  it('the init template is a valid policy and round-trips through the canonical form', () => {
    const d = parsePolicyDocument(POLICY_TEMPLATE);
    const body = decodePolicy(encodePolicyDocument(d));
    expect(body.authority).toBe('owner');
    expect(body.models?.unlisted).toBe('refuse');
    expect(body.outputs[0]).toMatchObject({ id: 'vad-floor', model: 'vad', output: 'output', minConfidence: 0.5 });
    expect(body.provenance).toEqual({ mode: 'batched', checkpointEvery: 1000, checkpointMs: 5000, salted: false });
    expect(body.expiresUnixMs).toBe(Date.parse('2027-12-31T00:00:00Z'));
  });

  it('a wrong value names the key, line and column', () => {
    const e = schemaError(`${HEAD}outputs:\n  - model: vad\n    minConfidence: 2\n`);
    expect(e.code).toBe('EW_POLICY_SCHEMA');
    expect(e.details).toMatchObject({ key: 'outputs[0].minConfidence', line: 7, column: 5 });
    expect(e.message).toMatch(/^p\.yaml:7:5: outputs\[0\]\.minConfidence: /);
  });

  it('an unknown key is reported at the key itself', () => {
    const e = schemaError(`${HEAD}models:\n  unlisted: refuse\n  alow: []\n`);
    expect(e.code).toBe('EW_POLICY_SCHEMA');
    expect(e.details).toMatchObject({ key: 'models.alow', line: 7, column: 3 });
  });

  it('a missing key points at the map that should hold it', () => {
    const e = schemaError('apiVersion: edgewarden/v1\nkind: Policy\nversion: 1\n');
    expect(e.details).toMatchObject({ key: 'authority', line: 1, column: 1 });
  });

  it('a blocked class missing from the label map is named', () => {
    const e = schemaError(`${HEAD}outputs:\n  - model: det\n    labels: [a, b]\n    blockedClasses: [a, c]\n`);
    expect(e.details).toMatchObject({ key: 'outputs[0].blockedClasses[1]', line: 8 });
  });

  it('a YAML syntax error names line and column', () => {
    const e = schemaError(`${HEAD}models: [unclosed\n`);
    expect(e.code).toBe('EW_POLICY_YAML');
    expect(e.details.line).toBeGreaterThanOrEqual(5);
    expect(e.message).toMatch(/^p\.yaml:\d+:\d+: /);
  });

  it('encoding is deterministic and independent of allowlist order', () => {
    const a = `${HEAD}models:\n  allow:\n    - { name: x, digest: "sha256:${'1'.repeat(64)}" }\n    - { name: y, digest: "sha256:${'2'.repeat(64)}" }\n`;
    const b = `${HEAD}models:\n  allow:\n    - { name: y, digest: "sha256:${'2'.repeat(64)}" }\n    - { name: x, digest: "sha256:${'1'.repeat(64)}" }\n`;
    const ea = encodePolicyDocument(parsePolicyDocument(a));
    expect(Buffer.from(ea).equals(Buffer.from(encodePolicyDocument(parsePolicyDocument(a))))).toBe(true);
    expect(Buffer.from(ea).equals(Buffer.from(encodePolicyDocument(parsePolicyDocument(b))))).toBe(true);
  });

  it('class names resolve through the label map', () => {
    const body = decodePolicy(
      encodePolicyDocument(
        parsePolicyDocument(
          `${HEAD}outputs:\n  - model: det\n    labels: [bg, person, car]\n    blockedClasses: [car, person, 1]\n`,
        ),
      ),
    );
    expect(body.outputs[0]!.blockedClasses).toEqual([1, 2]);
  });

  it('hostile bytes only ever throw EW_POLICY_MALFORMED', () => {
    const good = encodePolicyDocument(parsePolicyDocument(POLICY_TEMPLATE));
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 2000; i++) {
      const b = Uint8Array.from(good);
      for (let k = 0; k < 1 + (i % 4); k++) b[rnd() % b.length] = rnd() & 0xff;
      const cut = i % 3 === 0 ? b.subarray(0, rnd() % b.length) : b;
      try {
        decodePolicy(cut);
      } catch (err) {
        expect((err as EdgewardenError).code).toBe('EW_POLICY_MALFORMED');
      }
    }
    const wrongApi = edgewarden.v1.Policy.encode({ apiVersion: 'v0', authority: 'owner', version: 1 }).finish();
    expect(() => decodePolicy(wrongApi)).toThrow(/apiVersion/);
  });
});
