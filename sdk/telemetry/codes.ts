/** Error codes of the telemetry area. */
export const TELEMETRY_CODES = {
  EW_TELEMETRY_TOPIC: 'A fleet, device or authority name is not valid in a topic.',
  EW_TELEMETRY_MALFORMED:
    'A heartbeat, lifecycle, receipt or command does not decode (truncated, oversized, bad field, wrong payloadType).',
  EW_TELEMETRY_INPUT: 'A heartbeat or lifecycle to build has an invalid field (named in details.field).',
  EW_TELEMETRY_CONNECT: 'The MQTT broker could not be reached or refused the connection (details.reasonCode).',
  EW_TELEMETRY_NOT_CONNECTED: 'An MQTT publish or subscribe was attempted while no connection is up.',
  EW_TELEMETRY_CLOSED: 'The MQTT client, publisher or outbox was used after close().',
  EW_TELEMETRY_OUTBOX: 'The outbox directory cannot be used (unreadable, locked by another process, bad options).',
  EW_TELEMETRY_OPTIONS: 'Publisher or client options are invalid (URL, share level, TLS files).',
} as const;

export type TelemetryCode = keyof typeof TELEMETRY_CODES;
