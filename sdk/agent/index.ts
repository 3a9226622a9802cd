// The device agent: configuration, the long-running process, and the voice-activity link pipeline.
export { Agent, type AgentDeps } from './agent';
export { AGENT_CODES, type AgentCode } from './codes';
export {
  type AgentConfig,
  agentConfigSchema,
  type BrokerConfig as AgentBrokerConfig,
  loadAgentConfig,
  parseAgentConfig,
} from './config';
export { applyEffectivePolicy, deviceSalt } from './settings';
export { MakerVad, type MakerVadEvents, type MakerVadOptions, recordDigest, type WindowResult } from './voice-activity';
