// The public API of edgewarden. Named exports only.

export type { BackendSession, InferenceBackend, SessionOptions, TensorMeta } from './engine/backend';
export type { DType, TensorData, TensorInput, TensorMap, TensorView } from './engine/tensor';
export { EdgewardenError, isEdgewardenError } from './errors';
export type { InferenceGate, LoadDecision, OutputDecision } from './policy/gate';
export type { DsseJson, Envelope, EnvelopeVerdict } from './provenance/dsse';
export {
  decodeEnvelope,
  encodeEnvelope,
  envelopeFromJson,
  envelopeToJson,
  PAYLOAD_TYPES,
  pae,
  signEnvelope,
  verifyEnvelope,
} from './provenance/dsse';
export { deviceIdOf, KeySigner, keyIdOf, loadKeyFileSigner, TrustStore, writeKeyPair } from './provenance/keys';
export type { Signer } from './provenance/signer';
export type { Clock } from './util/clock';
export { SDK_VERSION } from './version';
