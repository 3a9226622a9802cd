import { createRequire } from 'node:module';
import type pg from 'pg';
import { EdgewardenError } from '../errors';
import { PG_MIGRATIONS } from './migrations';
import type {
  AlertRecord,
  BirthOutcome,
  DeviceRecord,
  HeartbeatRow,
  Store,
  StoreBatchResult,
  StoredHeartbeat,
} from './store';
import { newestPerDevice, rowToAlert, rowToDevice, rowToHeartbeat } from './store-rows';

type Row = Record<string, unknown>;

/** Options of {@link PgStore}. */
export interface PgStoreOptions {
  /** `postgres://user@host:port/db` */
  connectionString: string;
  /** Schema to keep the tables in (created if missing; default `public`). */
  schema?: string;
  /** Pool size (default 4). */
  max?: number;
}

// BIGINT columns come back as strings by default; every value here fits a double.
const INT8 = 20;
// `pg` is loaded with the first store, not at import: a device that never runs a collector does
// not pay for it in its cold start.
let pgModule: typeof pg | undefined;
function loadPg(): typeof pg {
  pgModule ??= createRequire(import.meta.url)('pg') as typeof pg;
  return pgModule;
}
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8
      ? (v: string) => Number(v)
      : loadPg().types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;
const RETRYABLE = new Set(['40P01', '40001']);

/**
 * PostgreSQL store, for a fleet served by several collectors: every collector writes to and reads
 * from the same tables, so each API shows the whole fleet. Seq uniqueness is the primary key
 * (device, seq) with `ON CONFLICT DO NOTHING`; device rows are locked in id order inside each batch
 * so concurrent batches cannot deadlock, and state only moves forward (GREATEST).
 */
