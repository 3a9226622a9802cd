import { describe, expect, it } from 'vitest';
import type { TensorMap, TensorView } from '../engine/tensor';
import { computeCompliance } from './compliance';
import { OPEN_GATE, PolicyGate } from './gate';
import { authorities, DIGEST_A, doc, effectiveOf } from './test-support';

const A = Buffer.from('a'.repeat(64), 'hex');
const B = Buffer.from('b'.repeat(64), 'hex');
const f32 = (dims: number[], data: number[]): TensorView => ({ type: 'float32', dims, data: Float32Array.from(data) });

async function gateFor(extra: Record<string, unknown>) {
  const a = authorities();
  return new PolicyGate(await effectiveOf(a.trust, [a.owner, doc('owner', 1, extra)]));
}

const ALLOW_A = { unlisted: 'refuse', allow: [{ name: 'vad', digest: DIGEST_A }] };

describe('PolicyGate: models', () => {
  it('refuse mode: an unlisted model is refused at load and never produces an output', async () => {
    const gate = await gateFor({ models: ALLOW_A });
    const d = gate.checkLoad({ name: 'rogue', digest: B, dir: '/nonexistent' });
    expect(d).toMatchObject({
      allowed: false,
      code: 'EW_POLICY_MODEL_NOT_ALLOWED',
      ruleId: 'models.unlisted',
      authority: 'owner',
    });
    expect(d.reason).toMatch(
      /^EW_POLICY_MODEL_NOT_ALLOWED: model rogue \(sha256:b{64}\) is not on the allowlist of owner/,
    );
    const out = gate.checkOutputs({ name: 'rogue', digest: B }, { y: f32([1], [1]) }, 0);
    expect(out).toEqual({ outcome: 'blocked', ruleId: 'models.unlisted', authority: 'owner', outputs: undefined });
    // Even a gate that never saw the load blocks it.
    const fresh = await gateFor({ models: ALLOW_A });
    expect(fresh.checkOutputs({ name: 'rogue', digest: B }, { y: f32([1], [1]) }, 0).outputs).toBeUndefined();
    expect(gate.checkLoad({ name: 'vad', digest: A, dir: '/x' })).toEqual({ allowed: true, ruleId: 'models.allow' });
    expect(gate.checkOutputs({ name: 'vad', digest: A }, { y: f32([1], [1]) }, 0).outcome).toBe('allowed');
    expect(gate.policyDigest).toHaveLength(32);
  });

  it('flag mode: the unlisted model runs and the device is NON_COMPLIANT with the reason', async () => {
    const gate = await gateFor({ models: { ...ALLOW_A, unlisted: 'flag' } });
    const d = gate.checkLoad({ name: 'rogue', digest: B, dir: '/x' });
    expect(d.allowed).toBe(true);
    expect(d.code).toBe('EW_POLICY_MODEL_NOT_ALLOWED');
    expect(gate.checkOutputs({ name: 'rogue', digest: B }, { y: f32([1], [1]) }, 0).outcome).toBe('allowed');
    const c = computeCompliance({
      models: [
        { name: 'vad', loadDecision: gate.checkLoad({ name: 'vad', digest: A, dir: '/x' }) },
        { name: 'rogue', loadDecision: d },
      ],
    });
    expect(c.state).toBe('NON_COMPLIANT');
    expect(c.reasons).toEqual([`model rogue runs against policy: ${d.reason}`]);
    expect(computeCompliance({ models: [{ name: 'vad', loadDecision: { allowed: true } }] })).toEqual({
      state: 'COMPLIANT',
      reasons: [],
    });
  });

  it('no models section: everything loads', async () => {
    const gate = await gateFor({ audit: { durability: 'always' } });
    expect(gate.checkLoad({ name: 'any', digest: B, dir: '/x' }).allowed).toBe(true);
    expect(OPEN_GATE.checkLoad({ name: 'any', digest: B, dir: '/x' }).allowed).toBe(true);
  });
});

