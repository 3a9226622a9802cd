/** Error and refusal codes of the policy area, with what each means. */
export const POLICY_CODES = {
  EW_POLICY_YAML: 'A policy or trust document is not valid YAML (the message names line and column).',
  EW_POLICY_SCHEMA: 'A policy or trust document breaks the schema (the message names the key, line and column).',
  EW_POLICY_MALFORMED: 'Signed policy bytes that do not decode as an envelope or a valid canonical Policy.',
  EW_POLICY_UNSIGNED: 'A policy envelope carries no signature.',
  EW_POLICY_SIGNATURE: 'A policy signature by a trusted authority key does not verify (forged or altered).',
  EW_POLICY_UNTRUSTED_KEY: 'A policy is signed only by keys the device does not trust as authorities.',
  EW_POLICY_AUTHORITY: 'The policy names another authority than the key that signed it, or than its MQTT topic.',
  EW_POLICY_PAYLOAD_TYPE: 'The envelope payloadType is not application/vnd.edgewarden.policy.v1+protobuf.',
  EW_POLICY_EXPIRED: 'The policy expiry time has passed.',
  EW_POLICY_ROLLBACK: 'The policy version is not above the version already applied for that authority.',
  EW_POLICY_THRESHOLD:
    'A section needs k of n authority signatures and the policy carries fewer; that section is ignored.',
  EW_POLICY_TRUST: 'The device trust configuration (authority keys, roles, thresholds) is missing or invalid.',
  EW_POLICY_MODEL_NOT_ALLOWED: 'The model digest is not on the effective allowlist and no trusted publisher signed it.',
  EW_POLICY_MODEL_SIGNATURE: 'A model signature is malformed or not by a trusted publisher key.',
  EW_POLICY_MODEL_FILE_CHANGED: 'A file of a signed model folder does not match the digest in its signature.',
  EW_POLICY_MODEL_FILE_EXTRA: 'A signed model folder holds a file that its signature does not list.',
  EW_POLICY_MODEL_FILE_MISSING: 'A file listed in a model signature is missing from the model folder.',
  EW_POLICY_IO: 'Reading or writing policy files in the device home failed.',
} as const;

/** A policy code. */
export type PolicyCode = keyof typeof POLICY_CODES;
