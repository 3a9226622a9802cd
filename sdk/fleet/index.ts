// Public face of the fleet area: the collector, its stores, API and CLI-level service.
export { FLEET_CODES, type FleetCode, type RejectCode } from './codes';
export {
  Collector,
  type CollectorEvents,
  type CollectorMqtt,
  type CollectorOptions,
  type DeviceView,
  type HandleOutcome,
} from './collector';
export {
  type ComplianceState as FleetComplianceState,
  type ComplianceVerdict,
  evaluateCompliance,
  type FleetPolicy,
  normalizeDigest,
} from './compliance';
export {
  collectorResultVerifier,
  createDashboardHandler,
  type DashboardHandler,
  type DashboardOptions,
  type EnrolledKeys,
  findDashboardAssets,
  type VerifyAnswer,
  verifyResultFile,
} from './dashboard';
export { type FleetHttpOptions, type FleetHttpServer, parseHostPort, startFleetHttp } from './http';
export { LIFECYCLE_PUBLIC_KEY_FIELD, lifecyclePublicKey, withLifecyclePublicKey } from './lifecycle-key';
export { labelText, Metrics } from './metrics';
export { type Migration, PG_MIGRATIONS, SQLITE_MIGRATIONS } from './migrations';
export { PgStore, type PgStoreOptions } from './pg-store';
export { type EnrollmentKey, readEnrollmentDir } from './registry';
export { openStore, type RunningFleet, type ServeFleetOptions, serveFleet } from './serve';
export { SqliteStore } from './sqlite-store';
export type {
  AlertRecord,
  BirthOutcome,
  DeviceRecord,
  HeartbeatRow,
  HeartbeatSummary,
  ModelSummary,
  Store,
  StoreBatchResult,
  StoredHeartbeat,
} from './store';
export {
  type CheckpointInfo,
  DEFAULT_MAX_SKEW_MS,
  type EnrolledKey,
  type KeyLookup,
  type Rejection,
  type VerifiedMessage,
  type VerifyMessageOptions,
  verifyDeviceMessage,
} from './verify-message';