export class PgStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  readonly schema: string;

  constructor(opts: PgStoreOptions) {
    this.schema = opts.schema ?? 'public';
    if (!SCHEMA.test(this.schema)) throw new EdgewardenError('EW_FLEET_OPTIONS', `bad schema name ${this.schema}`);
    this.pool = new (loadPg().Pool)({
      connectionString: opts.connectionString,
      max: opts.max ?? 4,
      types,
      // JIT compilation costs more than it saves on these small, frequent statements.
      options: `-c search_path=${this.schema} -c jit=off`,
    });
    // An idle client's error (server restart) must not crash the process; the next query reconnects.
    this.pool.on('error', () => {});
  }

  private async q(sql: string, params: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.pool.query(sql, params)).rows as Row[];
    } catch (cause) {
      throw storeError(cause);
    }
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (cause) {
        throw storeError(cause);
      }
      try {
        await client.query('BEGIN');
        const out = await fn(client);
        await client.query('COMMIT');
        client.release();
        return out;
      } catch (cause) {
        await client.query('ROLLBACK').catch(() => {});
        client.release();
        const code = (cause as { code?: string }).code;
        if (attempt < 5 && code && RETRYABLE.has(code)) continue;
        throw storeError(cause);
      }
    }
  }

  async migrate(): Promise<number> {
    return this.tx(async (c) => {
      // Several collectors may start at once: one migrates, the others wait here.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`edgewarden-migrate-${this.schema}`]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
      await c.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT, applied_ms BIGINT)',
      );
      const applied = new Set(
        (await c.query('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)),
      );
      for (const m of PG_MIGRATIONS) {
        if (applied.has(m.version)) continue;
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version, description, applied_ms) VALUES ($1, $2, $3)', [
          m.version,
          m.description,
          Date.now(),
        ]);
      }
      return Number((await c.query('SELECT MAX(version) AS v FROM schema_migrations')).rows[0].v);
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Drops the schema and everything in it (tests use a schema per run). */
  async dropSchema(): Promise<void> {
    await this.q(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
  }

  async enroll(e: {
    deviceId: string;
    keyid: string;
    publicKey: string;
    status: 'approved' | 'pending';
    nowMs: number;
    fleet?: string;
  }): Promise<DeviceRecord> {
    await this.q(
      `INSERT INTO devices (id, fleet, keyid, public_key, status, first_seen_ms) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE SET keyid = EXCLUDED.keyid, public_key = EXCLUDED.public_key, status = EXCLUDED.status
       WHERE devices.keyid IS NULL`,
      [e.deviceId, e.fleet ?? null, e.keyid, e.publicKey, e.status, e.nowMs],
    );
    return (await this.getDevice(e.deviceId))!;
  }

  async approve(deviceId: string): Promise<boolean> {
    const rows = await this.q("UPDATE devices SET status = 'approved' WHERE id = $1 RETURNING id", [deviceId]);
    return rows.length === 1;
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | undefined> {
    const rows = await this.q('SELECT * FROM devices WHERE id = $1', [deviceId]);
    return rows[0] ? rowToDevice(rows[0]) : undefined;
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return (await this.q('SELECT * FROM devices ORDER BY id')).map(rowToDevice);
  }

  async recordBirth(b: {
    deviceId: string;
    fleet: string;
    bdSeq: number;
    timeMs: number;
    receivedMs: number;
    bootId: string;
  }): Promise<BirthOutcome> {
    return this.tx(async (c) => {
      await c.query('INSERT INTO devices (id, fleet, first_seen_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
        b.deviceId,
        b.fleet,
        b.receivedMs,
      ]);
      const r = await c.query(
        `UPDATE devices SET bd_seq = $2, fleet = $3, born_ms = $4, birth_time_ms = $5, boot_id = $6, dead = FALSE,
           death_clean = NULL, died_ms = NULL, last_seen_ms = GREATEST(COALESCE(last_seen_ms, 0), $4)
         WHERE id = $1 AND (bd_seq IS NULL OR bd_seq < $2 OR (bd_seq > $2 AND birth_time_ms < $5))`,
        [b.deviceId, b.bdSeq, b.fleet, b.receivedMs, b.timeMs, b.bootId],
      );
      if (r.rowCount === 1) return 'accepted';
      const cur = await c.query('SELECT bd_seq FROM devices WHERE id = $1', [b.deviceId]);
      return Number(cur.rows[0].bd_seq) === b.bdSeq ? 'duplicate' : 'stale';
    });
  }

  async recordDeath(d: { deviceId: string; bdSeq: number; clean: boolean; receivedMs: number }): Promise<boolean> {
    const rows = await this.q(
      'UPDATE devices SET dead = TRUE, death_clean = $1, died_ms = $2 WHERE id = $3 AND bd_seq = $4 RETURNING id',
      [d.clean, d.receivedMs, d.deviceId, d.bdSeq],
    );
    return rows.length === 1;
  }

  async storeHeartbeats(rows: readonly HeartbeatRow[]): Promise<StoreBatchResult> {
    if (rows.length === 0) return { inserted: [], storedSeq: new Map() };
    // A fixed order keeps concurrent batches from different collectors from deadlocking.
    const order = rows.map((_, i) => i).sort((a, b) => cmp(rows[a]!, rows[b]!));
    const sorted = order.map((i) => rows[i]!);
    const ids = [...new Set(sorted.map((r) => r.deviceId))];
    return this.tx(async (c) => {
      const first = new Map<string, number>();
      for (const r of sorted) if (!first.has(r.deviceId)) first.set(r.deviceId, r.receivedMs);
      await c.query(
        `INSERT INTO devices (id, fleet, first_seen_ms)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING`,
        [ids, ids.map((id) => sorted.find((r) => r.deviceId === id)!.fleet), ids.map((id) => first.get(id))],
      );
      const locked = await c.query(
        'SELECT id, stored_seq FROM devices WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE',
        [ids],
      );
      const ins = await c.query(
        `INSERT INTO heartbeats (device_id, seq, bd_seq, fleet, time_ms, received_ms, historical, envelope, summary)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[],
                              $7::boolean[], $8::bytea[], $9::jsonb[])
         ON CONFLICT DO NOTHING RETURNING device_id, seq`,
        [
          sorted.map((r) => r.deviceId),
          sorted.map((r) => r.seq),
          sorted.map((r) => r.bdSeq),
          sorted.map((r) => r.fleet),
          sorted.map((r) => r.timeMs),
          sorted.map((r) => r.receivedMs),
          sorted.map((r) => r.historical),
          sorted.map((r) => Buffer.from(r.envelope.buffer, r.envelope.byteOffset, r.envelope.byteLength)),
          sorted.map((r) => JSON.stringify(r.summary)),
        ],
      );
      const fresh = new Set(ins.rows.map((r) => `${r.device_id}/${r.seq}`));
      const inserted = rows.map(() => false);
      for (const i of order) {
        const key = `${rows[i]!.deviceId}/${rows[i]!.seq}`;
        // A seq twice in one batch is stored once: only its first row counts as inserted.
        if (fresh.delete(key)) inserted[i] = true;
      }
      const start = new Map<string, number | null>(
        locked.rows.map((r) => [r.id as string, r.stored_seq as number | null]),
      );
      const storedSeq = await computeStoredSeq(c, start);
      const newest = newestPerDevice(rows.filter((_, i) => inserted[i]));
      const changed = ids.filter((id) => newest.has(id) || storedSeq.get(id) !== (start.get(id) ?? undefined));
      if (changed.length > 0) {
        const n = changed.map((id) => newest.get(id));
        await c.query(
          `UPDATE devices d SET fleet = COALESCE(u.fleet, d.fleet),
             first_seen_ms = COALESCE(d.first_seen_ms, u.received_ms),
             last_seen_ms = CASE WHEN u.received_ms IS NULL THEN d.last_seen_ms
                                 ELSE GREATEST(COALESCE(d.last_seen_ms, 0), u.received_ms) END,
             last_hb = CASE WHEN u.seq IS NOT NULL AND (d.last_seq IS NULL OR d.last_seq < u.seq) THEN u.summary ELSE d.last_hb END,
             last_bd_seq = CASE WHEN u.seq IS NOT NULL AND (d.last_seq IS NULL OR d.last_seq < u.seq) THEN u.bd_seq ELSE d.last_bd_seq END,
             last_seq = CASE WHEN u.seq IS NULL THEN d.last_seq ELSE GREATEST(COALESCE(d.last_seq, -1), u.seq) END,
             dead = CASE WHEN u.bd_seq IS NOT NULL AND (d.bd_seq IS NULL OR d.bd_seq < u.bd_seq) THEN FALSE ELSE d.dead END,
             bd_seq = CASE WHEN u.bd_seq IS NOT NULL AND (d.bd_seq IS NULL OR d.bd_seq < u.bd_seq) THEN u.bd_seq ELSE d.bd_seq END,
             stored_seq = CASE WHEN u.stored IS NOT NULL AND (d.stored_seq IS NULL OR d.stored_seq < u.stored)
                               THEN u.stored ELSE d.stored_seq END
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::jsonb[], $7::bigint[])
             AS u(id, fleet, received_ms, seq, bd_seq, summary, stored)
           WHERE d.id = u.id`,
          [
            changed,
            n.map((r) => r?.fleet ?? null),
            n.map((r) => r?.receivedMs ?? null),
            n.map((r) => r?.seq ?? null),
            n.map((r) => r?.bdSeq ?? null),
            n.map((r) => (r ? JSON.stringify(r.summary) : null)),
            changed.map((id) => storedSeq.get(id) ?? null),
          ],
        );
      }
      return { inserted, storedSeq };
    });
  }

  async storedSeq(deviceId: string): Promise<number | undefined> {
    return this.tx(async (c) => (await advanceStoredSeq(c, [deviceId])).get(deviceId));
  }

  async skipTo(deviceId: string, seq: number): Promise<number | undefined> {
    return this.tx(async (c) => {
      await c.query('UPDATE devices SET stored_seq = GREATEST(COALESCE(stored_seq, $2), $2) WHERE id = $1', [
        deviceId,
        seq - 1,
      ]);
      return (await advanceStoredSeq(c, [deviceId])).get(deviceId);
    });
  }

  async listHeartbeats(deviceId: string, limit: number): Promise<StoredHeartbeat[]> {
    const rows = await this.q(
      `SELECT device_id, seq, bd_seq, fleet, time_ms, received_ms, historical, summary FROM heartbeats
       WHERE device_id = $1 ORDER BY seq DESC LIMIT $2`,
      [deviceId, limit],
    );
    return rows.map(rowToHeartbeat);
  }

  async countHeartbeats(deviceId?: string): Promise<number> {
    const rows =
      deviceId === undefined
        ? await this.q('SELECT COUNT(*)::bigint AS n FROM heartbeats')
        : await this.q('SELECT COUNT(*)::bigint AS n FROM heartbeats WHERE device_id = $1', [deviceId]);
    return Number(rows[0]!.n);
  }

  async recordCheckpoint(c: { deviceId: string; treeSize: number; rootHash: string; timeMs: number }): Promise<void> {
    await this.tx(async (cl) => {
      await cl.query(
        'INSERT INTO checkpoints (device_id, tree_size, root, time_ms) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
        [c.deviceId, c.treeSize, c.rootHash, c.timeMs],
      );
      await cl.query(
        'UPDATE devices SET ckpt_size = $1, ckpt_root = $2 WHERE id = $3 AND (ckpt_size IS NULL OR ckpt_size < $1)',
        [c.treeSize, c.rootHash, c.deviceId],
      );
    });
  }

  async checkpointRoot(deviceId: string, treeSize: number): Promise<string | undefined> {
    const rows = await this.q('SELECT root FROM checkpoints WHERE device_id = $1 AND tree_size = $2', [
      deviceId,
      treeSize,
    ]);
    return (rows[0]?.root as string | undefined) ?? undefined;
  }

  async flagHistoryRewritten(deviceId: string): Promise<void> {
    await this.q('UPDATE devices SET history_rewritten = TRUE WHERE id = $1', [deviceId]);
  }

  async addAlert(a: { timeMs: number; deviceId: string | null; code: string; message: string }): Promise<AlertRecord> {
    const rows = await this.q(
      'INSERT INTO alerts (time_ms, device_id, code, message) VALUES ($1, $2, $3, $4) RETURNING id',
      [a.timeMs, a.deviceId, a.code, a.message],
    );
    return { id: Number(rows[0]!.id), ...a };
  }

  async listAlerts(limit: number): Promise<AlertRecord[]> {
    return (await this.q('SELECT * FROM alerts ORDER BY id DESC LIMIT $1', [limit])).map(rowToAlert);
  }
}

