import type { KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgewardenError, isEdgewardenError } from '../errors';
import { envelopeToJson } from '../provenance/dsse';
import { rawPublicKey, toPublicKey } from '../provenance/keys';
import { type Clock, SYSTEM_CLOCK } from '../util/clock';
import type { PolicyCode } from './codes';
import { type ComplianceStatus, computeCompliance } from './compliance';
import { composePolicies, type EffectivePolicy, EMPTY_EFFECTIVE_POLICY } from './compose';
import { type InferenceGate, type LoadDecision, PolicyGate, type PolicyGateOptions } from './gate';
import { type AuthorityInput, type AuthorityRole, TrustConfig, writeTrustRole } from './trust';
import { decodePolicyEnvelope, type VerifiedPolicy, verifyPolicyEnvelope } from './verify';

/** A policy the device refused; the previous effective policy stayed in force. */
export interface PolicyRefusal {
  readonly code: PolicyCode;
  readonly message: string;
  /** Where it came from: a file path or an MQTT topic. */
  readonly source: string;
  readonly authority?: string;
  readonly version?: number;
  readonly timeUnixMs: number;
}

/** The outcome of applying one signed policy. */
export type ApplyResult =
  | { ok: true; authority: string; version: number; unchanged: boolean; effective: EffectivePolicy }
  | { ok: false; refusal: PolicyRefusal };

/** Options of a {@link PolicyManager}. */
export interface PolicyManagerOptions {
  readonly trust: TrustConfig;
  /** Device home: applied policies persist in home/policy/applied/, keys in home/policy/authorities/. */
  readonly home?: string;
  /** Only MQTT policies of this fleet are taken (any fleet when absent). */
  readonly fleet?: string;
  readonly clock?: Clock;
  readonly gate?: Omit<PolicyGateOptions, 'verifiedModels'>;
  /** How many refusals are kept for the next heartbeat (oldest dropped first). */
  readonly maxRefusals?: number;
}

const TOPIC = /^ew\/v1\/([A-Za-z0-9_-]{1,64})\/policy\/([A-Za-z0-9_-]{1,64})$/;
const APPLIED_SUFFIX = '.dsse.json';

/**
 * Holds the device's effective policy and applies new signed policies (from a file or from the
 * retained MQTT topic `ew/v1/{fleet}/policy/{authority}`). A policy is applied only after it
 * verifies (signature by a trusted authority, payloadType, well-formed, not expired, version above
 * the last one of its authority); then it is persisted and the effective policy and gate are
 * swapped in one assignment, so an inference sees either the old or the new policy, never a mix.
 * A refused policy leaves the previous one in force and is kept for the next heartbeat.
 */
export class PolicyManager {
  private trustConfig: TrustConfig;
  private readonly clock: Clock;
  private readonly home: string | undefined;
  private readonly fleet: string | undefined;
  private readonly gateOptions: PolicyGateOptions;
  private readonly maxRefusals: number;
  private readonly applied = new Map<string, VerifiedPolicy>();
  /** Highest version seen per authority and its payload digest (hex), for rollback checks. */
  private readonly versions = new Map<string, { version: number; digest: string }>();
  private state: { effective: EffectivePolicy; gate: PolicyGate };
  private readonly pending: PolicyRefusal[] = [];
  private readonly listeners = new Set<(effective: EffectivePolicy, gate: InferenceGate) => void>();
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * A gate that always delegates to the current policy: give it to the warden once and policy
   * swaps take effect between inferences with no further call.
   */
  readonly gate: InferenceGate;

  constructor(options: PolicyManagerOptions) {
    this.trustConfig = options.trust;
    this.clock = options.clock ?? SYSTEM_CLOCK;
    this.home = options.home;
    this.fleet = options.fleet;
    this.maxRefusals = options.maxRefusals ?? 100;
    this.gateOptions = { ...options.gate, verifiedModels: new Map() };
    this.state = { effective: EMPTY_EFFECTIVE_POLICY, gate: new PolicyGate(EMPTY_EFFECTIVE_POLICY, this.gateOptions) };
    const self = this;
    this.gate = {
      get policyDigest() {
        return self.state.gate.policyDigest;
      },
      checkLoad: (m) => self.state.gate.checkLoad(m),
      checkOutputs: (m, o, now) => self.state.gate.checkOutputs(m, o, now),
    };
  }

  /**
   * Opens the policy state of a device home: trusted authorities from `home/policy/authorities/*.pub`
   * (and `home/policy/trust.yaml`), then every applied policy in `home/policy/applied/`, re-verified.
   */
  static async open(home: string, options: Omit<PolicyManagerOptions, 'trust' | 'home'> = {}): Promise<PolicyManager> {
    const trust = await TrustConfig.load(join(home, 'policy'));
    const mgr = new PolicyManager({ ...options, trust, home });
    await mgr.reload();
    return mgr;
  }

