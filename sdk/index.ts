// The public API of edgewarden, by area. Each area's index lists its names; where two areas use the
// same name for different things, the explicit re-exports at the bottom say which one is public.

export * from './agent/index';
export { type Demo, type DemoOptions, type DemoSnapshot, type DemoSummary, startDemo } from './demo/index';
export * from './engine/index';
export { EdgewardenError, isEdgewardenError } from './errors';
export * from './fleet/index';
export * from './link/index';
export type { ComplianceState } from './policy/index';
export * from './policy/index';
// Names more than one area defines: audit durability and provenance mode are the same unions in
// provenance, warden and policy; compliance is the policy's (upper case) and the heartbeat's (wire form).
export type { Durability } from './provenance/index';
export * from './provenance/index';
export type { ComplianceState as HeartbeatComplianceState } from './telemetry/index';
export * from './telemetry/index';
export type { Clock } from './util/clock';
export { SYSTEM_CLOCK } from './util/clock';
export { SDK_VERSION } from './version';
export type { ProvenanceMode } from './warden/index';
export * from './warden/index';
