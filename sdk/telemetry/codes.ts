/** Error codes of the telemetry area. */
export const TELEMETRY_CODES = {
  EW_TELEMETRY_TOPIC: 'A fleet, device or authority name is not valid in a topic.',
} as const;

export type TelemetryCode = keyof typeof TELEMETRY_CODES;
