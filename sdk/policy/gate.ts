import type { TensorMap } from '../engine/tensor';

/** The verdict of the gate on one model load. */
export interface LoadDecision {
  /** false: the model must not run (refuse mode). */
  readonly allowed: boolean;
  /** Set when the model runs but makes the device NON_COMPLIANT (flag mode), or why it was refused. */
  readonly reason?: string;
  readonly ruleId?: string;
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
