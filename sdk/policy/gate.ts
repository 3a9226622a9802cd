import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TensorMap, TensorView } from '../engine/tensor';
import { keyIdOf } from '../provenance/keys';
import type { EffectivePolicy } from './compose';
import { MODEL_SIGNATURE_FILE, verifyModelFolder } from './model-signing';
import { type MergedOutputRule, mergeOutputRules, type RuleSource } from './rules';

/** The verdict of the gate on one model load. */
export interface LoadDecision {
  /** false: the model must not run (refuse mode). */
  readonly allowed: boolean;
  /** Set when the model runs but makes the device NON_COMPLIANT (flag mode), or why it was refused. */
  readonly reason?: string;
  readonly ruleId?: string;
  /** The policy code behind `reason` (e.g. EW_POLICY_MODEL_NOT_ALLOWED). */
  readonly code?: string;
  /** The authority whose rule decided. */
  readonly authority?: string;
}

/** The verdict of the gate on one inference's outputs. */
export interface OutputDecision {
  readonly outcome: 'allowed' | 'blocked' | 'redacted';
  readonly ruleId: string;
  readonly authority: string;
  /** What the application receives: the outputs, redacted outputs, or nothing when blocked. */
  readonly outputs: TensorMap | undefined;
}

/**
 * Sits between the engine and the application. The warden asks it at model load and after every
 * inference; it must be synchronous and cheap (target ≤ 2 µs per inference for 100 rules).
 */
export interface InferenceGate {
  /** SHA-256 of the effective policy (empty when none), carried in every record. */
  readonly policyDigest: Uint8Array;
  checkLoad(model: { name: string; digest: Uint8Array; dir: string }): LoadDecision;
  checkOutputs(model: { name: string; digest: Uint8Array }, outputs: TensorMap, nowMs: number): OutputDecision;
}

/** A gate that allows everything: the default when no policy is installed. */
export const OPEN_GATE: InferenceGate = {
  policyDigest: new Uint8Array(0),
  checkLoad: () => ({ allowed: true }),
  checkOutputs: (_model, outputs) => ({ outcome: 'allowed', ruleId: '', authority: '', outputs }),
};

/** Options of a {@link PolicyGate}. */
export interface PolicyGateOptions {
  /**
   * Digest (`sha256:<hex>`) → keyids (hex) of publishers whose model signature verified. Shared
   * between successive gates so a model admitted by signature stays admitted after a policy swap.
   */
  readonly verifiedModels?: Map<string, ReadonlySet<string>>;
  /** Name of the signature file in a model folder (default model.sig). */
  readonly signatureFile?: string;
}

// One compiled check on one output: everything precomputed at construction.
class OutputCheck {
  readonly blockedMask: Uint8Array | null;
  readonly blockedSrc: (MergedOutputRule['rules'][number] | undefined)[];
  readonly minConf: number;
  readonly needsScan: boolean;
  readonly rated: boolean;
  readonly redact: boolean;
  readonly kill: RuleSource | undefined;
  private tokens: number;
  private last = Number.NaN;
  private readonly capacity: number;
  private readonly perMs: number;

  constructor(
    readonly output: string,
    readonly merged: MergedOutputRule,
  ) {
    const max = merged.blocked.size === 0 ? -1 : Math.max(...merged.blocked.keys());
    this.blockedMask = max < 0 ? null : new Uint8Array(max + 1);
    this.blockedSrc = [];
    for (const [i, src] of merged.blocked) {
      this.blockedMask![i] = 1;
      this.blockedSrc[i] = src;
    }
    this.minConf = merged.minConfidence?.value ?? Number.NEGATIVE_INFINITY;
    this.needsScan = this.blockedMask !== null || merged.minConfidence !== undefined;
    const r = merged.rate;
    this.capacity = r ? (r.perMinute === 0 ? 0 : r.burst) : 0;
    this.perMs = r ? r.perMinute / 60_000 : 0;
    this.tokens = this.capacity;
    this.rated = r !== undefined;
    this.redact = merged.redact !== undefined;
    this.kill = merged.kill;
  }

  /** The source of the rule that blocks this tensor, or undefined. */
  scan(t: TensorView): { ruleId: string; authority: string } | undefined {
    const data = t.data;
    if (typeof data[0] === 'string' || typeof data[0] === 'bigint') {
      // Classes and confidences cannot be read from these: fail closed.
      return this.merged.minConfidence ?? this.merged.blocked.values().next().value;
    }
    const d = data as ArrayLike<number>;
    const n = d.length;
    const dims = t.dims;
    const c = dims.length === 0 ? 1 : dims[dims.length - 1]!;
    if (c <= 0 || n === 0) return undefined;
    const mask = this.blockedMask;
    for (let row = 0; row < n; row += c) {
      let best = d[row]!;
      let arg = 0;
      const end = Math.min(row + c, n);
      for (let i = row + 1; i < end; i++) {
        const v = d[i]!;
        if (v > best) {
          best = v;
          arg = i - row;
        }
      }
      if (mask !== null && arg < mask.length && mask[arg] === 1) return this.blockedSrc[arg];
      // NaN never clears a floor.
      if (!(best >= this.minConf)) return this.merged.minConfidence;
    }
    return undefined;
  }

