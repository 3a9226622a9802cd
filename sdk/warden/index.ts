// The warden: engine + policy gate + provenance composed into the API applications use.
export { WARDEN_CODES, type WardenCode } from './codes';
export { createWarden } from './create';
export type { ModelStats } from './stats';
export type {
  InferDecision,
  InferResult,
  ProvenanceMode,
  Warden,
  WardenModel,
  WardenOptions,
} from './types';
