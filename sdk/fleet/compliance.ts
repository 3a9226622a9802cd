import type { DeviceRecord } from './store';

/** The fleet's verdict on a device. `unknown`: nothing to judge yet (no heartbeat, pending, or it shares nothing). */
export type ComplianceState = 'compliant' | 'degraded' | 'non_compliant' | 'unknown';

export interface ComplianceVerdict {
  state: ComplianceState;
  reasons: string[];
}

/** What the fleet requires of its devices. */
export interface FleetPolicy {
  /**
   * Model digests allowed in this fleet (`sha256:<hex>` or bare hex). Absent: any model; the
   * device's own (policy-backed) compliance report decides alone.
   */
  allowedModels?: readonly string[];
}

const RANK: Record<ComplianceState, number> = { compliant: 0, unknown: 1, degraded: 2, non_compliant: 3 };

/** Normalises a digest to `sha256:<lowercase hex>`. */
export function normalizeDigest(d: string): string {
  const hex = d.toLowerCase().replace(/^sha256:/, '');
  return `sha256:${hex}`;
}

/**
 * Evaluates a device against the fleet policy and its own report: the worst of the fleet's model
 * allowlist, the device's reported state, its audit alerts, a rewritten history, refused policies
 * and dropped heartbeats. Pure.
 */
export function evaluateCompliance(device: DeviceRecord, policy: FleetPolicy = {}): ComplianceVerdict {
  const reasons: string[] = [];
  let state: ComplianceState = 'compliant';
  const raise = (s: ComplianceState, reason: string) => {
    if (RANK[s] > RANK[state]) state = s;
    reasons.push(reason);
  };
  if (device.status === 'pending') return { state: 'unknown', reasons: ['device awaits approval (fleet approve)'] };
  if (device.historyRewritten)
    raise('non_compliant', 'audit history rewritten: a checkpoint is inconsistent with an earlier one');
  const hb = device.lastHeartbeat;
  if (!hb) {
    raise('unknown', 'no heartbeat stored yet');
    return { state, reasons };
  }
  if (hb.share === 'none') raise('unknown', 'the device shares no compliance data with this broker');
  const reported = hb.compliance.state;
  if (reported === 'non_compliant')
    raise('non_compliant', `device reports non-compliant${suffix(hb.compliance.reasons)}`);
  else if (reported === 'degraded') raise('degraded', `device reports degraded${suffix(hb.compliance.reasons)}`);
  if (policy.allowedModels && hb.share !== 'none') {
    const allowed = new Set(policy.allowedModels.map(normalizeDigest));
    for (const m of hb.models) {
      if (!allowed.has(normalizeDigest(m.digest))) {
        raise('non_compliant', `model ${m.name || '(unnamed)'} ${m.digest} is not allowed in this fleet`);
      }
    }
  }
  for (const a of hb.auditAlerts) raise('non_compliant', `audit alert: ${a}`);
  for (const r of hb.policyRefusals) raise('degraded', `policy refused: ${r}`);
  if (hb.dropped > 0) raise('degraded', `${hb.dropped} heartbeats dropped from the outbox`);
  return { state, reasons };
}

function suffix(reasons: readonly string[]): string {
  return reasons.length ? `: ${reasons.join('; ')}` : '';
}
