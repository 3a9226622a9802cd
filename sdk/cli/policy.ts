import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import { EdgewardenError } from '../errors';
import { decodePolicy } from '../policy/canonical';
import { explainPolicy, formatExplanation, type PolicyExplanation } from '../policy/explain';
import { PolicyManager } from '../policy/manager';
import { cosignPolicy, signPolicyYaml } from '../policy/sign';
import { POLICY_TEMPLATE } from '../policy/template';
import { TrustConfig } from '../policy/trust';
import { decodePolicyEnvelope, verifyPolicyEnvelope } from '../policy/verify';
import { type Envelope, envelopeFromJson, envelopeToJson } from '../provenance/dsse';
import { loadKeyFileSigner } from '../provenance/keys';
import { action, EXIT, emit, paint, resolveHome } from './common';

/** `policy init`: the commented template. */
export function policyInit(): string {
  return POLICY_TEMPLATE;
}

function asSignedPolicy(text: string): Envelope | undefined {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    return v && typeof v === 'object' && 'payloadType' in v && 'signatures' in v ? envelopeFromJson(v) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `policy sign FILE --key KEY --out SIGNED`: validates a YAML policy, encodes it canonically and
 * signs it as DSSE JSON. When FILE is already a signed policy, adds this key's signature (k of n).
 */
export async function policySign(
  file: string,
  opts: { key: string; out: string },
): Promise<{ out: string; authority: string; version: number; signatures: number; keyid: string }> {
  const text = await readFile(file, 'utf8').catch((cause) => {
    throw new EdgewardenError('EW_POLICY_IO', `cannot read ${file}`, { cause });
  });
  const signer = await loadKeyFileSigner(opts.key);
  const existing = asSignedPolicy(text);
  const env = existing ? await cosignPolicy(signer, existing) : await signPolicyYaml(signer, text, file);
  const body = decodePolicy(env.payload);
  await writeFile(opts.out, `${JSON.stringify(envelopeToJson(env), null, 2)}\n`);
  return {
    out: opts.out,
    authority: body.authority,
    version: body.version,
    signatures: env.signatures.length,
    keyid: Buffer.from(signer.keyId).toString('hex'),
  };
}

/** The verdict of `policy verify`. */
export type PolicyVerifyResult =
  | { ok: true; authority: string; version: number; signers: readonly string[]; digest: string; expires: string | null }
  | { ok: false; code: string; message: string };

/**
 * `policy verify SIGNED --trust PUBKEY|DIR`: a directory names each authority after its key file
 * (`owner.pub` → owner); a single key is trusted under the authority the policy names.
 */
export async function policyVerify(signed: string, opts: { trust: string; now?: number }): Promise<PolicyVerifyResult> {
  const bytes = await readFile(signed).catch((cause) => {
    throw new EdgewardenError('EW_POLICY_IO', `cannot read ${signed}`, { cause });
  });
  let env: Envelope;
  try {
    env = decodePolicyEnvelope(bytes);
  } catch (err) {
    return { ok: false, code: 'EW_POLICY_MALFORMED', message: (err as Error).message };
  }
  let trust: TrustConfig;
  if ((await stat(opts.trust).catch(() => undefined))?.isDirectory()) {
    trust = await trustFromDir(opts.trust);
  } else {
    let claimed = 'authority';
    try {
      claimed = decodePolicy(env.payload).authority;
    } catch {
      // verification below reports it as malformed
    }
    trust = new TrustConfig([{ name: claimed, key: await readFile(opts.trust, 'utf8') }]);
  }
  const v = verifyPolicyEnvelope(env, trust, { now: opts.now ?? Date.now() });
  if (!v.ok) return { ok: false, code: v.code, message: v.message };
  return {
    ok: true,
    authority: v.body.authority,
    version: v.body.version,
    signers: v.signers,
    digest: Buffer.from(v.payloadDigest).toString('hex'),
    expires: v.body.expiresUnixMs === 0 ? null : new Date(v.body.expiresUnixMs).toISOString(),
  };
}

async function trustFromDir(dir: string): Promise<TrustConfig> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.pub') || f.endsWith('.pem')).sort();
  const inputs = [];
  for (const f of files) inputs.push({ name: basename(f, extname(f)), key: await readFile(join(dir, f), 'utf8') });
  return new TrustConfig(inputs);
}

/** What `policy show` prints without --effective: the policies and authorities of a home. */
export interface PolicyShowResult {
  readonly home: string;
  readonly authorities: readonly { name: string; role: string; keyId: string }[];
  readonly thresholds: Readonly<Record<string, number>>;
  readonly policies: PolicyExplanation['policies'];
  readonly refusals: readonly string[];
}

/** `policy show [--home] [--effective]`: the applied policies, or the effective policy explained. */
export async function policyShow(opts: {
  home: string;
  effective?: boolean;
  now?: number;
}): Promise<PolicyShowResult | PolicyExplanation> {
  const mgr = await PolicyManager.open(opts.home, {
    clock: { now: () => opts.now ?? Date.now(), monotonicNs: () => process.hrtime.bigint() },
  });
  const explanation = explainPolicy(mgr.effective);
  if (opts.effective) return explanation;
  return {
    home: opts.home,
    authorities: mgr.trust.authorities.map((a) => ({
      name: a.name,
      role: a.role,
      keyId: Buffer.from(a.keyId).toString('hex'),
    })),
    thresholds: mgr.trust.thresholds,
    policies: explanation.policies,
    refusals: mgr.refusals.map((r) => `${r.code}: ${r.message} (${r.source})`),
  };
}

