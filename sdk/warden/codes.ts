/** Error codes of the warden (the composition of engine, policy gate and provenance). */
export const WARDEN_CODES = {
  EW_WARDEN_CLOSED: 'The warden (or one of its models) was used after close().',
  EW_WARDEN_MODEL_REFUSED: 'The policy gate refuses to run this model (details.reason, details.ruleId).',
  EW_WARDEN_PIPELINE:
    'The provenance pipeline (digest/sign worker or audit log) failed; no further outputs are returned unsigned.',
  EW_WARDEN_OPTIONS: 'createWarden options are invalid (mode, durability, checkpoint cadence, home).',
} as const;

export type WardenCode = keyof typeof WARDEN_CODES;