  /** The current effective policy. */
  get effective(): EffectivePolicy {
    return this.state.effective;
  }

  /** The gate of the current effective policy (swapped on every change; see also {@link gate}). */
  get currentGate(): PolicyGate {
    return this.state.gate;
  }

  get trust(): TrustConfig {
    return this.trustConfig;
  }

  /** The verified policies in force, by authority. */
  get policies(): ReadonlyMap<string, VerifiedPolicy> {
    return this.applied;
  }

  /** Refusals not yet reported. */
  get refusals(): readonly PolicyRefusal[] {
    return this.pending;
  }

  /** Drains the refusals for a heartbeat, as `CODE: message (source)` lines. */
  takeRefusals(): string[] {
    return this.pending.splice(0).map((r) => `${r.code}: ${r.message} (${r.source})`);
  }

  /** Called after every swap with the new effective policy and gate. Returns an unsubscribe. */
  onChange(listener: (effective: EffectivePolicy, gate: InferenceGate) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The compliance state for a heartbeat, from the loaded models' decisions and policy refusals. */
  compliance(models: readonly { name: string; loadDecision: LoadDecision }[]): ComplianceStatus {
    return computeCompliance({ models, policyRefusals: this.pending, policyNotes: this.state.effective.notes });
  }

  /** Applies a signed policy read from a file (DSSE JSON or binary envelope). */
  async applyFile(path: string): Promise<ApplyResult> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (cause) {
      return this.refuse({ code: 'EW_POLICY_IO', message: `cannot read ${path}: ${(cause as Error).message}` }, path);
    }
    return this.apply(bytes, path);
  }

  /**
   * Applies a policy that arrived on the retained topic `ew/v1/{fleet}/policy/{authority}`. The
   * topic's authority must be the policy's. An empty payload (a cleared retained message) changes
   * nothing: only a newer signed version replaces a policy.
   */
  async applyMqtt(topic: string, payload: Uint8Array): Promise<ApplyResult> {
    const m = TOPIC.exec(topic);
    if (!m) return this.refuse({ code: 'EW_POLICY_MALFORMED', message: `not a policy topic: ${topic}` }, topic);
    const [, fleet, authority] = m as unknown as [string, string, string];
    if (this.fleet !== undefined && fleet !== this.fleet) {
      return this.refuse(
        { code: 'EW_POLICY_AUTHORITY', message: `policy for fleet ${fleet}, device is in ${this.fleet}` },
        topic,
      );
    }
    if (payload.length === 0) {
      const v = this.applied.get(authority);
      return { ok: true, authority, version: v?.body.version ?? 0, unchanged: true, effective: this.state.effective };
    }
    return this.apply(payload, topic, authority);
  }

