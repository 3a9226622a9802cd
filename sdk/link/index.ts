// The serial link to a microcontroller: framing, messages, the host session, transports, discovery,
// record/replay. Public names of `edgewarden` (sdk/index.ts re-exports this file).
export { cobsDecode, cobsDecodeInto, cobsEncode, cobsEncodeInto, cobsMaxEncodedLength } from './cobs';
export { LINK_CODES, type LinkCode } from './codes';
export { findPorts, type PortLister, type PortMatch, resolvePort } from './discovery';
export { type EventMap, TypedEmitter } from './emitter';
export { FramedLink, type FramedLinkEvents, type LinkStats } from './framed-link';
export {
  CRC_BYTES,
  decodeFrame,
  encodeFrame,
  FrameDecoder,
  type FrameStats,
  MAX_FRAME_BYTES,
  MAX_PAYLOAD,
  maxFrameBytes,
} from './framing';
export {
  type ActuatorDescriptor,
  ActuatorKind,
  type CommandBody,
  decodeLinkMessage,
  encodeLinkMessage,
  type HelloInfo,
  type LinkBody,
  type LinkBodyType,
  type LinkMessage,
  linkMessageToJson,
  NackReason,
  nackReasonName,
  PROTOCOL_VERSION,
  type ResultBody,
  SampleFormat,
  type SensorBatch,
  type SensorDescriptor,
} from './messages';
export {
  loadRecording,
  parseRecording,
  type RecordedChunk,
  type Recording,
  RecordingTransport,
  ReplayTransport,
  recordingToText,
} from './recording';
export {
  DEFAULT_BAUD_RATE,
  listSerialPorts,
  type SerialPortInfo,
  SerialTransport,
  type SerialTransportOptions,
} from './serial-transport';
export {
  type DisconnectReason,
  LinkSession,
  type LinkSessionEvents,
  type LinkSessionOptions,
  nackReasonOf,
  type ReconnectOptions,
  type RequestOptions,
  type SessionStats,
} from './session';
export { listPortsFromSysfs } from './sysfs-ports';
export type { Transport, TransportEvents } from './transport';
