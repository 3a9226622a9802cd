import type { HeartbeatInput, ShareLevel } from './heartbeat';

/** Where one publisher stands; the agent shows it and puts outboxDepth/dropped in heartbeats. */
export interface PublisherStats {
  /** The broker's name (from the configuration, or host-port of its URL). */
  name: string;
  share: ShareLevel;
  connected: boolean;
  /** Heartbeats held in this broker's outbox (not yet receipted, or PUBACKed without receipts). */
  outboxDepth: number;
  /** Heartbeats dropped because the outbox was full, cumulative since the outbox was created. */
  dropped: number;
  /** Highest seq ever queued here (survives restarts). */
  lastSeq: number;
  /** bd_seq of the current (or last) connection. */
  bdSeq: number;
  /** Highest stored_seq a receipt reported. */
  lastReceiptSeq: number;
  /** Heartbeats the broker acknowledged (PUBACK), including re-sends. */
  sent: number;
}

/**
 * Sends heartbeats to one destination. `publish` queues the heartbeat durably and returns; sending,
 * retrying and receipts happen in the background. Implementations: MqttPublisher (one broker),
 * MemoryPublisher (tests), and Telemetry fans one heartbeat out to several.
 */
export interface Publisher {
  readonly name: string;
  /** Queues `input` (seq must exceed every seq queued before) and sends it when it can. */
  publish(input: HeartbeatInput): Promise<void>;
  stats(): PublisherStats;
  /** Flushes, says goodbye (clean death) where connected, and releases resources. */
  close(): Promise<void>;
}
