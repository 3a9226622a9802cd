import { edgewarden } from '../__generated__/messages.js';
import { EdgewardenError } from '../errors';
import { rawPublicKey, toPublicKey } from '../provenance/keys';
import { labelNames, NAME_RE, type PolicyDocument } from './document';

const pb = edgewarden.v1;

/** Unlisted-model handling. */
export type UnlistedMode = 'refuse' | 'flag';
/** Provenance mode. */
export type ProvenanceMode = 'batched' | 'per-output';
/** Audit log durability. */
export type Durability = 'none' | 'group' | 'always';
/** What a broker may see. */
export type Share = 'none' | 'summary' | 'full';

/** One rule on one model output, as decoded from a verified policy. */
export interface OutputRule {
  readonly id: string;
  /** Model name or "*". */
  readonly model: string;
  /** Output name or "*". */
  readonly output: string;
  /** Label map: class index → name. */
  readonly labels: readonly { index: number; name: string }[];
  /** Class indices whose outputs are blocked (argmax over the last dimension). */
  readonly blockedClasses: readonly number[];
  readonly minConfidence?: number;
  readonly ratePerMinute?: number;
  readonly burst?: number;
  readonly redact: boolean;
  readonly kill: boolean;
}

/** The decoded, validated content of one authority's policy. Digests are `sha256:<hex>`. */
export interface PolicyBody {
  readonly authority: string;
  readonly version: number;
  /** 0 = never expires. */
  readonly expiresUnixMs: number;
  readonly models?: {
    readonly unlisted: UnlistedMode;
    readonly allow: readonly { name: string; digest: string; license: string }[];
    readonly publishers: readonly { name: string; publicKey: Uint8Array }[];
  };
  readonly outputs: readonly OutputRule[];
  readonly provenance?: {
    readonly mode?: ProvenanceMode;
    readonly checkpointEvery?: number;
    readonly checkpointMs?: number;
    readonly salted?: boolean;
  };
  readonly audit?: { readonly durability?: Durability; readonly retainDays?: number };
  readonly telemetry?: {
    readonly heartbeatSeconds?: number;
    readonly brokers: readonly { url: string; share: Share }[];
  };
}

const MODES = { batched: pb.ProvenanceSection.Mode.BATCHED, 'per-output': pb.ProvenanceSection.Mode.PER_OUTPUT };
const DURABILITY = {
  none: pb.AuditSection.Durability.NONE,
  group: pb.AuditSection.Durability.GROUP,
  always: pb.AuditSection.Durability.ALWAYS,
};
const SHARE = {
  none: pb.TelemetryBroker.Share.NONE,
  summary: pb.TelemetryBroker.Share.SUMMARY,
  full: pb.TelemetryBroker.Share.FULL,
};

/** Raw 32-byte Ed25519 key from SPKI PEM, 64 hex digits or base64 of the raw key. */
export function parsePublisherKey(text: string): Uint8Array {
  const t = text.trim();
  if (t.startsWith('-----BEGIN')) return rawPublicKey(toPublicKey(t));
  if (/^[0-9a-fA-F]{64}$/.test(t)) return new Uint8Array(Buffer.from(t, 'hex'));
  const b = Buffer.from(t, 'base64');
  if (b.length === 32 && /^[A-Za-z0-9+/]{43}=?$/.test(t)) return new Uint8Array(b);
  throw new EdgewardenError('EW_POLICY_SCHEMA', 'a publisher key is SPKI PEM, 64 hex digits or base64 of 32 bytes');
}

