import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { policyApply, policyShow, policySign } from '../cli/policy';
import { encodeEnvelope } from '../provenance/dsse';
import { writeKeyPair } from '../provenance/keys';
import { composePolicies } from './compose';
import { formatExplanation, type PolicyExplanation } from './explain';
import { cosignPolicy } from './sign';
import { authorities, DIGEST_A, DIGEST_B, DIGEST_C, doc, signDoc, T0 } from './test-support';
import { decodePolicyEnvelope, type VerifiedPolicy, verifyPolicyEnvelope } from './verify';

// Two authorities that disagree in every section.
const OWNER = doc('owner', 1, {
  models: {
    unlisted: 'flag',
    allow: [
      { name: 'vad', digest: DIGEST_A, license: 'MIT' },
      { name: 'ocr', digest: DIGEST_B },
    ],
  },
  outputs: [
    {
      id: 'o-floor',
      model: 'det',
      output: 'scores',
      labels: ['bg', 'person', 'car'],
      blockedClasses: ['car'],
      minConfidence: 0.3,
      ratePerMinute: 600,
    },
  ],
  provenance: { mode: 'batched', checkpointEvery: 1000, checkpointMs: 5000, salted: false },
  audit: { durability: 'none', retainDays: 30 },
  telemetry: { heartbeatSeconds: 60, brokers: [{ url: 'mqtt://fleet.example:1883', share: 'full' }] },
});
const FLEET = doc('fleet', 1, {
  models: {
    unlisted: 'refuse',
    allow: [
      { name: 'vad', digest: DIGEST_A },
      { name: 'kws', digest: DIGEST_C },
    ],
  },
  outputs: [
    {
      id: 'f-floor',
      model: 'det',
      output: 'scores',
      labels: ['bg', 'person', 'car'],
      blockedClasses: ['person'],
      minConfidence: 0.7,
      ratePerMinute: 60,
    },
    { id: 'f-redact', model: 'det', output: 'boxes', redact: true },
  ],
  provenance: { mode: 'per-output', checkpointEvery: 100, checkpointMs: 9000, salted: true },
  audit: { durability: 'always', retainDays: 365 },
  telemetry: {
    heartbeatSeconds: 10,
    brokers: [
      { url: 'mqtt://fleet.example:1883', share: 'summary' },
      { url: 'mqtt://community.example:1883', share: 'none' },
    ],
  },
});

function check(e: PolicyExplanation) {
  expect(e.policies.map((p) => p.authority)).toEqual(['fleet', 'owner']);
  // models: allowlists intersect, any refuse wins
  expect(e.models!.unlisted).toEqual({ value: 'refuse', setBy: ['fleet'] });
  expect(e.models!.allow.map((a) => a.digest)).toEqual([DIGEST_A]);
  expect(e.models!.constrainedBy).toEqual(['fleet', 'owner']);
  // outputs: union of blocked classes, highest floor, lowest rate, redaction
  const scores = e.outputs.find((o) => o.output === 'scores')!;
  expect(scores.blockedClasses).toEqual([
    { index: 1, label: 'person', ruleId: 'f-floor', authority: 'fleet' },
    { index: 2, label: 'car', ruleId: 'o-floor', authority: 'owner' },
  ]);
  expect(scores.minConfidence).toEqual({ value: 0.7, ruleId: 'f-floor', authority: 'fleet' });
  expect(scores.rate).toEqual({ perMinute: 60, burst: 60, ruleId: 'f-floor', authority: 'fleet' });
  expect(e.outputs.find((o) => o.output === 'boxes')!.redact).toEqual({ ruleId: 'f-redact', authority: 'fleet' });
  // provenance / audit / telemetry: the stricter value, and who set it
  expect(e.provenance).toEqual({
    mode: { value: 'per-output', setBy: ['fleet'] },
    checkpointEvery: { value: 100, setBy: ['fleet'] },
    checkpointMs: { value: 5000, setBy: ['owner'] },
    salted: { value: true, setBy: ['fleet'] },
  });
  expect(e.audit).toEqual({
    durability: { value: 'always', setBy: ['fleet'] },
    retainDays: { value: 365, setBy: ['fleet'] },
  });
  expect(e.telemetry).toEqual({
    heartbeatSeconds: { value: 10, setBy: ['fleet'] },
    brokers: [
      { url: 'mqtt://community.example:1883', share: { value: 'none', setBy: ['fleet'] } },
      { url: 'mqtt://fleet.example:1883', share: { value: 'summary', setBy: ['fleet'] } },
    ],
  });
}