  /** Verifies and applies signed policy bytes. Serialised: one apply at a time. */
  apply(bytes: Uint8Array, source: string, expectedAuthority?: string): Promise<ApplyResult> {
    const run = this.queue.then(() => this.applyNow(bytes, source, expectedAuthority));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(bytes: Uint8Array, source: string, expectedAuthority?: string): Promise<ApplyResult> {
    let env: ReturnType<typeof decodePolicyEnvelope>;
    try {
      env = decodePolicyEnvelope(bytes);
    } catch (err) {
      return this.refuse({ code: 'EW_POLICY_MALFORMED', message: (err as Error).message }, source);
    }
    const now = this.clock.now();
    const v = verifyPolicyEnvelope(env, this.trustConfig, {
      now,
      ...(expectedAuthority !== undefined ? { expectedAuthority } : {}),
    });
    if (!v.ok) return this.refuse(v, source);
    const { authority, version } = v.body;
    const digest = Buffer.from(v.payloadDigest).toString('hex');
    const seen = this.versions.get(authority);
    if (seen && (version < seen.version || (version === seen.version && digest !== seen.digest))) {
      return this.refuse(
        {
          code: 'EW_POLICY_ROLLBACK',
          message: `policy ${authority} v${version} is not above v${seen.version} already applied`,
          authority,
          version,
        },
        source,
      );
    }
    if (seen && version === seen.version) {
      return { ok: true, authority, version, unchanged: true, effective: this.state.effective };
    }
    const next = new Map(this.applied);
    next.set(authority, v);
    const effective = composePolicies([...next.values()], this.trustConfig, now);
    const gate = new PolicyGate(effective, this.gateOptions);
    if (this.home !== undefined) {
      try {
        await this.persist(authority, env);
      } catch (cause) {
        return this.refuse(
          { code: 'EW_POLICY_IO', message: `cannot store policy: ${(cause as Error).message}`, authority, version },
          source,
        );
      }
    }
    this.applied.set(authority, v);
    this.versions.set(authority, { version, digest });
    this.swap(effective, gate);
    return { ok: true, authority, version, unchanged: false, effective };
  }

  /** Recomposes with the clock's time (drops policies that have expired since) and swaps if it changed. */
  refresh(): EffectivePolicy {
    const effective = composePolicies([...this.applied.values()], this.trustConfig, this.clock.now());
    const same =
      Buffer.from(effective.digest).equals(this.state.effective.digest) &&
      effective.notes.join('\n') === this.state.effective.notes.join('\n');
    if (!same) this.swap(effective, new PolicyGate(effective, this.gateOptions));
    return this.state.effective;
  }

  /**
   * Trusts an authority key: writes `home/policy/authorities/NAME.pub` (when a home is set) and
   * rebuilds the trust configuration with the same thresholds.
   */
  async addAuthority(name: string, key: KeyObject | Uint8Array | string, role?: AuthorityRole): Promise<void> {
    const pub = toPublicKey(key);
    const inputs: AuthorityInput[] = this.trustConfig.authorities
      .filter((a) => a.name !== name)
      .map((a) => ({ name: a.name, key: a.key, role: a.role }));
    inputs.push({ name, key: rawPublicKey(pub), ...(role ? { role } : {}) });
    const trust = new TrustConfig(inputs, this.trustConfig.thresholds);
    if (this.home !== undefined) {
      const dir = join(this.home, 'policy', 'authorities');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `${name}.pub`), pub.export({ format: 'pem', type: 'spki' }).toString());
      if (role) await writeTrustRole(join(this.home, 'policy'), name, role);
    }
    this.trustConfig = trust;
  }

  // Re-reads home/policy/applied/: each file is verified again; refusals are recorded.
  private async reload(): Promise<void> {
    if (this.home === undefined) return;
    const dir = join(this.home, 'policy', 'applied');
    let files: string[] = [];
    try {
      files = (await readdir(dir)).filter((f) => f.endsWith(APPLIED_SUFFIX)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new EdgewardenError('EW_POLICY_IO', `cannot read ${dir}`, { cause: err });
    }
    const now = this.clock.now();
    for (const f of files) {
      const path = join(dir, f);
      let v: ReturnType<typeof verifyPolicyEnvelope>;
      try {
        // Expiry is judged by composition (a stored policy that expired still pins its version).
        v = verifyPolicyEnvelope(decodePolicyEnvelope(await readFile(path)), this.trustConfig, { now: 0 });
      } catch (err) {
        this.refuse(
          isEdgewardenError(err)
            ? { code: 'EW_POLICY_MALFORMED', message: err.message }
            : { code: 'EW_POLICY_IO', message: (err as Error).message },
          path,
        );
        continue;
      }
      if (!v.ok) {
        this.refuse(v, path);
        continue;
      }
      this.applied.set(v.body.authority, v);
      this.versions.set(v.body.authority, {
        version: v.body.version,
        digest: Buffer.from(v.payloadDigest).toString('hex'),
      });
    }
    const effective = composePolicies([...this.applied.values()], this.trustConfig, now);
    this.swap(effective, new PolicyGate(effective, this.gateOptions));
  }

  private async persist(authority: string, env: ReturnType<typeof decodePolicyEnvelope>): Promise<void> {
    const dir = join(this.home!, 'policy', 'applied');
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${authority}${APPLIED_SUFFIX}`);
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, `${JSON.stringify(envelopeToJson(env), null, 2)}\n`);
    await rename(tmp, path);
  }

  private swap(effective: EffectivePolicy, gate: PolicyGate): void {
    this.state = { effective, gate };
    for (const l of this.listeners) l(effective, this.gate);
  }

  private refuse(
    r: { code: PolicyCode; message: string; authority?: string; version?: number },
    source: string,
  ): ApplyResult {
    const refusal: PolicyRefusal = {
      code: r.code,
      message: r.message,
      source,
      ...(r.authority !== undefined ? { authority: r.authority } : {}),
      ...(r.version !== undefined ? { version: r.version } : {}),
      timeUnixMs: this.clock.now(),
    };
    this.pending.push(refusal);
    if (this.pending.length > this.maxRefusals) this.pending.splice(0, this.pending.length - this.maxRefusals);
    return { ok: false, refusal };
  }
}

/** Opens the policy state of a device home (see {@link PolicyManager.open}). */
export function loadPolicyState(
  home: string,
  options: Omit<PolicyManagerOptions, 'trust' | 'home'> = {},
): Promise<PolicyManager> {
  return PolicyManager.open(home, options);
}
