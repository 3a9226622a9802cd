import { createHash } from 'node:crypto';
import type { Durability, OutputRule, ProvenanceMode, Share, UnlistedMode } from './canonical';
import type { AuthorityRole, SectionName, TrustConfig } from './trust';
import type { VerifiedPolicy } from './verify';

/** A composed value and the authorities that set it (several when they agree). */
export interface Setting<T> {
  readonly value: T;
  readonly setBy: readonly string[];
}

/** An output rule and the authority whose policy carries it. */
export interface AttributedRule {
  readonly rule: OutputRule;
  readonly authority: string;
}

/** A policy that takes part in the effective policy. */
export interface ContributingPolicy {
  readonly authority: string;
  readonly role: AuthorityRole | 'unknown';
  readonly version: number;
  readonly expiresUnixMs: number;
  /** SHA-256 of the signed payload, hex. */
  readonly digest: string;
  readonly signers: readonly string[];
  /** Sections that took effect (a section below its k-of-n threshold does not). */
  readonly sections: readonly SectionName[];
}

/** The allowlist side of the effective policy. */
export interface EffectiveModels {
  /** refuse when any authority says refuse. */
  readonly unlisted: Setting<UnlistedMode>;
  /** A model is listed when every one of these accepts it (by digest or by a trusted publisher). */
  readonly constraints: readonly {
    readonly authority: string;
    readonly digests: ReadonlySet<string>;
    readonly publishers: readonly { name: string; publicKey: Uint8Array }[];
  }[];
  /** Digests on every authority's allowlist (the intersection), for display. */
  readonly allow: readonly { name: string; digest: string; license: string; setBy: readonly string[] }[];
}

/** The most restrictive composition of all verified policies in force on a device. */
export interface EffectivePolicy {
  /** SHA-256 over the sorted payload digests of the contributing policies; empty when none. */
  readonly digest: Uint8Array;
  readonly policies: readonly ContributingPolicy[];
  readonly models?: EffectiveModels;
  readonly outputRules: readonly AttributedRule[];
  readonly provenance: {
    readonly mode?: Setting<ProvenanceMode>;
    readonly checkpointEvery?: Setting<number>;
    readonly checkpointMs?: Setting<number>;
    readonly salted?: Setting<boolean>;
  };
  readonly audit: { readonly durability?: Setting<Durability>; readonly retainDays?: Setting<number> };
  readonly telemetry: {
    readonly heartbeatSeconds?: Setting<number>;
    readonly brokers: readonly { url: string; share: Setting<Share> }[];
  };
  /** Why a policy or a section was left out (expired, below threshold), with its code. */
  readonly notes: readonly string[];
}

/** The effective policy when no policy is installed: everything open. */
export const EMPTY_EFFECTIVE_POLICY: EffectivePolicy = Object.freeze({
  digest: new Uint8Array(0),
  policies: [],
  outputRules: [],
  provenance: {},
  audit: {},
  telemetry: { brokers: [] },
  notes: [],
});

interface Candidate<T> {
  value: T;
  authority: string;
}

// The strictest candidate (highest rank), with every authority that asked for that value.
function strictest<T>(cands: readonly Candidate<T>[], rank: (v: T) => number): Setting<T> | undefined {
  if (cands.length === 0) return undefined;
  let best = cands[0]!.value;
  for (const c of cands) if (rank(c.value) > rank(best)) best = c.value;
  const setBy = [...new Set(cands.filter((c) => rank(c.value) === rank(best)).map((c) => c.authority))].sort();
  return { value: best, setBy };
}

const RANK = {
  unlisted: (v: UnlistedMode) => (v === 'refuse' ? 1 : 0),
  mode: (v: ProvenanceMode) => (v === 'per-output' ? 1 : 0),
  durability: (v: Durability) => ({ none: 0, group: 1, always: 2 })[v],
  share: (v: Share) => ({ full: 0, summary: 1, none: 2 })[v],
  smaller: (v: number) => -v,
  larger: (v: number) => v,
  truthy: (v: boolean) => (v ? 1 : 0),
};

/**
 * Composes verified policies into the effective policy: allowlists intersect, limits take the
 * strictest value (smaller cadences and rates, larger confidence floors and retention, stronger
 * durability, per-output provenance, less shared with brokers), any `refuse` wins and every output
 * rule of every authority applies. Expired policies and sections below their k-of-n threshold are
 * left out with a note. Every composed value says which authority set it.
 */
