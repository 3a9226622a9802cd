import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { computeModelDigest } from '../engine/model-digest';
import type { TensorMap } from '../engine/tensor';
import { KeySigner } from '../provenance/keys';
import { verifyBundle } from '../provenance/verifier';
import { FakeBackend } from '../testing/fake-backend';
import { createWarden } from '../warden/create';
import type { Warden } from '../warden/types';
import { computeCompliance } from './compliance';
import { PolicyGate } from './gate';
import { PolicyManager } from './manager';
import { authorities, DIGEST_A, doc, effectiveOf, manualClock, signedBytes } from './test-support';

// The FakeBackend never runs the model, but loading digests a real ONNX file.
const MODEL = new URL('../engine/fixtures/add.onnx', import.meta.url).pathname;
const x: TensorMap = { x: { type: 'float32', dims: [1, 4], data: new Float32Array([1, 1, 2, 3]) } };

describe('the policy gate inside a warden', () => {
  let home: string;
  let warden: Warden | undefined;
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'ew-policy-warden-'));
  });
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await rm(home, { recursive: true, force: true });
  });

  const open = async (gate: PolicyGate | PolicyManager['gate']) => {
    warden = await createWarden({ home, backend: new FakeBackend(), signer: KeySigner.generate(), gate });
    return warden;
  };

  it('refuse mode: an unlisted model never loads, so never produces an output', async () => {
    const a = authorities();
    const gate = new PolicyGate(
      await effectiveOf(a.trust, [
        a.owner,
        doc('owner', 1, { models: { allow: [{ name: 'other', digest: DIGEST_A }] } }),
      ]),
    );
    const w = await open(gate);
    await expect(w.load(MODEL)).rejects.toMatchObject({ code: 'EW_WARDEN_MODEL_REFUSED' });
    expect(w.models).toHaveLength(0);
  });

  it('flag mode: the model runs, compliance says NON_COMPLIANT with the reason', async () => {
    const a = authorities();
    const eff = await effectiveOf(a.trust, [a.owner, doc('owner', 1, { models: { unlisted: 'flag', allow: [] } })]);
    const w = await open(new PolicyGate(eff));
    const m = await w.load(MODEL);
    const r = await m.infer(x);
    expect(Object.keys(r.outputs).length).toBeGreaterThan(0);
    const c = computeCompliance({ models: w.models.map((mm) => ({ name: mm.name, loadDecision: mm.loadDecision })) });
    expect(c.state).toBe('NON_COMPLIANT');
    expect(c.reasons[0]).toMatch(/EW_POLICY_MODEL_NOT_ALLOWED: model add /);
  });

  it('a policy swap through the manager applies between inferences and is recorded with its digest', async () => {
    const a = authorities();
    const signer = KeySigner.generate();
    const mgr = new PolicyManager({ trust: a.trust, clock: manualClock() });
    const digest = `sha256:${Buffer.from((await computeModelDigest(MODEL)).digest).toString('hex')}`;
    await mgr.apply(await signedBytes(a.owner, doc('owner', 1, { models: { allow: [{ name: 'add', digest }] } })), 'f');
    warden = await createWarden({ home, backend: new FakeBackend(), signer, gate: mgr.gate, mode: 'per-output' });
    const m = await warden.load(MODEL);
    expect((await m.infer(x)).decision.outcome).toBe('allowed');
    const kill = doc('owner', 2, {
      models: { allow: [{ name: 'add', digest }] },
      outputs: [{ id: 'stop', model: '*', kill: true }],
    });
    expect((await mgr.apply(await signedBytes(a.owner, kill), 'f')).ok).toBe(true);
    const r = await m.infer(x);
    expect(r.outputs).toEqual({});
    expect(r.decision).toEqual({ outcome: 'blocked', ruleId: 'stop', authority: 'owner' });
    const v = verifyBundle(await r.provenance, r.outputs, { trust: [signer.publicKey] });
    expect(v.ok).toBe(true);
    if (v.ok) expect(Buffer.from(v.record.policyDigest).equals(Buffer.from(mgr.effective.digest))).toBe(true);
  });
});
