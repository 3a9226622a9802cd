export type { Durability, OutputRule, PolicyBody, ProvenanceMode, Share, UnlistedMode } from './canonical';
export { decodePolicy, documentToPolicy, encodePolicyDocument, parsePublisherKey } from './canonical';
export { POLICY_CODES, type PolicyCode } from './codes';
export type { ComplianceInput, ComplianceState, ComplianceStatus } from './compliance';
export { COMPLIANCE_STATE_NUMBER, computeCompliance } from './compliance';
export type { AttributedRule, ContributingPolicy, EffectiveModels, EffectivePolicy, Setting } from './compose';
export { composePolicies, EMPTY_EFFECTIVE_POLICY } from './compose';
export type { OutputRuleDocument, PolicyDocument, YamlProblem } from './document';
export { parsePolicyDocument, parseYaml, policyDocumentSchema } from './document';
export type { OutputExplanation, PolicyExplanation } from './explain';
export { explainPolicy, formatExplanation } from './explain';
export type { InferenceGate, LoadDecision, OutputDecision, PolicyGateOptions } from './gate';
export { OPEN_GATE, PolicyGate } from './gate';
export type { ApplyResult, PolicyManagerOptions, PolicyRefusal } from './manager';
export { loadPolicyState, PolicyManager } from './manager';
export type { ModelFile, ModelSignatureVerdict } from './model-signing';
export {
  assertModelFolder,
  hashModelFolder,
  MODEL_SIGNATURE_FILE,
  modelStatement,
  signModelFolder,
  verifyModelFolder,
} from './model-signing';
export type { MergedOutputRule, RuleSource } from './rules';
export { mergeOutputRules } from './rules';
export { cosignPolicy, signPolicy, signPolicyYaml } from './sign';
export { POLICY_TEMPLATE } from './template';
export type { Authority, AuthorityInput, AuthorityRole, SectionName } from './trust';
export { TrustConfig } from './trust';
export type { PolicyVerdict, VerifiedPolicy } from './verify';
export { decodePolicyEnvelope, verifyPolicyEnvelope } from './verify';
