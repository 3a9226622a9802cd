import type { LoadDecision } from './gate';

/** The compliance state a heartbeat carries. */
export type ComplianceState = 'COMPLIANT' | 'DEGRADED' | 'NON_COMPLIANT';

/** A compliance state with the reasons for it. */
export interface ComplianceStatus {
  readonly state: ComplianceState;
  readonly reasons: readonly string[];
}

/** What the compliance state is computed from. */
export interface ComplianceInput {
  /** Every model the device loaded (or tried to), with the gate's load decision. */
  readonly models: readonly { readonly name: string; readonly loadDecision: LoadDecision }[];
  /** Policies refused since the last heartbeat (objects with code and message, or lines). */
  readonly policyRefusals?: readonly ({ code: string; message: string } | string)[];
  /** Notes of the effective policy (expired policies, sections below threshold). */
  readonly policyNotes?: readonly string[];
}

/** The numbers of proto `Compliance.State`. */
export const COMPLIANCE_STATE_NUMBER: Readonly<Record<ComplianceState, number>> = {
  COMPLIANT: 1,
  DEGRADED: 2,
  NON_COMPLIANT: 3,
};

/**
 * The device's compliance state. NON_COMPLIANT while any model runs against the policy (an
 * unlisted model in flag mode): the reason is repeated in every heartbeat for as long as it runs.
 * DEGRADED when the policy held but something needs attention: a model was refused, a policy was
 * refused, expired or lacked its k-of-n signatures. Otherwise COMPLIANT.
 */
export function computeCompliance(input: ComplianceInput): ComplianceStatus {
  const non: string[] = [];
  const degraded: string[] = [];
  for (const m of input.models) {
    const d = m.loadDecision;
    if (d.allowed && d.reason) non.push(`model ${m.name} runs against policy: ${d.reason}`);
    else if (!d.allowed) degraded.push(`model ${m.name} refused: ${d.reason ?? d.code ?? 'by policy'}`);
  }
  for (const r of input.policyRefusals ?? []) {
    degraded.push(typeof r === 'string' ? `policy refused: ${r}` : `policy refused: ${r.code}: ${r.message}`);
  }
  for (const n of input.policyNotes ?? []) degraded.push(n);
  if (non.length > 0) return { state: 'NON_COMPLIANT', reasons: [...non, ...degraded] };
  if (degraded.length > 0) return { state: 'DEGRADED', reasons: degraded };
  return { state: 'COMPLIANT', reasons: [] };
}