describe('PolicyGate: outputs', () => {
  const det = { name: 'det', digest: A };
  const scores = (...v: number[]): TensorMap => ({ scores: f32([1, v.length], v) });

  it('blocks a class from the label map, names the rule, and passes others', async () => {
    const gate = await gateFor({
      outputs: [
        { id: 'no-person', model: 'det', output: 'scores', labels: ['bg', 'person'], blockedClasses: ['person'] },
      ],
    });
    expect(gate.checkOutputs(det, scores(0.1, 0.9), 0)).toEqual({
      outcome: 'blocked',
      ruleId: 'no-person',
      authority: 'owner',
      outputs: undefined,
    });
    const ok = scores(0.9, 0.1);
    expect(gate.checkOutputs(det, ok, 0)).toEqual({ outcome: 'allowed', ruleId: '', authority: '', outputs: ok });
    // Every row of a batch is checked.
    expect(gate.checkOutputs(det, { scores: f32([2, 2], [0.9, 0.1, 0.2, 0.8]) }, 0).outcome).toBe('blocked');
    // Another model is not affected.
    expect(gate.checkOutputs({ name: 'other', digest: A }, scores(0.1, 0.9), 0).outcome).toBe('allowed');
  });

  it('enforces a confidence floor (NaN never passes)', async () => {
    const gate = await gateFor({ outputs: [{ id: 'floor', model: 'det', output: 'scores', minConfidence: 0.5 }] });
    expect(gate.checkOutputs(det, scores(0.4, 0.3), 0).ruleId).toBe('floor');
    expect(gate.checkOutputs(det, scores(0.6, 0.3), 0).outcome).toBe('allowed');
    expect(gate.checkOutputs(det, scores(Number.NaN, Number.NaN), 0).outcome).toBe('blocked');
  });

  it('rate-limits with a token bucket on the injected time', async () => {
    const gate = await gateFor({ outputs: [{ id: 'rate', model: 'det', output: 'scores', ratePerMinute: 2 }] });
    const t0 = 1_000_000;
    expect(gate.checkOutputs(det, scores(1), t0).outcome).toBe('allowed');
    expect(gate.checkOutputs(det, scores(1), t0).outcome).toBe('allowed');
    expect(gate.checkOutputs(det, scores(1), t0 + 1000)).toMatchObject({ outcome: 'blocked', ruleId: 'rate' });
    expect(gate.checkOutputs(det, scores(1), t0 + 30_000).outcome).toBe('allowed');
    expect(gate.checkOutputs(det, scores(1), t0 + 30_001).outcome).toBe('blocked');
    // A clock that steps back never mints tokens.
    expect(gate.checkOutputs(det, scores(1), t0).outcome).toBe('blocked');
  });

  it('redacts one output and delivers the rest', async () => {
    const gate = await gateFor({ outputs: [{ id: 'hide-boxes', model: 'det', output: 'boxes', redact: true }] });
    const outputs = { ...scores(0.9, 0.1), boxes: f32([1, 4], [1, 2, 3, 4]) };
    const d = gate.checkOutputs(det, outputs, 0);
    expect(d.outcome).toBe('redacted');
    expect(d.ruleId).toBe('hide-boxes');
    expect(Object.keys(d.outputs!)).toEqual(['scores']);
  });

  it('a kill switch on any model blocks everything', async () => {
    const gate = await gateFor({ outputs: [{ id: 'stop', model: '*', output: '*', kill: true }] });
    expect(gate.checkOutputs({ name: 'x', digest: B }, scores(1), 0)).toMatchObject({
      outcome: 'blocked',
      ruleId: 'stop',
    });
    expect(gate.checkOutputs(det, {}, 0).outcome).toBe('blocked');
  });

  it('a wildcard output rule checks every output; unreadable tensors fail closed', async () => {
    const gate = await gateFor({ outputs: [{ id: 'all', model: 'det', minConfidence: 0.5 }] });
    expect(gate.checkOutputs(det, { a: f32([1], [0.9]), b: f32([1], [0.1]) }, 0).outcome).toBe('blocked');
    expect(gate.checkOutputs(det, { a: f32([1], [0.9]) }, 0).outcome).toBe('allowed');
    const text: TensorView = { type: 'string', dims: [1], data: ['hello'] };
    expect(gate.checkOutputs(det, { a: text }, 0).outcome).toBe('blocked');
  });

  it('rules of two authorities on one output both apply', async () => {
    const a = authorities();
    const gate = new PolicyGate(
      await effectiveOf(
        a.trust,
        [a.owner, doc('owner', 1, { outputs: [{ id: 'o', model: 'det', output: 'scores', minConfidence: 0.2 }] })],
        [a.fleet, doc('fleet', 1, { outputs: [{ id: 'f', model: 'det', output: 'scores', blockedClasses: [0] }] })],
      ),
    );
    expect(gate.checkOutputs(det, scores(0.9, 0.1), 0)).toMatchObject({
      outcome: 'blocked',
      ruleId: 'f',
      authority: 'fleet',
    });
    expect(gate.checkOutputs(det, scores(0.15, 0.1), 0)).toMatchObject({ outcome: 'blocked', ruleId: 'f' });
    expect(gate.checkOutputs(det, scores(0.1, 0.15), 0)).toMatchObject({
      outcome: 'blocked',
      ruleId: 'o',
      authority: 'owner',
    });
    expect(gate.checkOutputs(det, scores(0.1, 0.9), 0).outcome).toBe('allowed');
  });
});
