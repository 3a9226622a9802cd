import { keyIdOf } from '../provenance/keys';
import type { EffectivePolicy, Setting } from './compose';
import { mergeOutputRules, type RuleSource } from './rules';

/** One merged output check, as `policy show --effective` prints it. */
export interface OutputExplanation {
  readonly model: string;
  readonly output: string;
  readonly kill?: RuleSource;
  readonly blockedClasses: readonly (RuleSource & { index: number; label?: string })[];
  readonly minConfidence?: RuleSource & { value: number };
  readonly rate?: RuleSource & { perMinute: number; burst: number };
  readonly redact?: RuleSource;
  readonly rules: readonly RuleSource[];
}

/** The effective policy in JSON-safe form, saying which authority set each rule. */
export interface PolicyExplanation {
  /** Hex SHA-256 of the effective policy; empty when none is installed. */
  readonly digest: string;
  readonly policies: readonly {
    authority: string;
    role: string;
    version: number;
    expires: string | null;
    digest: string;
    signers: readonly string[];
    sections: readonly string[];
  }[];
  readonly models: {
    readonly unlisted: Setting<string>;
    readonly constrainedBy: readonly string[];
    readonly allow: readonly { name: string; digest: string; license: string; setBy: readonly string[] }[];
    readonly publishers: readonly { name: string; keyId: string; setBy: string }[];
  } | null;
  readonly outputs: readonly OutputExplanation[];
  readonly provenance: EffectivePolicy['provenance'];
  readonly audit: EffectivePolicy['audit'];
  readonly telemetry: EffectivePolicy['telemetry'];
  readonly notes: readonly string[];
}

/** Explains an effective policy: every composed value with the authority (and rule) that set it. */
export function explainPolicy(effective: EffectivePolicy): PolicyExplanation {
  const m = effective.models;
  const pairs = new Map<string, { model: string; output: string }>();
  for (const { rule } of effective.outputRules) pairs.set(`${rule.model}\u0000${rule.output}`, rule);
  const outputs = [...pairs.values()]
    .sort((a, b) => (a.model === b.model ? (a.output < b.output ? -1 : 1) : a.model < b.model ? -1 : 1))
    .map(({ model, output }): OutputExplanation => {
      const g = mergeOutputRules(effective.outputRules, model, output);
      return {
        model,
        output,
        ...(g.kill ? { kill: g.kill } : {}),
        blockedClasses: [...g.blocked.entries()].sort((a, b) => a[0] - b[0]).map(([index, src]) => ({ index, ...src })),
        ...(g.minConfidence ? { minConfidence: g.minConfidence } : {}),
        ...(g.rate ? { rate: g.rate } : {}),
        ...(g.redact ? { redact: g.redact } : {}),
        rules: g.rules,
      };
    });
  return {
    digest: Buffer.from(effective.digest).toString('hex'),
    policies: effective.policies.map((p) => ({
      authority: p.authority,
      role: p.role,
      version: p.version,
      expires: p.expiresUnixMs === 0 ? null : new Date(p.expiresUnixMs).toISOString(),
      digest: p.digest,
      signers: p.signers,
      sections: p.sections,
    })),
    models: m
      ? {
          unlisted: m.unlisted,
          constrainedBy: m.constraints.map((c) => c.authority),
          allow: m.allow,
          publishers: m.constraints.flatMap((c) =>
            c.publishers.map((p) => ({
              name: p.name,
              keyId: Buffer.from(keyIdOf(p.publicKey)).toString('hex'),
              setBy: c.authority,
            })),
          ),
        }
      : null,
    outputs,
    provenance: effective.provenance,
    audit: effective.audit,
    telemetry: effective.telemetry,
    notes: effective.notes,
  };
}

const by = (s: { setBy: readonly string[] }) => `  (${s.setBy.join(', ')})`;
const src = (s: RuleSource) => `  (${s.authority}: ${s.ruleId})`;

/** Human text for `policy show --effective`. */
export function formatExplanation(e: PolicyExplanation): string {
  const out: string[] = [];
  if (e.policies.length === 0) out.push('no policy in force: every model and output is allowed');
  else {
    out.push(`effective policy ${e.digest}`);
    for (const p of e.policies) {
      out.push(
        `  ${p.authority} (${p.role}) v${p.version}${p.expires ? ` until ${p.expires}` : ''} signed by ${p.signers.join(', ')}; sections: ${p.sections.join(', ') || 'none'}`,
      );
    }
  }
  if (e.models) {
    out.push('models:');
    out.push(`  unlisted: ${e.models.unlisted.value}${by(e.models.unlisted)}`);
    out.push(`  allowlists of: ${e.models.constrainedBy.join(', ')}`);
    for (const a of e.models.allow)
      out.push(`  allow ${a.name} ${a.digest}${a.license ? ` ${a.license}` : ''}${by(a)}`);
    for (const p of e.models.publishers) out.push(`  publisher ${p.name} ${p.keyId.slice(0, 16)}…  (${p.setBy})`);
  }
  if (e.outputs.length > 0) out.push('outputs:');
  for (const o of e.outputs) {
    out.push(`  ${o.model}/${o.output}:`);
    if (o.kill) out.push(`    kill switch${src(o.kill)}`);
    for (const c of o.blockedClasses) out.push(`    block class ${c.label ?? c.index} (#${c.index})${src(c)}`);
    if (o.minConfidence) out.push(`    min confidence ${o.minConfidence.value}${src(o.minConfidence)}`);
    if (o.rate) out.push(`    rate ${o.rate.perMinute}/min, burst ${o.rate.burst}${src(o.rate)}`);
    if (o.redact) out.push(`    redacted${src(o.redact)}`);
  }
  const section = (name: string, s: Record<string, unknown>) => {
    const lines = Object.entries(s)
      .filter(([k]) => k !== 'brokers')
      .map(([k, v]) => `  ${k}: ${(v as Setting<unknown>).value}${by(v as Setting<unknown>)}`);
    if (lines.length > 0) out.push(`${name}:`, ...lines);
  };
  section('provenance', e.provenance);
  section('audit', e.audit);
  section('telemetry', e.telemetry);
  for (const b of e.telemetry.brokers) out.push(`  broker ${b.url}: ${b.share.value}${by(b.share)}`);
  for (const n of e.notes) out.push(`note: ${n}`);
  return out.join('\n');
}