function digestBytes(d: string): Uint8Array {
  return new Uint8Array(Buffer.from(d.slice('sha256:'.length), 'hex'));
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The canonical protobuf form of a validated document. Deterministic: the same document always
 * gives the same message (allowlists and publishers are sorted; rule order is kept, it names rules).
 */
export function documentToPolicy(doc: PolicyDocument): edgewarden.v1.Policy {
  const ids = new Set<string>();
  const outputs = doc.outputs.map((r, i) => {
    const id = r.id ?? `outputs.${i}`;
    if (ids.has(id)) throw new EdgewardenError('EW_POLICY_SCHEMA', `outputs[${i}].id: duplicate rule id ${id}`);
    ids.add(id);
    const names = labelNames(r.labels);
    const labels = [...names.entries()].map(([name, index]) => ({ index, name })).sort((a, b) => a.index - b.index);
    const blocked = [...new Set((r.blockedClasses ?? []).map((c) => (typeof c === 'number' ? c : names.get(c)!)))];
    return pb.OutputRule.create({
      id,
      model: r.model,
      output: r.output,
      labels,
      blockedClasses: blocked.sort((a, b) => a - b),
      ...(r.minConfidence !== undefined ? { minConfidence: r.minConfidence } : {}),
      ...(r.ratePerMinute !== undefined ? { ratePerMinute: r.ratePerMinute } : {}),
      ...(r.burst !== undefined ? { burst: r.burst } : {}),
      redact: r.redact ?? false,
      kill: r.kill ?? false,
    });
  });
  const m = doc.models;
  const p = doc.provenance;
  const a = doc.audit;
  const t = doc.telemetry;
  return pb.Policy.create({
    apiVersion: doc.apiVersion,
    authority: doc.authority,
    version: doc.version,
    expiresUnixMs: doc.expires ? Date.parse(doc.expires) : 0,
    ...(m
      ? {
          models: {
            unlisted: m.unlisted === 'flag' ? pb.ModelsSection.Unlisted.FLAG : pb.ModelsSection.Unlisted.REFUSE,
            allow: [...m.allow]
              .sort((x, y) => byString(x.digest, y.digest) || byString(x.name, y.name))
              .map((x) => ({ name: x.name, digest: digestBytes(x.digest), license: x.license ?? '' })),
            publishers: [...m.publishers]
              .sort((x, y) => byString(x.name, y.name))
              .map((x) => ({ name: x.name, publicKey: parsePublisherKey(x.key) })),
          },
        }
      : {}),
    outputs,
    ...(p
      ? {
          provenance: {
            mode: p.mode ? MODES[p.mode] : 0,
            ...(p.checkpointEvery !== undefined ? { checkpointEvery: p.checkpointEvery } : {}),
            ...(p.checkpointMs !== undefined ? { checkpointMs: p.checkpointMs } : {}),
            ...(p.salted !== undefined ? { salted: p.salted } : {}),
          },
        }
      : {}),
    ...(a
      ? {
          audit: {
            durability: a.durability ? DURABILITY[a.durability] : 0,
            ...(a.retainDays !== undefined ? { retainDays: a.retainDays } : {}),
          },
        }
      : {}),
    ...(t
      ? {
          telemetry: {
            ...(t.heartbeatSeconds !== undefined ? { heartbeatSeconds: t.heartbeatSeconds } : {}),
            brokers: (t.brokers ?? []).map((b) => ({ url: b.url, share: SHARE[b.share] })),
          },
        }
      : {}),
  });
}

/** Canonical bytes of a validated document: what an authority signs. */
export function encodePolicyDocument(doc: PolicyDocument): Uint8Array {
  return pb.Policy.encode(documentToPolicy(doc)).finish();
}

const MAX_RULES = 10_000;
const MAX_ALLOW = 100_000;
const has = (m: object, k: string) => Object.hasOwn(m, k);

/**
 * Decodes canonical policy bytes and validates every field. Anything that is not a well-formed
 * policy throws `EW_POLICY_MALFORMED` (hostile bytes never crash it).
 */
export function decodePolicy(bytes: Uint8Array): PolicyBody {
  let m: edgewarden.v1.Policy;
  try {
    m = pb.Policy.decode(bytes);
  } catch (cause) {
    throw new EdgewardenError('EW_POLICY_MALFORMED', 'policy payload does not decode as a Policy', { cause });
  }
  const bad = (why: string): never => {
    throw new EdgewardenError('EW_POLICY_MALFORMED', `policy payload: ${why}`);
  };
  if (m.apiVersion !== 'edgewarden/v1') bad(`apiVersion ${JSON.stringify(m.apiVersion)}`);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(m.authority)) bad('authority name');
  const version = Number(m.version);
  if (!Number.isSafeInteger(version) || version < 1) bad('version must be ≥ 1');
  const expires = Number(m.expiresUnixMs);
  if (!Number.isSafeInteger(expires) || expires < 0) bad('expiresUnixMs');
  if (m.outputs.length > MAX_RULES) bad('too many output rules');
  // Decoded nested messages are class instances whose defaults sit on the prototype.
  const mm = m.models as edgewarden.v1.ModelsSection | null;
  let models: PolicyBody['models'];
  if (mm) {
    if (mm.allow.length > MAX_ALLOW || mm.publishers.length > 1000) bad('allowlist too long');
    models = {
      unlisted: mm.unlisted === pb.ModelsSection.Unlisted.FLAG ? 'flag' : 'refuse',
      allow: (mm.allow as edgewarden.v1.AllowedModel[]).map((x) => {
        if (x.digest?.length !== 32) bad('an allowed model digest is not 32 bytes');
        if (!NAME_RE.test(x.name)) bad('allowed model name');
        return { name: x.name, digest: `sha256:${Buffer.from(x.digest).toString('hex')}`, license: x.license ?? '' };
      }),
      publishers: (mm.publishers as edgewarden.v1.ModelPublisher[]).map((x) => {
        if (x.publicKey?.length !== 32) bad('a publisher key is not 32 bytes');
        if (!NAME_RE.test(x.name)) bad('publisher name');
        return { name: x.name, publicKey: new Uint8Array(x.publicKey) };
      }),
    };
  }
  const ids = new Set<string>();
  const outputs = (m.outputs as edgewarden.v1.OutputRule[]).map((r): OutputRule => {
    if (!NAME_RE.test(r.id) || ids.has(r.id)) bad(`rule id ${JSON.stringify(r.id)}`);
    ids.add(r.id);
    if (!r.model || !r.output || r.model.length > 128 || r.output.length > 128) bad(`rule ${r.id}: model/output`);
    const conf = has(r, 'minConfidence') ? Number(r.minConfidence) : undefined;
    if (conf !== undefined && !(conf >= 0 && conf <= 1)) bad(`rule ${r.id}: minConfidence`);
    if (r.labels.length > 65536 || r.blockedClasses.length > 65536) bad(`rule ${r.id}: label map too large`);
    const burst = has(r, 'burst') ? r.burst! : undefined;
    if (burst === 0) bad(`rule ${r.id}: burst 0`);
    return {
      id: r.id,
      model: r.model,
      output: r.output,
      labels: (r.labels as edgewarden.v1.LabelEntry[]).map((l) => ({ index: l.index, name: l.name })),
      blockedClasses: r.blockedClasses.filter((c) => c < 65536),
      ...(conf !== undefined ? { minConfidence: conf } : {}),
      ...(has(r, 'ratePerMinute') ? { ratePerMinute: r.ratePerMinute! } : {}),
      ...(burst !== undefined ? { burst } : {}),
      redact: r.redact === true,
      kill: r.kill === true,
    };
  });
  const p = m.provenance as edgewarden.v1.ProvenanceSection | null;
  const a = m.audit as edgewarden.v1.AuditSection | null;
  const t = m.telemetry as edgewarden.v1.TelemetrySection | null;
  const modeOf = (v: number) => (v === 2 ? 'per-output' : v === 1 ? 'batched' : undefined);
  const durOf = (v: number) => (v === 3 ? 'always' : v === 2 ? 'group' : v === 1 ? 'none' : undefined);
  const shareOf = (v: number): Share => (v === 3 ? 'full' : v === 2 ? 'summary' : 'none');
  return {
    authority: m.authority,
    version,
    expiresUnixMs: expires,
    ...(models ? { models } : {}),
    outputs,
    ...(p
      ? {
          provenance: strip({
            mode: modeOf(p.mode),
            checkpointEvery: has(p, 'checkpointEvery') && p.checkpointEvery! > 0 ? p.checkpointEvery! : undefined,
            checkpointMs: has(p, 'checkpointMs') && p.checkpointMs! > 0 ? p.checkpointMs! : undefined,
            salted: has(p, 'salted') ? p.salted! : undefined,
          }),
        }
      : {}),
    ...(a
      ? {
          audit: strip({
            durability: durOf(a.durability),
            retainDays: has(a, 'retainDays') ? a.retainDays! : undefined,
          }),
        }
      : {}),
    ...(t
      ? {
          telemetry: {
            ...strip({
              heartbeatSeconds: has(t, 'heartbeatSeconds') && t.heartbeatSeconds! > 0 ? t.heartbeatSeconds! : undefined,
            }),
            brokers: (t.brokers as edgewarden.v1.TelemetryBroker[]).map((b) => {
              if (!/^mqtts?:\/\/\S+$/.test(b.url)) bad('broker url');
              return { url: b.url, share: shareOf(b.share) };
            }),
          },
        }
      : {}),
  };
}

// Drops undefined properties (exactOptionalPropertyTypes-friendly plain objects).
function strip<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]?: Exclude<T[K], undefined> };
}
