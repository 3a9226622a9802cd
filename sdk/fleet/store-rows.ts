import type { AlertRecord, DeviceRecord, HeartbeatSummary, StoredHeartbeat } from './store';

// Both databases return rows with the same column names; SQLite gives 0/1 and JSON text where
// PostgreSQL gives booleans and parsed JSONB. These helpers turn either into the store's records.

type Row = Record<string, unknown>;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const bool = (v: unknown): boolean => v === true || v === 1;
const json = <T>(v: unknown): T | null =>
  v === null || v === undefined ? null : typeof v === 'string' ? (JSON.parse(v) as T) : (v as T);

/** A `devices` row as a {@link DeviceRecord}. */
export function rowToDevice(r: Row): DeviceRecord {
  return {
    id: r.id as string,
    fleet: (r.fleet as string | null) ?? null,
    keyid: (r.keyid as string | null) ?? null,
    publicKey: (r.public_key as string | null) ?? null,
    status: r.status === 'pending' ? 'pending' : 'approved',
    firstSeenMs: num(r.first_seen_ms),
    bdSeq: num(r.bd_seq),
    bornMs: num(r.born_ms),
    birthTimeMs: num(r.birth_time_ms),
    bootId: (r.boot_id as string | null) ?? null,
    dead: bool(r.dead),
    deathClean: r.death_clean === null || r.death_clean === undefined ? null : bool(r.death_clean),
    diedMs: num(r.died_ms),
    lastSeenMs: num(r.last_seen_ms),
    lastSeq: num(r.last_seq),
    lastBdSeq: num(r.last_bd_seq),
    lastHeartbeat: json<HeartbeatSummary>(r.last_hb),
    storedSeq: num(r.stored_seq),
    historyRewritten: bool(r.history_rewritten),
    checkpointSize: num(r.ckpt_size),
    checkpointRoot: (r.ckpt_root as string | null) ?? null,
  };
}

/** A `heartbeats` row as a {@link StoredHeartbeat}. */
export function rowToHeartbeat(r: Row): StoredHeartbeat {
  return {
    deviceId: r.device_id as string,
    fleet: r.fleet as string,
    bdSeq: Number(r.bd_seq),
    seq: Number(r.seq),
    timeMs: Number(r.time_ms),
    receivedMs: Number(r.received_ms),
    historical: bool(r.historical),
    summary: json<HeartbeatSummary>(r.summary)!,
  };
}

/** An `alerts` row as an {@link AlertRecord}. */
export function rowToAlert(r: Row): AlertRecord {
  return {
    id: Number(r.id),
    timeMs: Number(r.time_ms),
    deviceId: (r.device_id as string | null) ?? null,
    code: r.code as string,
    message: r.message as string,
  };
}

/** Per device, the row with the highest seq of a batch (it carries the newest state). */
export function newestPerDevice<T extends { deviceId: string; seq: number }>(rows: readonly T[]): Map<string, T> {
  const out = new Map<string, T>();
  for (const r of rows) {
    const cur = out.get(r.deviceId);
    if (!cur || r.seq > cur.seq) out.set(r.deviceId, r);
  }
  return out;
}
