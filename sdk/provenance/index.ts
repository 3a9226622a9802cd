// Public face of the provenance area: digests, records, signing, Merkle log, verification.

export type { AppendResult, AuditLogOptions, AuditRecovery, Durability } from './audit-log';
export { AuditLog } from './audit-log';
export type { AuditDamage, TornTail } from './audit-scan';
export type { AuditReport } from './audit-verify';
export { exportAudit, verifyAuditExport, verifyAuditLog } from './audit-verify';
export type { InclusionProof, ProvenanceBundle, ProvenanceBundleJson } from './bundle';
export { bundleFromJson, bundleToJson, decodeBundle, encodeBundle, parseBundleJson } from './bundle';
export type { CheckpointFields } from './checkpoint';
export { decodeCheckpoint, encodeCheckpoint, signCheckpoint, signCheckpointSync } from './checkpoint';
export type { ProvenanceCode } from './codes';
export { PROVENANCE_CODES } from './codes';
export type { DsseJson, Envelope, EnvelopeVerdict } from './dsse';
export {
  decodeEnvelope,
  encodeEnvelope,
  envelopeFromJson,
  envelopeToJson,
  MAX_ENVELOPE_BYTES,
  PAYLOAD_TYPES,
  pae,
  signEnvelope,
  signEnvelopeSync,
  verifyEnvelope,
} from './dsse';
export type { Ed25519Backend } from './ed25519';
export { ed25519Backend, verifyEd25519 } from './ed25519';
export type { InTotoStatement } from './intoto';
export {
  EDGEWARDEN_PREDICATE_TYPE,
  INTOTO_PAYLOAD_TYPE,
  recordToInTotoStatement,
  signInTotoStatement,
  signInTotoStatementAsync,
} from './intoto';
export {
  deviceIdOf,
  KeySigner,
  keyIdOf,
  loadKeyFileSigner,
  rawPublicKey,
  TrustStore,
  toPublicKey,
  writeKeyPair,
} from './keys';
export type { LeafSource } from './merkle';
export { EMPTY_ROOT, leafHash, MerkleTree, nodeHash, verifyConsistency, verifyInclusion } from './merkle';
export type { DecisionOutcome, RecordDecision, RecordFields } from './record';
export { decodeRecord, encodeRecord, RECORD_LIMITS, RECORD_VERSION, recordToJson } from './record';
export type { Signer } from './signer';
export { ONNX_DTYPE, tensorDigest } from './tensor-digest';
export type { BundleVerdict, ConsistencyVerdict, VerifyOptions } from './verifier';
export { verifyBundle, verifyCheckpointConsistency } from './verifier';