  hasToken(nowMs: number): boolean {
    if (Number.isNaN(this.last)) this.last = nowMs;
    else if (nowMs > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + (nowMs - this.last) * this.perMs);
      this.last = nowMs;
    }
    return this.tokens >= 1;
  }

  take(): void {
    this.tokens -= 1;
  }
}

interface ModelChecks {
  readonly kill?: { ruleId: string; authority: string };
  readonly specific: readonly OutputCheck[];
  /** Reused on every inference (the gate is synchronous): the rate-limited checks that applied. */
  readonly scratch: OutputCheck[];
  readonly specificNames: ReadonlySet<string>;
  readonly wildcard: OutputCheck | null;
  readonly empty: boolean;
}

interface LoadState {
  readonly digest: Uint8Array;
  readonly decision: LoadDecision;
}

const hexOf = (d: Uint8Array) => `sha256:${Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex')}`;
const MAX_CACHED_MODELS = 1024;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The enforcement gate built from an effective policy. Model load: the digest must be on every
 * constraining authority's allowlist or the model folder must carry a valid signature by one of
 * its publishers; otherwise refused (EW_POLICY_MODEL_NOT_ALLOWED) or, in flag mode, allowed with
 * the reason that makes the device NON_COMPLIANT. A tampered signed folder is always refused.
 * Outputs: kill switch, blocked classes (argmax of the last dimension), confidence floor, rate
 * limit (token bucket on the caller's clock), then redaction. All rules are merged and compiled
 * per model at construction, so an inference costs a map lookup and one pass over each checked
 * output. An unlisted model in refuse mode is blocked here too, even if its load was never checked.
 */
export class PolicyGate implements InferenceGate {
  readonly policyDigest: Uint8Array;
  private readonly checks = new Map<string, ModelChecks>();
  private readonly loads = new Map<string, LoadState>();
  private readonly verified: Map<string, ReadonlySet<string>>;
  private readonly signatureFile: string;
  private readonly constrained: boolean;

  constructor(
    readonly effective: EffectivePolicy,
    options: PolicyGateOptions = {},
  ) {
    this.policyDigest = effective.digest;
    this.verified = options.verifiedModels ?? new Map();
    this.signatureFile = options.signatureFile ?? MODEL_SIGNATURE_FILE;
    this.constrained = effective.models !== undefined;
    const named = new Set(effective.outputRules.map((r) => r.rule.model).filter((m) => m !== '*'));
    for (const m of named) this.checks.set(m, this.compile(m));
  }

  private compile(model: string): ModelChecks {
    const rules = this.effective.outputRules.filter((r) => r.rule.model === '*' || r.rule.model === model);
    const killRule = rules.find((r) => r.rule.kill && r.rule.output === '*');
    const names = [...new Set(rules.map((r) => r.rule.output).filter((o) => o !== '*'))];
    const specific = names.map((o) => new OutputCheck(o, mergeOutputRules(rules, model, o)));
    const wild = rules.some((r) => r.rule.output === '*')
      ? new OutputCheck('*', mergeOutputRules(rules, model, '*'))
      : null;
    return {
      ...(killRule ? { kill: { ruleId: killRule.rule.id, authority: killRule.authority } } : {}),
      specific,
      scratch: new Array<OutputCheck>(specific.length + 1),
      specificNames: new Set(names),
      wildcard: wild,
      empty: rules.length === 0,
    };
  }

  private checksFor(name: string): ModelChecks {
    let c = this.checks.get(name);
    if (c === undefined) {
      c = this.compile(name);
      if (this.checks.size < MAX_CACHED_MODELS) this.checks.set(name, c);
    }
    return c;
  }

  checkLoad(model: { name: string; digest: Uint8Array; dir: string }): LoadDecision {
    const decision = this.decide(model, model.dir);
    if (this.loads.size < MAX_CACHED_MODELS || this.loads.has(model.name)) {
      this.loads.set(model.name, { digest: model.digest, decision });
    }
    return decision;
  }

  // The load verdict; `dir` undefined when only the digest is known (outputs of an unchecked load).
  private decide(model: { name: string; digest: Uint8Array }, dir: string | undefined): LoadDecision {
    const models = this.effective.models;
    if (!models) return { allowed: true };
    const digest = hexOf(model.digest);
    let publishers = this.verified.get(digest);
    const needsPublisher = models.constraints.filter((c) => !c.digests.has(digest));
    if (needsPublisher.length === 0) return { allowed: true, ruleId: 'models.allow' };
    if (dir !== undefined && needsPublisher.some((c) => c.publishers.length > 0)) {
      if (existsSync(join(dir, this.signatureFile))) {
        const keys = models.constraints.flatMap((c) => c.publishers.map((p) => p.publicKey));
        const v = verifyModelFolder(dir, keys, this.signatureFile);
        if (!v.ok) {
          // A signed folder that no longer matches its signature is tampering: refused in every mode.
          return {
            allowed: false,
            code: v.code,
            reason: `${v.code}: model ${model.name} in ${dir}: ${v.message}`,
            ruleId: 'models.publishers',
          };
        }
        publishers = new Set(v.publisherKeyIds);
        this.verified.set(digest, publishers);
      }
    }
    const refusing = needsPublisher.filter((c) => !c.publishers.some((p) => publishers?.has(keyIdHex(p.publicKey))));
    if (refusing.length === 0) return { allowed: true, ruleId: 'models.publishers' };
    const authorities = refusing.map((c) => c.authority);
    const reason = `EW_POLICY_MODEL_NOT_ALLOWED: model ${model.name} (${digest}) is not on the allowlist of ${authorities.join(', ')}`;
    return {
      allowed: models.unlisted.value === 'flag',
      code: 'EW_POLICY_MODEL_NOT_ALLOWED',
      reason,
      ruleId: 'models.unlisted',
      authority: models.unlisted.setBy.join(','),
    };
  }

  checkOutputs(model: { name: string; digest: Uint8Array }, outputs: TensorMap, nowMs: number): OutputDecision {
    if (this.constrained) {
      let st = this.loads.get(model.name);
      if (st === undefined || !sameBytes(st.digest, model.digest)) {
        st = { digest: model.digest, decision: this.decide(model, undefined) };
        if (this.loads.size < MAX_CACHED_MODELS) this.loads.set(model.name, st);
      }
      if (!st.decision.allowed) {
        return {
          outcome: 'blocked',
          ruleId: st.decision.ruleId ?? '',
          authority: st.decision.authority ?? '',
          outputs: undefined,
        };
      }
    }
    const mc = this.checksFor(model.name);
    if (mc.empty) return { outcome: 'allowed', ruleId: '', authority: '', outputs };
    if (mc.kill)
      return { outcome: 'blocked', ruleId: mc.kill.ruleId, authority: mc.kill.authority, outputs: undefined };
    // Pass 1: kill switches, classes and floors; remember what is rate-limited or redacted.
    const rated = mc.scratch;
    let nRated = 0;
    let redacting = false;
    const specific = mc.specific;
    for (let i = 0; i < specific.length; i++) {
      const c = specific[i]!;
      const t = outputs[c.output];
      if (t === undefined) continue;
      const hit = c.kill ?? (c.needsScan ? c.scan(t) : undefined);
      if (hit !== undefined)
        return { outcome: 'blocked', ruleId: hit.ruleId, authority: hit.authority, outputs: undefined };
      if (c.rated) rated[nRated++] = c;
      if (c.redact) redacting = true;
    }
    const w = mc.wildcard;
    let wildSeen = false;
    if (w !== null) {
      for (const name in outputs) {
        if (mc.specificNames.has(name)) continue;
        wildSeen = true;
        const hit = w.kill ?? (w.needsScan ? w.scan(outputs[name]!) : undefined);
        if (hit !== undefined)
          return { outcome: 'blocked', ruleId: hit.ruleId, authority: hit.authority, outputs: undefined };
      }
      if (wildSeen) {
        if (w.rated) rated[nRated++] = w;
        if (w.redact) redacting = true;
      }
    }
    // Pass 2: every bucket must have a token before any is spent.
    for (let i = 0; i < nRated; i++) {
      const c = rated[i]!;
      if (!c.hasToken(nowMs)) {
        const r = c.merged.rate!;
        return { outcome: 'blocked', ruleId: r.ruleId, authority: r.authority, outputs: undefined };
      }
    }
    for (let i = 0; i < nRated; i++) rated[i]!.take();
    if (!redacting) return { outcome: 'allowed', ruleId: '', authority: '', outputs };
    return this.redact(mc, outputs);
  }

  // Rare path: drop the redacted outputs, deliver the rest.
  private redact(mc: ModelChecks, outputs: TensorMap): OutputDecision {
    const kept: TensorMap = {};
    let src: RuleSource | undefined;
    for (const name in outputs) {
      const c = mc.specificNames.has(name) ? mc.specific.find((x) => x.output === name) : mc.wildcard;
      if (c?.redact) src ??= c.merged.redact;
      else kept[name] = outputs[name]!;
    }
    return { outcome: 'redacted', ruleId: src?.ruleId ?? '', authority: src?.authority ?? '', outputs: kept };
  }
}

const keyIdCache = new WeakMap<Uint8Array, string>();
// Hex keyid of a raw publisher key (memoised: the gate compares them at load only).
function keyIdHex(publicKey: Uint8Array): string {
  let v = keyIdCache.get(publicKey);
  if (v === undefined) {
    v = Buffer.from(keyIdOf(publicKey)).toString('hex');
    keyIdCache.set(publicKey, v);
  }
  return v;
}