/** `policy apply SIGNED [--home]`: verifies and installs into the device home. */
export async function policyApply(
  signed: string,
  opts: { home: string; now?: number },
): Promise<
  | { ok: true; authority: string; version: number; unchanged: boolean; digest: string }
  | { ok: false; code: string; message: string }
> {
  const mgr = await PolicyManager.open(opts.home, {
    clock: { now: () => opts.now ?? Date.now(), monotonicNs: () => process.hrtime.bigint() },
  });
  if (mgr.trust.size === 0) {
    throw new EdgewardenError(
      'EW_POLICY_TRUST',
      `no trusted authority in ${join(opts.home, 'policy', 'authorities')}; copy the authority's NAME.pub there`,
    );
  }
  const r = await mgr.applyFile(signed);
  if (!r.ok) return { ok: false, code: r.refusal.code, message: r.refusal.message };
  return {
    ok: true,
    authority: r.authority,
    version: r.version,
    unchanged: r.unchanged,
    digest: Buffer.from(r.effective.digest).toString('hex'),
  };
}

function formatShow(r: PolicyShowResult): string {
  const lines = [`home ${r.home}`];
  if (r.authorities.length === 0) lines.push('no trusted authorities (policy/authorities/*.pub)');
  for (const a of r.authorities) lines.push(`authority ${a.name} (${a.role}) ${a.keyId.slice(0, 16)}…`);
  const t = Object.entries(r.thresholds).filter(([, k]) => k > 1);
  if (t.length > 0) lines.push(`thresholds: ${t.map(([s, k]) => `${s} ${k} of ${r.authorities.length}`).join(', ')}`);
  if (r.policies.length === 0) lines.push('no policy applied');
  for (const p of r.policies) {
    lines.push(
      `policy ${p.authority} v${p.version}${p.expires ? ` until ${p.expires}` : ''} ${p.digest.slice(0, 16)}…`,
    );
  }
  for (const x of r.refusals) lines.push(`refused: ${x}`);
  return lines.join('\n');
}

/** Registers `edgewarden policy`. */
export function registerPolicy(program: Command): void {
  const policy = program
    .command('policy')
    .description('signed policies: what the device may run and what may leave it');
  policy
    .command('init')
    .description('print a commented policy template')
    .option('--json', 'machine output')
    .action(
      action((opts: { json?: boolean }) => {
        if (opts.json) emit(true, { template: policyInit() }, '');
        else process.stdout.write(policyInit());
        return EXIT.ok;
      }),
    );
  policy
    .command('sign')
    .description('sign a YAML policy (or add a signature to a signed one)')
    .argument('<file>', 'policy YAML, or a signed policy to co-sign')
    .requiredOption('--key <key>', 'authority private key (PKCS#8 PEM, mode 0600)')
    .requiredOption('--out <signed>', 'where to write the signed policy (DSSE JSON)')
    .option('--json', 'machine output')
    .action(
      action(async (file: string, opts: { key: string; out: string; json?: boolean }) => {
        const r = await policySign(file, opts);
        emit(opts.json, r, `signed ${r.authority} v${r.version} (${r.signatures} signature(s)) → ${r.out}`);
        return EXIT.ok;
      }),
    );
  policy
    .command('verify')
    .description('verify a signed policy against trusted authority keys')
    .argument('<signed>', 'signed policy')
    .requiredOption('--trust <path>', 'authority public key, or a directory of NAME.pub files')
    .option('--json', 'machine output')
    .action(
      action(async (signed: string, opts: { trust: string; json?: boolean }) => {
        const r = await policyVerify(signed, opts);
        if (r.ok)
          emit(
            opts.json,
            r,
            `${paint(process.stdout, 'green', 'valid')}: ${r.authority} v${r.version} signed by ${r.signers.join(', ')}`,
          );
        else {
          emit(opts.json, r, `${paint(process.stdout, 'red', 'invalid')}: ${r.code}: ${r.message}`);
          process.stderr.write(`${r.code}\n`);
        }
        return r.ok ? EXIT.ok : EXIT.failedCheck;
      }),
    );
  policy
    .command('show')
    .description('show applied policies, or the effective policy and which authority set each rule')
    .option('--home <dir>', 'device home')
    .option('--effective', 'the composed effective policy')
    .option('--json', 'machine output')
    .action(
      action(async (opts: { home?: string; effective?: boolean; json?: boolean }) => {
        const r = await policyShow({ home: resolveHome(opts.home), effective: opts.effective === true });
        emit(opts.json, r, () =>
          opts.effective ? formatExplanation(r as PolicyExplanation) : formatShow(r as PolicyShowResult),
        );
        return EXIT.ok;
      }),
    );
  policy
    .command('apply')
    .description('verify a signed policy and install it into the device home')
    .argument('<signed>', 'signed policy')
    .option('--home <dir>', 'device home')
    .option('--json', 'machine output')
    .action(
      action(async (signed: string, opts: { home?: string; json?: boolean }) => {
        const r = await policyApply(signed, { home: resolveHome(opts.home) });
        if (r.ok) {
          emit(
            opts.json,
            r,
            `applied ${r.authority} v${r.version}${r.unchanged ? ' (already in force)' : ''}; effective ${r.digest.slice(0, 16)}…`,
          );
        } else {
          emit(opts.json, r, `${paint(process.stdout, 'red', 'refused')}: ${r.code}: ${r.message}`);
          process.stderr.write(`${r.code}\n`);
        }
        return r.ok ? EXIT.ok : EXIT.failedCheck;
      }),
    );
}