describe('composition of several authorities', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ew-compose-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the stricter rule wins in every section, as `policy show --effective --json` shows', async () => {
    const home = join(dir, 'home');
    const keys = join(dir, 'keys');
    await mkdir(join(home, 'policy', 'authorities'), { recursive: true });
    for (const [name, body] of [
      ['owner', OWNER],
      ['fleet', FLEET],
    ] as const) {
      const signer = await writeKeyPair(keys, name);
      await writeFile(join(home, 'policy', 'authorities', `${name}.pub`), signer.publicKeyPem());
      await writeFile(join(dir, `${name}.yaml`), stringify(body));
      await policySign(join(dir, `${name}.yaml`), {
        key: join(keys, `${name}.key`),
        out: join(dir, `${name}.dsse.json`),
      });
      expect(await policyApply(join(dir, `${name}.dsse.json`), { home })).toMatchObject({ ok: true, authority: name });
    }
    const shown = (await policyShow({ home, effective: true })) as PolicyExplanation;
    check(JSON.parse(JSON.stringify(shown)));
    const text = formatExplanation(shown);
    expect(text).toContain('min confidence 0.7  (fleet: f-floor)');
    expect(text).toContain('unlisted: refuse  (fleet)');
    // Without --effective: the applied policies and trusted authorities.
    const plain = await policyShow({ home });
    expect(plain).toMatchObject({ authorities: [{ name: 'fleet' }, { name: 'owner' }], refusals: [] });
  });

  it('composition does not depend on the order policies arrive in', async () => {
    const a = authorities();
    const v = async (s: typeof a.owner, d: Record<string, unknown>) => {
      const r = verifyPolicyEnvelope(decodePolicyEnvelope(encodeEnvelope(await signDoc(s, d))), a.trust, { now: T0 });
      if (!r.ok) throw new Error(r.message);
      return r as VerifiedPolicy;
    };
    const p1 = await v(a.owner, OWNER);
    const p2 = await v(a.fleet, FLEET);
    const x = composePolicies([p1, p2], a.trust, T0);
    const y = composePolicies([p2, p1], a.trust, T0);
    expect(Buffer.from(x.digest).equals(Buffer.from(y.digest))).toBe(true);
    expect(x.outputRules.map((r) => r.rule.id)).toEqual(y.outputRules.map((r) => r.rule.id));
  });

  it('a section with a k-of-n threshold applies only with k authority signatures', async () => {
    const a = authorities({ models: 2 });
    const d = doc('owner', 1, { models: { allow: [] }, audit: { durability: 'always' } });
    const single = await signDoc(a.owner, d);
    const r1 = verifyPolicyEnvelope(single, a.trust, { now: T0 });
    if (!r1.ok) throw new Error(r1.message);
    const e1 = composePolicies([r1], a.trust, T0);
    expect(e1.models).toBeUndefined();
    expect(e1.audit.durability?.value).toBe('always');
    expect(e1.notes[0]).toMatch(/^EW_POLICY_THRESHOLD: section models of owner v1 has 1 of 2/);
    const both = await cosignPolicy(a.community, single);
    const r2 = verifyPolicyEnvelope(both, a.trust, { now: T0 });
    if (!r2.ok) throw new Error(r2.message);
    expect(r2.signers).toEqual(['community', 'owner']);
    const e2 = composePolicies([r2], a.trust, T0);
    expect(e2.models?.constraints.map((c) => c.authority)).toEqual(['owner']);
    expect(e2.notes).toEqual([]);
  });
});
