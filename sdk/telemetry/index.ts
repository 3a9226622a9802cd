// Public face of the telemetry area: heartbeats, lifecycle, receipts/commands, MQTT client, brokers.
export { type Backoff, type BackoffOptions, createBackoff, SYSTEM_TIMERS, type Timers } from './backoff';
export { TELEMETRY_CODES, type TelemetryCode } from './codes';
export {
  type DeviceCommand,
  decodeDeviceCommand,
  decodeReceipt,
  encodeDeviceCommand,
  encodeReceipt,
  MAX_CONTROL_BYTES,
  type Receipt,
} from './control';
export { type EmbeddedBroker, startEmbeddedBroker } from './embedded-broker';
export {
  type BoardInfo,
  buildHeartbeat,
  type ComplianceState,
  decodeHeartbeat,
  decodeSignedHeartbeat,
  HEARTBEAT_LIMITS,
  type HealthInfo,
  type Heartbeat,
  type HeartbeatInput,
  MAX_HEARTBEAT_BYTES,
  MAX_SIGNED_HEARTBEAT_BYTES,
  type ModelStatusInfo,
  reduceForShare,
  SHARE_LEVELS,
  type ShareLevel,
  signHeartbeat,
} from './heartbeat';
export {
  decodeLifecycle,
  decodeSignedLifecycle,
  encodeLifecycle,
  type LifecycleFields,
  MAX_SIGNED_LIFECYCLE_BYTES,
  signLifecycle,
} from './lifecycle';
export {
  connectMqtt,
  createMqttClient,
  MqttClient,
  type MqttClientEvents,
  type MqttClientOptions,
  type MqttMessage,
  type MqttWill,
} from './mqtt-client';
export { brokerName, MqttPublisher, type MqttPublisherEvents, type MqttPublisherOptions } from './mqtt-publisher';
export { Outbox, type OutboxDurability, type OutboxEntry, type OutboxOptions, type OutboxRecovery } from './outbox';
export type { Publisher, PublisherStats } from './publisher';
export { type BrokerConfig, type HeartbeatContent, Telemetry, type TelemetryOptions } from './telemetry';
export { TokenBucket } from './token-bucket';
export { type DeviceTopicKind, deviceTopic, fleetFilter, parseDeviceTopic, policyTopic } from './topics';
