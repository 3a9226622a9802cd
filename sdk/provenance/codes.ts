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
  EW_PROVENANCE_TENSOR: 'A tensor given for digesting is not well-formed (unknown dtype, bad dims, wrong data length).',
  EW_PROVENANCE_TREE_SIZE: 'A Merkle tree size or leaf index is out of range for the tree.',
  EW_PROVENANCE_PRUNED:
    'A root or proof asked for records that the audit log retention removed (sizes and indices before its first kept record).',
  EW_PROVENANCE_AUDIT_CRC:
    'An audit log entry before the tail is incomplete or fails its CRC-32C: the log was altered.',
  EW_PROVENANCE_AUDIT_CHAIN:
    'An audit log record is out of place (wrong index or previous-leaf hash): an entry was deleted, reordered or spliced.',
  EW_PROVENANCE_AUDIT_CHECKPOINT:
    'A checkpoint in the audit log does not match the records before it, or its signature does not verify.',
  EW_PROVENANCE_AUDIT_ENTRY:
    'An audit log entry has a valid CRC but content that does not decode (unknown kind, bad record).',
  EW_PROVENANCE_AUDIT_IO: 'The audit log could not be read or written (permissions, disk full, closed log).',
  EW_PROVENANCE_AUDIT_LOCKED: 'Another live process has the audit log open for appending.',
} as const;

export type ProvenanceCode = keyof typeof PROVENANCE_CODES;
