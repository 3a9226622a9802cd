/** What the API shows of one model a device reports. */
export interface ModelSummary {
  name: string;
  /** `sha256:<hex>` */
  digest: string;
  inferences: number;
  blocked: number;
  errors: number;
  p50Us: number;
  p99Us: number;
  executionProvider: string;
}

/** The JSON form of a heartbeat the store keeps next to its signed bytes. */
export interface HeartbeatSummary {
  timeMs: number;
  sdkVersion: string;
  bootId: string;
  board?: { model: string; family: string; arch: string; os: string; cpus: number };
  health?: {
    tempMilliC?: number;
    throttled: number;
    memTotalBytes: number;
    memAvailableBytes: number;
    diskFreeBytes: number;
    load1Milli: number;
    uptimeS: number;
  };
  models: ModelSummary[];
  policyDigest: string;
  /** What the device itself reports. */
  compliance: { state: string; reasons: string[] };
  checkpoint?: { treeSize: number; rootHash: string };
  outboxDepth: number;
  dropped: number;
  historical: boolean;
  share: string;
  policyRefusals: string[];
  auditAlerts: string[];
}

/** One heartbeat to store. `envelope` is the signed bytes exactly as received (the evidence). */
export interface HeartbeatRow {
  deviceId: string;
  fleet: string;
  bdSeq: number;
  seq: number;
  /** The device's signed time. */
  timeMs: number;
  /** The collector's time of arrival. */
  receivedMs: number;
  historical: boolean;
  envelope: Uint8Array;
  summary: HeartbeatSummary;
}

/** A stored heartbeat as the API returns it. */
export interface StoredHeartbeat {
  deviceId: string;
  fleet: string;
  bdSeq: number;
  seq: number;
  timeMs: number;
  receivedMs: number;
  historical: boolean;
  summary: HeartbeatSummary;
}

/** Everything the store knows of a device (the API derives `online` and compliance from it). */
export interface DeviceRecord {
  id: string;
  fleet: string | null;
  /** Hex keyid and raw public key (hex); null for a device seen only through an allowlist file not yet loaded. */
  keyid: string | null;
  publicKey: string | null;
  status: 'approved' | 'pending';
  firstSeenMs: number | null;
  /** The current birth. */
  bdSeq: number | null;
  bornMs: number | null;
  birthTimeMs: number | null;
  bootId: string | null;
  /** True after a death matching the current birth. */
  dead: boolean;
  deathClean: boolean | null;
  diedMs: number | null;
  /** Collector time of the last accepted live message. */
  lastSeenMs: number | null;
  lastSeq: number | null;
  lastBdSeq: number | null;
  lastHeartbeat: HeartbeatSummary | null;
  /** Highest seq such that every seq from the first one stored up to it is stored (what receipts carry). */
  storedSeq: number | null;
  historyRewritten: boolean;
  checkpointSize: number | null;
  checkpointRoot: string | null;
}

/** An alert for the fleet manager. */
export interface AlertRecord {
  id: number;
  timeMs: number;
  deviceId: string | null;
  code: string;
  message: string;
}

/** Outcome of storing a batch. */
export interface StoreBatchResult {
  /** Per row: true when newly stored, false when that (device, seq) was already stored. */
  inserted: boolean[];
  /** Per device in the batch: its highest contiguous stored seq after the batch. */
  storedSeq: Map<string, number>;
}

export type BirthOutcome = 'accepted' | 'duplicate' | 'stale';

/**
 * Durable state of a fleet. One implementation per database; all of them pass the same test suite
 * (store.suite.ts). Every method is safe to call from several collectors sharing one database:
 * uniqueness of (device, seq) is the database's, and state only moves forward.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Applies pending versioned migrations; returns the schema version. */
  migrate(): Promise<number>;
  close(): Promise<void>;

  /** Inserts the device when unknown (status as given) and returns its record; never changes an existing key. */
  enroll(e: {
    deviceId: string;
    keyid: string;
    publicKey: string;
    status: 'approved' | 'pending';
    nowMs: number;
    fleet?: string;
  }): Promise<DeviceRecord>;
  /** Marks a pending device approved; false when no such device. */
  approve(deviceId: string): Promise<boolean>;
  getDevice(deviceId: string): Promise<DeviceRecord | undefined>;
  listDevices(): Promise<DeviceRecord[]>;

  /**
   * A birth: accepted when newer than the current one (a higher bd_seq, or a lower one with a later
   * signed time: the device reset its counter), duplicate for the current bd_seq, stale otherwise.
   */
  recordBirth(b: {
    deviceId: string;
    fleet: string;
    bdSeq: number;
    timeMs: number;
    receivedMs: number;
    bootId: string;
  }): Promise<BirthOutcome>;
  /** A death: false when its bd_seq is not the current birth's. */
  recordDeath(d: { deviceId: string; bdSeq: number; clean: boolean; receivedMs: number }): Promise<boolean>;

  /** Stores heartbeats atomically, skipping (device, seq) pairs already stored, and updates device state. */
  storeHeartbeats(rows: readonly HeartbeatRow[]): Promise<StoreBatchResult>;
  /** The device's highest contiguous stored seq. */
  storedSeq(deviceId: string): Promise<number | undefined>;
  /**
   * Gives up on seqs below `seq` that never arrived: the stored seq moves to at least `seq - 1` and
   * on over whatever follows. Returns the new stored seq.
   */
  skipTo(deviceId: string, seq: number): Promise<number | undefined>;
  /** Newest first. */
  listHeartbeats(deviceId: string, limit: number): Promise<StoredHeartbeat[]>;
  countHeartbeats(deviceId?: string): Promise<number>;

  /** Remembers a checkpoint the device signed; the newest (largest) becomes the device's current one. */
  recordCheckpoint(c: { deviceId: string; treeSize: number; rootHash: string; timeMs: number }): Promise<void>;
  /** Root (hex) of the device's checkpoint of this size, if one was seen. */
  checkpointRoot(deviceId: string, treeSize: number): Promise<string | undefined>;
  flagHistoryRewritten(deviceId: string): Promise<void>;

  addAlert(a: { timeMs: number; deviceId: string | null; code: string; message: string }): Promise<AlertRecord>;
  /** Newest first. */
  listAlerts(limit: number): Promise<AlertRecord[]>;
}
