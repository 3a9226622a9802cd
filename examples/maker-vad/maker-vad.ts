// The maker path's host side lives in the SDK (the agent runs it when its config names a serial port).
export {
  MakerVad,
  type MakerVadEvents,
  type MakerVadOptions,
  recordDigest,
  type WindowResult,
} from '../../sdk/agent/voice-activity';
