import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parsePolicyDocument } from '../policy/document';
import { writeKeyPair } from '../provenance/keys';
import { policyApply, policyInit, policySign, policyVerify, registerPolicy } from './policy';

describe('edgewarden policy', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ew-cli-policy-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
    process.exitCode = undefined;
    vi.restoreAllMocks();
  });

  async function signedTemplate() {
    const keys = join(dir, 'keys');
    const owner = await writeKeyPair(keys, 'owner');
    await writeFile(join(dir, 'policy.yaml'), policyInit());
    const out = join(dir, 'policy.dsse.json');
    const r = await policySign(join(dir, 'policy.yaml'), { key: join(keys, 'owner.key'), out });
    return { keys, owner, out, r };
  }

  it('init prints a template that parses; sign writes DSSE JSON that verifies against a key or a directory', async () => {
    expect(parsePolicyDocument(policyInit()).authority).toBe('owner');
    const { keys, out, r } = await signedTemplate();
    expect(r).toMatchObject({ authority: 'owner', version: 1, signatures: 1 });
    const json = JSON.parse(await readFile(out, 'utf8'));
    expect(json.payloadType).toBe('application/vnd.edgewarden.policy.v1+protobuf');
    expect(await policyVerify(out, { trust: join(keys, 'owner.pub') })).toMatchObject({ ok: true, signers: ['owner'] });
    expect(await policyVerify(out, { trust: keys })).toMatchObject({ ok: true, authority: 'owner' });
    expect(await policyVerify(out, { trust: keys, now: Date.parse('2028-01-01T00:00:00Z') })).toMatchObject({
      ok: false,
      code: 'EW_POLICY_EXPIRED',
    });
  });

  it('sign on a signed policy adds a co-signature', async () => {
    const { keys, out } = await signedTemplate();
    await writeKeyPair(keys, 'fleet');
    const r = await policySign(out, { key: join(keys, 'fleet.key'), out: join(dir, 'both.dsse.json') });
    expect(r.signatures).toBe(2);
    expect(await policyVerify(join(dir, 'both.dsse.json'), { trust: keys })).toMatchObject({
      ok: true,
      signers: ['fleet', 'owner'],
    });
  });

  it('verify of a tampered policy exits 1 and prints its code', async () => {
    const { keys, out } = await signedTemplate();
    const json = JSON.parse(await readFile(out, 'utf8'));
    const payload = Buffer.from(json.payload, 'base64');
    payload[payload.length - 1] ^= 1;
    await writeFile(out, JSON.stringify({ ...json, payload: payload.toString('base64') }));
    const stdout: string[] = [];
    const stderr: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => stdout.push(String(s)) > 0);
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => stderr.push(String(s)) > 0);
    const program = new Command().exitOverride();
    registerPolicy(program);
    await program.parseAsync(['node', 'edgewarden', 'policy', 'verify', out, '--trust', keys, '--json']);
    expect(process.exitCode).toBe(1);
    expect(JSON.parse(stdout.join(''))).toMatchObject({ ok: false, code: 'EW_POLICY_SIGNATURE' });
    expect(stderr.join('')).toContain('EW_POLICY_SIGNATURE');
  });

  it('apply installs a verified policy into the home, refuses a rollback, and needs a trusted authority', async () => {
    const { keys, out } = await signedTemplate();
    const home = join(dir, 'home');
    await expect(policyApply(out, { home })).rejects.toMatchObject({ code: 'EW_POLICY_TRUST' });
    await mkdir(join(home, 'policy', 'authorities'), { recursive: true });
    await writeFile(join(home, 'policy', 'authorities', 'owner.pub'), await readFile(join(keys, 'owner.pub')));
    expect(await policyApply(out, { home })).toMatchObject({
      ok: true,
      authority: 'owner',
      version: 1,
      unchanged: false,
    });
    expect(await policyApply(out, { home })).toMatchObject({ ok: true, unchanged: true });
    const older = policyInit().replace('checkpointEvery: 1000', 'checkpointEvery: 10');
    await writeFile(join(dir, 'other.yaml'), older);
    await policySign(join(dir, 'other.yaml'), { key: join(keys, 'owner.key'), out: join(dir, 'other.dsse.json') });
    expect(await policyApply(join(dir, 'other.dsse.json'), { home })).toMatchObject({
      ok: false,
      code: 'EW_POLICY_ROLLBACK',
    });
  });
});