export function composePolicies(policies: readonly VerifiedPolicy[], trust: TrustConfig, now: number): EffectivePolicy {
  const notes: string[] = [];
  const contributing: ContributingPolicy[] = [];
  const live: { p: VerifiedPolicy; sections: Set<SectionName> }[] = [];
  for (const p of [...policies].sort((a, b) => (a.body.authority < b.body.authority ? -1 : 1))) {
    const b = p.body;
    if (b.expiresUnixMs !== 0 && b.expiresUnixMs <= now) {
      notes.push(`EW_POLICY_EXPIRED: policy ${b.authority} v${b.version} expired; it no longer applies`);
      continue;
    }
    const present: SectionName[] = [];
    if (b.models) present.push('models');
    if (b.outputs.length > 0) present.push('outputs');
    if (b.provenance) present.push('provenance');
    if (b.audit) present.push('audit');
    if (b.telemetry) present.push('telemetry');
    const sections = new Set<SectionName>();
    for (const s of present) {
      const k = trust.thresholds[s];
      if (p.signers.length >= k) sections.add(s);
      else {
        notes.push(
          `EW_POLICY_THRESHOLD: section ${s} of ${b.authority} v${b.version} has ${p.signers.length} of ${k} required authority signatures; ignored`,
        );
      }
    }
    live.push({ p, sections });
    contributing.push({
      authority: b.authority,
      role: trust.get(b.authority)?.role ?? 'unknown',
      version: b.version,
      expiresUnixMs: b.expiresUnixMs,
      digest: Buffer.from(p.payloadDigest).toString('hex'),
      signers: p.signers,
      sections: [...sections],
    });
  }
  if (live.length === 0) return { ...EMPTY_EFFECTIVE_POLICY, notes };

  const digests = live.map(({ p }) => Buffer.from(p.payloadDigest)).sort(Buffer.compare);
  const digest = new Uint8Array(createHash('sha256').update(Buffer.concat(digests)).digest());
  const withSection = (s: SectionName) => live.filter((l) => l.sections.has(s)).map((l) => l.p.body);

  // models: intersect allowlists; any refuse wins.
  let models: EffectiveModels | undefined;
  const modelPolicies = withSection('models');
  if (modelPolicies.length > 0) {
    const constraints = modelPolicies.map((b) => ({
      authority: b.authority,
      digests: new Set(b.models!.allow.map((a) => a.digest)),
      publishers: b.models!.publishers,
    }));
    const first = modelPolicies[0]!.models!.allow;
    const allow = first
      .filter((a) => constraints.every((c) => c.digests.has(a.digest)))
      .map((a) => ({ ...a, setBy: constraints.map((c) => c.authority) }));
    models = {
      unlisted: strictest(
        modelPolicies.map((b) => ({ value: b.models!.unlisted, authority: b.authority })),
        RANK.unlisted,
      )!,
      constraints,
      allow,
    };
  }

  const outputRules = withSection('outputs').flatMap((b) =>
    b.outputs.map((rule) => ({ rule, authority: b.authority })),
  );

  const pick = <S, T>(
    bodies: readonly S[],
    get: (b: S) => T | undefined,
    who: (b: S) => string,
    rank: (v: T) => number,
  ): Setting<T> | undefined => {
    const cands: Candidate<T>[] = [];
    for (const b of bodies) {
      const v = get(b);
      if (v !== undefined) cands.push({ value: v, authority: who(b) });
    }
    return strictest(cands, rank);
  };
  const who = (b: { authority: string }) => b.authority;
  const opt = <K extends string, T>(k: K, v: T | undefined): { [P in K]?: T } =>
    (v === undefined ? {} : { [k]: v }) as { [P in K]?: T };

  const prov = withSection('provenance');
  const provenance = {
    ...opt(
      'mode',
      pick(prov, (b) => b.provenance!.mode, who, RANK.mode),
    ),
    ...opt(
      'checkpointEvery',
      pick(prov, (b) => b.provenance!.checkpointEvery, who, RANK.smaller),
    ),
    ...opt(
      'checkpointMs',
      pick(prov, (b) => b.provenance!.checkpointMs, who, RANK.smaller),
    ),
    ...opt(
      'salted',
      pick(prov, (b) => b.provenance!.salted, who, RANK.truthy),
    ),
  };
  const aud = withSection('audit');
  const audit = {
    ...opt(
      'durability',
      pick(aud, (b) => b.audit!.durability, who, RANK.durability),
    ),
    // Retention is a minimum an auditor can rely on: the longest wins.
    ...opt(
      'retainDays',
      pick(aud, (b) => b.audit!.retainDays, who, RANK.larger),
    ),
  };
  const tel = withSection('telemetry');
  const urls = [...new Set(tel.flatMap((b) => b.telemetry!.brokers.map((x) => x.url)))].sort();
  const telemetry = {
    ...opt(
      'heartbeatSeconds',
      pick(tel, (b) => b.telemetry!.heartbeatSeconds, who, RANK.smaller),
    ),
    // Every authority's broker is kept; for one broker, the least that may leave the device wins.
    brokers: urls.map((url) => ({
      url,
      share: strictest(
        tel.flatMap((b) =>
          b.telemetry!.brokers.filter((x) => x.url === url).map((x) => ({ value: x.share, authority: b.authority })),
        ),
        RANK.share,
      )!,
    })),
  };
  return {
    digest,
    policies: contributing,
    ...(models ? { models } : {}),
    outputRules,
    provenance,
    audit,
    telemetry,
    notes,
  };
}
