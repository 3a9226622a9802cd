/** Error codes of the device agent. */
export const AGENT_CODES = {
  EW_AGENT_CONFIG: 'The agent configuration file is missing or invalid (the message names the key and line).',
} as const;

export type AgentCode = keyof typeof AGENT_CODES;
