/** Error and verification-failure codes of the provenance area, with what each means. */
export const PROVENANCE_CODES = {
  EW_PROVENANCE_SIGNATURE: 'A signature does not verify over the envelope payload.',
  EW_PROVENANCE_UNTRUSTED_KEY: 'The envelope is signed by a key that is not in the trust set.',
  EW_PROVENANCE_PAYLOAD_TYPE: 'The envelope payloadType is not the one expected for this object.',
  EW_PROVENANCE_MALFORMED:
    'Bytes or JSON that do not decode as the expected structure (truncated, oversized, bad fields).',
  EW_PROVENANCE_OUTPUT_DIGEST: 'The outputs do not match the output digest in the record.',
  EW_PROVENANCE_INPUT_DIGEST: 'The inputs do not match the input digest in the record.',
  EW_PROVENANCE_INCLUSION: 'The inclusion proof does not place the record in the signed checkpoint.',
  EW_PROVENANCE_CONSISTENCY: 'A consistency proof does not link two checkpoints: history was rewritten.',
  EW_PROVENANCE_KEY_FILE: 'A key file is missing, unreadable, not Ed25519, or readable by group/others.',
  EW_PROVENANCE_SALT_REQUIRED: 'The record uses salted digests and no salt was given to the verifier.',
} as const;

export type ProvenanceCode = keyof typeof PROVENANCE_CODES;
