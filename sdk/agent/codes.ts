/** Error codes of the device agent. */
export const AGENT_CODES = {
  EW_AGENT_MODEL: 'A configured model could not be loaded; the agent runs on and reports it in every heartbeat.',
  EW_AGENT_CONFIG: 'The agent configuration file is missing or invalid (the message names the key and line).',
} as const;

export type AgentCode = keyof typeof AGENT_CODES;
