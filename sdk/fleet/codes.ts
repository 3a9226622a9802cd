/** Error and rejection codes of the fleet area, with what each means. */
export const FLEET_CODES = {
  EW_FLEET_OVERSIZED: 'A message is larger than the collector accepts; dropped before decoding.',
  EW_FLEET_TOPIC: 'A message arrived on a topic that is not a device topic the collector handles.',
  EW_FLEET_MALFORMED:
    'The bytes are not a DSSE envelope, or the signed payload does not decode as the expected message.',
  EW_FLEET_PAYLOAD_TYPE: 'The envelope payloadType is not the one this topic carries.',
  EW_FLEET_VERSION: 'The envelope payloadType names an edgewarden message version this collector does not know.',
  EW_FLEET_SIGNATURE: 'A signature by an enrolled key does not verify (forged or altered message).',
  EW_FLEET_UNKNOWN_KEY: 'No signature is by an enrolled key (unknown device, or TOFU before its birth was seen).',
  EW_FLEET_PENDING: 'The device is enrolled by trust-on-first-use and waits for `fleet approve`; not accepted as data.',
  EW_FLEET_DEVICE_MISMATCH:
    'The signing key, the signed device id and the topic device do not agree (valid signature, wrong topic).',
  EW_FLEET_FLEET_MISMATCH: 'The signed fleet name differs from the topic fleet.',
  EW_FLEET_CLOCK_SKEW: 'The signed timestamp is further in the future than the allowed clock skew.',
  EW_FLEET_REPLAY: 'A heartbeat with this seq is already stored for the device (replayed or duplicated).',
  EW_FLEET_STALE: "A heartbeat or birth signed for a bd_seq older than the device's current birth.",
  EW_FLEET_BD_SEQ: 'A death whose bd_seq does not match the current birth of the device.',
  EW_FLEET_CHECKPOINT_INCONSISTENT:
    'A checkpoint is not consistent with the last one seen: the device rewrote its audit history.',
  EW_FLEET_STORE: 'The store failed or refused an operation (database unreachable, bad migration, bad URL).',
  EW_FLEET_INTERNAL: 'A handler failed unexpectedly on a message; counted, the collector keeps running.',
  EW_FLEET_OPTIONS: 'Collector or command options are invalid (enrollment directory, HTTP address, fleet name).',
  EW_FLEET_NOT_FOUND: 'The device named (for approve or the API) is not known to the store.',
} as const;

export type FleetCode = keyof typeof FLEET_CODES;

/** The codes a message can be rejected with (what `edgewarden_heartbeats_rejected_total{code}` counts). */
export type RejectCode = Exclude<FleetCode, 'EW_FLEET_STORE' | 'EW_FLEET_OPTIONS' | 'EW_FLEET_NOT_FOUND'>;
