import type { BackendSession, TensorMeta } from '../engine/backend';
import type { LoadedModel } from '../engine/load';
import type { TensorInput, TensorMap } from '../engine/tensor';
import { validateInputs } from '../engine/validate';
import { EdgewardenError } from '../errors';
import type { InferenceGate, LoadDecision } from '../policy/gate';
import type { ProvenanceBundle } from '../provenance/bundle';
import type { Clock } from '../util/clock';
import type { ProvenancePipeline } from './pipeline';
import { ModelCounters } from './stats';
import type { InferResult, WardenModel } from './types';

/** What a model needs from its warden, read at each inference (so a new gate applies between inferences). */
export interface ModelHost {
  readonly gate: InferenceGate;
  readonly clock: Clock;
  readonly pipeline: ProvenancePipeline;
  readonly labels: Record<string, string>;
  readonly runtimeVersion: string;
  readonly closed: boolean;
}

/** A loaded model under the warden's gate and provenance. */
export class GuardedModel implements WardenModel {
  readonly name: string;
  readonly digest: Uint8Array;
  readonly path: string;
  readonly executionProvider: string;
  readonly fallbackReasons: readonly string[];
  readonly inputs: readonly TensorMeta[];
  readonly outputs: readonly TensorMeta[];
  readonly counters: ModelCounters;
  private decision: LoadDecision;
  private readonly session: BackendSession;
  private readonly id: { name: string; digest: Uint8Array };

  constructor(
    loaded: LoadedModel,
    decision: LoadDecision,
    private readonly host: ModelHost,
  ) {
    this.name = loaded.name;
    this.digest = loaded.digest;
    this.path = loaded.path;
    this.executionProvider = loaded.executionProvider;
    this.fallbackReasons = loaded.fallbackReasons;
    this.inputs = loaded.inputs;
    this.outputs = loaded.outputs;
    this.session = loaded.session;
    this.decision = decision;
    this.id = { name: this.name, digest: this.digest };
    this.counters = new ModelCounters(this.name, this.digest, this.executionProvider);
  }

  get loadDecision(): LoadDecision {
    return this.decision;
  }

  /** Re-asks a (new) gate whether this model may run. */
  recheck(gate: InferenceGate, dir: string): void {
    this.decision = gate.checkLoad({ name: this.name, digest: this.digest, dir });
  }

  async infer(inputs: Record<string, TensorInput>, opts?: { labels?: Record<string, string> }): Promise<InferResult> {
    const host = this.host;
    if (host.closed) throw new EdgewardenError('EW_WARDEN_CLOSED', `model ${this.name}: the warden is closed`);
    const pipeline = host.pipeline;
    const broken = pipeline.error;
    if (broken) {
      throw new EdgewardenError('EW_WARDEN_PIPELINE', `model ${this.name} will not run: ${broken.message}`, {
        cause: broken,
      });
    }
    if (!this.decision.allowed) {
      throw new EdgewardenError(
        'EW_WARDEN_MODEL_REFUSED',
        `policy refuses model ${this.name}: ${this.decision.reason ?? ''}`,
        {
          details: { model: this.name, reason: this.decision.reason, ruleId: this.decision.ruleId },
        },
      );
    }
    if (pipeline.congested) await pipeline.room();
    const t0 = performance.now();
    let feeds: TensorMap;
    let raw: TensorMap;
    try {
      feeds = validateInputs(this.inputs, inputs);
      raw = await this.session.run(feeds);
    } catch (err) {
      this.counters.errors++;
      throw err;
    }
    // Closed or broken while the model ran: no provenance can follow, so no outputs either.
    if (host.closed)
      throw new EdgewardenError('EW_WARDEN_CLOSED', `model ${this.name}: the warden closed during the inference`);
    // Re-read after the await (TypeScript would keep the narrowing from before it).
    const failed = (pipeline as { readonly error: Error | undefined }).error;
    if (failed)
      throw new EdgewardenError('EW_WARDEN_PIPELINE', `model ${this.name}: ${failed.message}`, { cause: failed });
    // The gate is read once per inference: setGate() takes effect between inferences, never inside one.
    const gate = host.gate;
    const clock = host.clock;
    const now = clock.now();
    const monotonicNs = clock.monotonicNs();
    let d: ReturnType<InferenceGate['checkOutputs']>;
    try {
      d = gate.checkOutputs(this.id, raw, now);
    } catch (err) {
      this.counters.errors++;
      throw err;
    }
    const outputs: TensorMap = d.outcome === 'blocked' ? {} : (d.outputs ?? raw);
    const c = this.counters;
    c.inferences++;
    if (d.outcome === 'blocked') c.blocked++;
    const decision = { outcome: d.outcome, ruleId: d.ruleId, authority: d.authority };
    const provenance: Promise<ProvenanceBundle> = pipeline.submit({
      modelName: this.name,
      modelDigest: this.digest,
      executionProvider: this.executionProvider,
      runtimeVersion: host.runtimeVersion,
      policyDigest: gate.policyDigest,
      decision,
      timeUnixMs: now,
      monotonicNs,
      labels: opts?.labels ? { ...host.labels, ...opts.labels } : host.labels,
      // Copied inside submit(): the application may reuse its buffers as soon as infer() returns.
      inputs: feeds,
      outputs,
    });
    // An application that ignores the bundle does not crash the process if it fails: the pipeline
    // marks a failed bundle handled when it fails.
    c.latency.record((performance.now() - t0) * 1000);
    return { outputs, decision, provenance };
  }

  /** Releases the runtime session. */
  release(): Promise<void> {
    return this.session.release();
  }
}