function cmp(a: HeartbeatRow, b: HeartbeatRow): number {
  return a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : a.seq - b.seq;
}

/**
 * Each device's stored seq after walking the run of consecutive stored seqs that starts at `start`
 * (at the lowest stored seq when there is none yet). One read of the seqs above each start (bounded
 * per device); the walk is done here. The caller holds the device rows locked, so concurrent
 * collectors cannot interleave.
 */
async function computeStoredSeq(c: pg.PoolClient, start: Map<string, number | null>): Promise<Map<string, number>> {
  const known = [...start.keys()];
  const seqs = await c.query(
    `SELECT u.id, h.seq FROM unnest($1::text[], $2::bigint[]) AS u(id, start)
     CROSS JOIN LATERAL (SELECT seq FROM heartbeats WHERE device_id = u.id AND seq > u.start ORDER BY seq LIMIT 1024) h
     ORDER BY u.id, h.seq`,
    [known, known.map((id) => start.get(id) ?? -1)],
  );
  const out = new Map<string, number>();
  for (const [id, seq] of start) if (seq !== null) out.set(id, seq);
  const broken = new Set<string>();
  for (const r of seqs.rows) {
    const id = r.id as string;
    if (broken.has(id)) continue;
    const seq = Number(r.seq);
    const have = out.get(id);
    if (have === undefined || seq === have + 1) out.set(id, seq);
    else broken.add(id);
  }
  return out;
}

/** Locks the devices, advances their stored seq and saves it. */
async function advanceStoredSeq(c: pg.PoolClient, ids: string[]): Promise<Map<string, number>> {
  const cur = await c.query('SELECT id, stored_seq FROM devices WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [
    ids,
  ]);
  const start = new Map<string, number | null>(cur.rows.map((r) => [r.id as string, r.stored_seq as number | null]));
  const out = await computeStoredSeq(c, start);
  const moved = [...out].filter(([id, seq]) => start.get(id) !== seq);
  if (moved.length > 0) {
    await c.query(
      `UPDATE devices d SET stored_seq = u.seq FROM unnest($1::text[], $2::bigint[]) AS u(id, seq)
       WHERE d.id = u.id AND (d.stored_seq IS NULL OR d.stored_seq < u.seq)`,
      [moved.map(([id]) => id), moved.map(([, seq]) => seq)],
    );
  }
  return out;
}

function storeError(cause: unknown): EdgewardenError {
  if (cause instanceof EdgewardenError) return cause;
  return new EdgewardenError('EW_FLEET_STORE', `PostgreSQL: ${(cause as Error)?.message ?? String(cause)}`, {
    cause,
    details: { sqlState: (cause as { code?: string }).code },
  });
}
