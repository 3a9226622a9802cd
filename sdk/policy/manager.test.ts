import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { edgewarden } from '../__generated__/messages.js';
import { encodeEnvelope, envelopeToJson, PAYLOAD_TYPES, signEnvelope } from '../provenance/dsse';
import { KeySigner } from '../provenance/keys';
import type { PolicyCode } from './codes';
import { PolicyManager } from './manager';
import { authorities, DIGEST_A, DIGEST_B, doc, manualClock, signDoc, signedBytes, T0 } from './test-support';

const DAY = 86_400_000;

describe('PolicyManager', () => {
  let home: string;
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'ew-policy-'));
  });
  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  async function setup() {
    const a = authorities();
    const clock = manualClock();
    const mgr = new PolicyManager({ trust: a.trust, clock, home, fleet: 'shop' });
    const first = await mgr.apply(
      await signedBytes(
        a.owner,
        doc('owner', 3, { models: { unlisted: 'refuse', allow: [{ name: 'vad', digest: DIGEST_A }] } }),
      ),
      'file',
    );
    expect(first.ok).toBe(true);
    return { ...a, clock, mgr, digest: Buffer.from(mgr.effective.digest).toString('hex') };
  }

  // Each bad policy is refused with its code, and the effective policy does not move.
  async function expectRefused(mgr: PolicyManager, digest: string, bytes: Uint8Array, code: PolicyCode) {
    const r = await mgr.apply(bytes, 'test');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.refusal.code).toBe(code);
    expect(Buffer.from(mgr.effective.digest).toString('hex')).toBe(digest);
    expect(mgr.gate.checkLoad({ name: 'vad', digest: Buffer.from('a'.repeat(64), 'hex'), dir: home }).allowed).toBe(
      true,
    );
    expect(mgr.gate.checkLoad({ name: 'x', digest: Buffer.from('b'.repeat(64), 'hex'), dir: home }).allowed).toBe(
      false,
    );
  }

  const openPolicy = (v: number) =>
    doc('owner', v, { models: { unlisted: 'flag', allow: [{ name: 'x', digest: DIGEST_B }] } });

  it('refuses an unsigned policy', async () => {
    const { mgr, digest, owner } = await setup();
    const env = await signDoc(owner, openPolicy(4));
    await expectRefused(mgr, digest, encodeEnvelope({ ...env, signatures: [] }), 'EW_POLICY_UNSIGNED');
  });

  it('refuses a forged policy (altered payload, or signature by an untrusted key)', async () => {
    const { mgr, digest, owner } = await setup();
    const env = await signDoc(owner, openPolicy(4));
    const other = await signDoc(owner, openPolicy(5));
    await expectRefused(mgr, digest, encodeEnvelope({ ...env, payload: other.payload }), 'EW_POLICY_SIGNATURE');
    const sig = Uint8Array.from(env.signatures[0]!.sig);
    sig[10] ^= 1;
    await expectRefused(
      mgr,
      digest,
      encodeEnvelope({ ...env, signatures: [{ keyid: env.signatures[0]!.keyid, sig }] }),
      'EW_POLICY_SIGNATURE',
    );
    await expectRefused(mgr, digest, await signedBytes(KeySigner.generate(), openPolicy(4)), 'EW_POLICY_UNTRUSTED_KEY');
  });

  it('refuses a policy signed by one authority in the name of another', async () => {
    const { mgr, digest, fleet } = await setup();
    await expectRefused(mgr, digest, await signedBytes(fleet, openPolicy(9)), 'EW_POLICY_AUTHORITY');
  });

  it('refuses an expired policy (injected clock)', async () => {
    const { mgr, digest, owner, clock } = await setup();
    const expires = new Date(T0 + DAY).toISOString();
    const bytes = await signedBytes(owner, { ...openPolicy(4), expires });
    clock.advance(2 * DAY);
    await expectRefused(mgr, digest, bytes, 'EW_POLICY_EXPIRED');
  });

  it('refuses a rolled-back version, and a same version with other content', async () => {
    const { mgr, digest, owner } = await setup();
    await expectRefused(mgr, digest, await signedBytes(owner, openPolicy(2)), 'EW_POLICY_ROLLBACK');
    await expectRefused(mgr, digest, await signedBytes(owner, openPolicy(3)), 'EW_POLICY_ROLLBACK');
  });

  it('refuses a wrong payloadType', async () => {
    const { mgr, digest, owner } = await setup();
    const env = await signDoc(owner, openPolicy(4));
    const resigned = await signEnvelope(owner, PAYLOAD_TYPES.heartbeat, env.payload);
    await expectRefused(mgr, digest, encodeEnvelope(resigned), 'EW_POLICY_PAYLOAD_TYPE');
  });

  it('refuses malformed bytes and a signed payload that is not a valid policy', async () => {
    const { mgr, digest, owner } = await setup();
    await expectRefused(mgr, digest, new Uint8Array([0xff, 0xff, 0xff, 0x01]), 'EW_POLICY_MALFORMED');
    await expectRefused(mgr, digest, Buffer.from('{"payloadType": 5}'), 'EW_POLICY_MALFORMED');
    const junk = edgewarden.v1.Policy.encode({ apiVersion: 'edgewarden/v1', authority: 'owner', version: 0 }).finish();
    await expectRefused(
      mgr,
      digest,
      encodeEnvelope(await signEnvelope(owner, PAYLOAD_TYPES.policy, junk)),
      'EW_POLICY_MALFORMED',
    );
  });

  it('keeps refusals for the next heartbeat and drains them once', async () => {
    const { mgr, owner } = await setup();
    await mgr.apply(await signedBytes(owner, openPolicy(1)), 'ew/v1/shop/policy/owner');
    expect(mgr.compliance([]).state).toBe('DEGRADED');
    const lines = mgr.takeRefusals();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^EW_POLICY_ROLLBACK: .*ew\/v1\/shop\/policy\/owner/);
    expect(mgr.takeRefusals()).toEqual([]);
    expect(mgr.compliance([]).state).toBe('COMPLIANT');
  });

  it('applies a newer version atomically, notifies listeners and persists it', async () => {
    const { mgr, owner } = await setup();
    const seen: string[] = [];
    mgr.onChange((eff) => seen.push(Buffer.from(eff.digest).toString('hex')));
    const r = await mgr.applyMqtt('ew/v1/shop/policy/owner', await signedBytes(owner, openPolicy(4)));
    expect(r.ok).toBe(true);
    expect(seen).toEqual([Buffer.from(mgr.effective.digest).toString('hex')]);
    expect(mgr.gate.checkLoad({ name: 'x', digest: Buffer.from('b'.repeat(64), 'hex'), dir: home }).allowed).toBe(true);
    expect(await readdir(join(home, 'policy', 'applied'))).toEqual(['owner.dsse.json']);
    // Redelivery of the retained message changes nothing and is no refusal.
    const again = await mgr.applyMqtt(
      'ew/v1/shop/policy/owner',
      await readFile(join(home, 'policy', 'applied', 'owner.dsse.json')),
    );
    expect(again).toMatchObject({ ok: true, unchanged: true });
    expect(mgr.refusals).toHaveLength(0);
  });

  it('checks the MQTT topic: authority and fleet must match; an empty retained payload changes nothing', async () => {
    const { mgr, owner, digest } = await setup();
    const bytes = await signedBytes(owner, openPolicy(4));
    expect((await mgr.applyMqtt('ew/v1/shop/policy/fleet', bytes)).ok).toBe(false);
    expect((await mgr.applyMqtt('ew/v1/other/policy/owner', bytes)).ok).toBe(false);
    expect((await mgr.applyMqtt('ew/v1/shop/nopolicy', bytes)).ok).toBe(false);
    expect(mgr.refusals.map((r) => r.code)).toEqual([
      'EW_POLICY_AUTHORITY',
      'EW_POLICY_AUTHORITY',
      'EW_POLICY_MALFORMED',
    ]);
    expect(await mgr.applyMqtt('ew/v1/shop/policy/owner', new Uint8Array(0))).toMatchObject({
      ok: true,
      unchanged: true,
    });
    expect(Buffer.from(mgr.effective.digest).toString('hex')).toBe(digest);
  });

  it('reopens a home with the applied policies and their versions (rollback survives restart)', async () => {
    const { owner, trust, digest } = await setup();
    const helper = new PolicyManager({ trust, home });
    for (const a of trust.authorities) await helper.addAuthority(a.name, a.publicKey);
    const mgr = await PolicyManager.open(home, { clock: manualClock() });
    expect(mgr.trust.size).toBe(3);
    expect(Buffer.from(mgr.effective.digest).toString('hex')).toBe(digest);
    const r = await mgr.apply(await signedBytes(owner, openPolicy(2)), 'file');
    expect(r.ok ? '' : r.refusal.code).toBe('EW_POLICY_ROLLBACK');
  });

  it('a stored policy that was tampered with is refused on reopen', async () => {
    const { owner, trust } = await setup();
    const helper = new PolicyManager({ trust, home });
    await helper.addAuthority('owner', owner.publicKey, 'owner');
    const path = join(home, 'policy', 'applied', 'owner.dsse.json');
    const env = JSON.parse(await readFile(path, 'utf8'));
    const other = envelopeToJson(await signDoc(KeySigner.generate(), openPolicy(7)));
    await writeFile(path, JSON.stringify({ ...env, payload: other.payload }));
    const mgr = await PolicyManager.open(home);
    expect(mgr.effective.policies).toHaveLength(0);
    expect(mgr.refusals.map((r) => r.code)).toEqual(['EW_POLICY_SIGNATURE']);
  });

  it('drops a policy when it expires (refresh on the injected clock)', async () => {
    const a = authorities();
    const clock = manualClock();
    const mgr = new PolicyManager({ trust: a.trust, clock });
    const expires = new Date(T0 + DAY).toISOString();
    await mgr.apply(await signedBytes(a.owner, doc('owner', 1, { expires, models: { allow: [] } })), 'f');
    expect(mgr.gate.checkLoad({ name: 'x', digest: new Uint8Array(32), dir: home }).allowed).toBe(false);
    clock.advance(2 * DAY);
    mgr.refresh();
    expect(mgr.gate.checkLoad({ name: 'x', digest: new Uint8Array(32), dir: home }).allowed).toBe(true);
    expect(mgr.effective.notes[0]).toMatch(/^EW_POLICY_EXPIRED/);
    expect(mgr.compliance([]).state).toBe('DEGRADED');
  });
});
