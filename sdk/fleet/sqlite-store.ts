import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { EdgewardenError } from '../errors';
import { SQLITE_MIGRATIONS } from './migrations';
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

/**
 * The default store for one collector: SQLite through better-sqlite3, WAL journal, prepared
 * statements, and one transaction per heartbeat batch (throughput comes from batching, not from
 * concurrency). `path` ':memory:' gives a private in-memory database.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private stmts: ReturnType<SqliteStore['prepare']> | undefined;
  /** Per device: stored seq and highest stored seq (see advanceFast). */
  private readonly marks = new Map<string, { stored: number; max: number }>();

  constructor(
    readonly path: string,
    opts: {
      /**
       * `full` (default): each batch is on disk before its receipts go out, even across a power loss
       * (one fsync per batch). `normal`: survives a process crash; an OS crash may lose the last
       * batches, whose devices were already told they were stored.
       */
      durability?: 'full' | 'normal';
    } = {},
  ) {
    try {
      // better-sqlite3 (a native addon) loads with the first store, not at import.
      const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
      this.db = new Sqlite(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${opts.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.db.pragma('busy_timeout = 5000');
      this.db.pragma('cache_size = -65536');
    } catch (cause) {
      throw new EdgewardenError('EW_FLEET_STORE', `cannot open SQLite database ${path}`, { cause });
    }
  }

  private get s() {
    if (!this.stmts) throw new EdgewardenError('EW_FLEET_STORE', 'call migrate() before using the store');
    return this.stmts;
  }

  async migrate(): Promise<number> {
    const db = this.db;
    try {
      db.exec(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT, applied_ms INTEGER)',
      );
      const applied = new Set(
        (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
      );
      for (const m of SQLITE_MIGRATIONS) {
        if (applied.has(m.version)) continue;
        db.transaction(() => {
          db.exec(m.sql);
          db.prepare('INSERT INTO schema_migrations (version, description, applied_ms) VALUES (?, ?, ?)').run(
            m.version,
            m.description,
            Date.now(),
          );
        })();
      }
    } catch (cause) {
      throw new EdgewardenError('EW_FLEET_STORE', `SQLite migration failed: ${(cause as Error).message}`, { cause });
    }
    this.stmts = this.prepare();
    const v = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number };
    return v.v;
  }

  private prepare() {
    const db = this.db;
    return {
      ensure: db.prepare('INSERT OR IGNORE INTO devices (id, fleet, first_seen_ms) VALUES (?, ?, ?)'),
      enroll: db.prepare(
        'INSERT OR IGNORE INTO devices (id, fleet, keyid, public_key, status, first_seen_ms) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      setKey: db.prepare('UPDATE devices SET keyid = ?, public_key = ?, status = ? WHERE id = ? AND keyid IS NULL'),
      approve: db.prepare("UPDATE devices SET status = 'approved' WHERE id = ?"),
      device: db.prepare('SELECT * FROM devices WHERE id = ?'),
      devices: db.prepare('SELECT * FROM devices ORDER BY id'),
      birth: db.prepare(
        `UPDATE devices SET bd_seq = @bdSeq, fleet = @fleet, born_ms = @receivedMs, birth_time_ms = @timeMs,
           boot_id = @bootId, dead = 0, death_clean = NULL, died_ms = NULL,
           last_seen_ms = MAX(COALESCE(last_seen_ms, 0), @receivedMs)
         WHERE id = @deviceId AND (bd_seq IS NULL OR bd_seq < @bdSeq OR (bd_seq > @bdSeq AND birth_time_ms < @timeMs))`,
      ),
      death: db.prepare('UPDATE devices SET dead = 1, death_clean = ?, died_ms = ? WHERE id = ? AND bd_seq = ?'),
      insertHb: db.prepare(
        `INSERT OR IGNORE INTO heartbeats (device_id, seq, bd_seq, fleet, time_ms, received_ms, historical, envelope, summary)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      liveUpdate: db.prepare(
        `UPDATE devices SET fleet = @fleet,
           first_seen_ms = COALESCE(first_seen_ms, @receivedMs),
           last_seen_ms = MAX(COALESCE(last_seen_ms, 0), @receivedMs),
           last_hb = CASE WHEN last_seq IS NULL OR last_seq < @seq THEN @summary ELSE last_hb END,
           last_bd_seq = CASE WHEN last_seq IS NULL OR last_seq < @seq THEN @bdSeq ELSE last_bd_seq END,
           last_seq = MAX(COALESCE(last_seq, -1), @seq),
           dead = CASE WHEN bd_seq IS NULL OR bd_seq < @bdSeq THEN 0 ELSE dead END,
           bd_seq = CASE WHEN bd_seq IS NULL OR bd_seq < @bdSeq THEN @bdSeq ELSE bd_seq END
         WHERE id = @deviceId`,
      ),
      storedSeqOf: db.prepare('SELECT stored_seq FROM devices WHERE id = ?').pluck(),
      marks: db.prepare(
        'SELECT stored_seq AS stored, (SELECT MAX(seq) FROM heartbeats WHERE device_id = ?) AS max FROM devices WHERE id = ?',
      ),
      minSeq: db.prepare('SELECT MIN(seq) FROM heartbeats WHERE device_id = ?').pluck(),
      seqsAfter: db
        .prepare('SELECT seq FROM heartbeats WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT 256')
        .pluck(),
      setStoredSeq: db.prepare(
        'UPDATE devices SET stored_seq = ? WHERE id = ? AND (stored_seq IS NULL OR stored_seq < ?)',
      ),
      heartbeats: db.prepare(
        'SELECT device_id, seq, bd_seq, fleet, time_ms, received_ms, historical, summary FROM heartbeats WHERE device_id = ? ORDER BY seq DESC LIMIT ?',
      ),
      countAll: db.prepare('SELECT COUNT(*) FROM heartbeats').pluck(),
      countDevice: db.prepare('SELECT COUNT(*) FROM heartbeats WHERE device_id = ?').pluck(),
      checkpoint: db.prepare(
        'INSERT OR IGNORE INTO checkpoints (device_id, tree_size, root, time_ms) VALUES (?, ?, ?, ?)',
      ),
      checkpointHead: db.prepare(
        'UPDATE devices SET ckpt_size = ?, ckpt_root = ? WHERE id = ? AND (ckpt_size IS NULL OR ckpt_size < ?)',
      ),
      checkpointRoot: db.prepare('SELECT root FROM checkpoints WHERE device_id = ? AND tree_size = ?').pluck(),
      rewritten: db.prepare('UPDATE devices SET history_rewritten = 1 WHERE id = ?'),
      alert: db.prepare('INSERT INTO alerts (time_ms, device_id, code, message) VALUES (?, ?, ?, ?)'),
      alerts: db.prepare('SELECT * FROM alerts ORDER BY id DESC LIMIT ?'),
    };
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async enroll(e: {
    deviceId: string;
    keyid: string;
    publicKey: string;
    status: 'approved' | 'pending';
    nowMs: number;
    fleet?: string;
  }): Promise<DeviceRecord> {
    const s = this.s;
    this.db.transaction(() => {
      s.enroll.run(e.deviceId, e.fleet ?? null, e.keyid, e.publicKey, e.status, e.nowMs);
      s.setKey.run(e.keyid, e.publicKey, e.status, e.deviceId);
    })();
    return rowToDevice(s.device.get(e.deviceId) as Row);
  }

  async approve(deviceId: string): Promise<boolean> {
    return this.s.approve.run(deviceId).changes === 1;
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | undefined> {
    const r = this.s.device.get(deviceId) as Row | undefined;
    return r ? rowToDevice(r) : undefined;
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return (this.s.devices.all() as Row[]).map(rowToDevice);
  }

  async recordBirth(b: {
    deviceId: string;
    fleet: string;
    bdSeq: number;
    timeMs: number;
    receivedMs: number;
    bootId: string;
  }): Promise<BirthOutcome> {
    const s = this.s;
    return this.db.transaction((): BirthOutcome => {
      s.ensure.run(b.deviceId, b.fleet, b.receivedMs);
      if (s.birth.run(b).changes === 1) return 'accepted';
      const cur = s.device.get(b.deviceId) as Row;
      return Number(cur.bd_seq) === b.bdSeq ? 'duplicate' : 'stale';
    })();
  }

  async recordDeath(d: { deviceId: string; bdSeq: number; clean: boolean; receivedMs: number }): Promise<boolean> {
    return this.s.death.run(d.clean ? 1 : 0, d.receivedMs, d.deviceId, d.bdSeq).changes === 1;
  }

  async storeHeartbeats(rows: readonly HeartbeatRow[]): Promise<StoreBatchResult> {
    const s = this.s;
    return this.db.transaction((): StoreBatchResult => {
      const json = new Map<HeartbeatRow, string>();
      const inserted = rows.map((r) => {
        const text = JSON.stringify(r.summary);
        json.set(r, text);
        return (
          s.insertHb.run(
            r.deviceId,
            r.seq,
            r.bdSeq,
            r.fleet,
            r.timeMs,
            r.receivedMs,
            r.historical ? 1 : 0,
            r.envelope,
            text,
          ).changes === 1
        );
      });
      const fresh = rows.filter((_, i) => inserted[i]);
      for (const r of newestPerDevice(fresh).values()) {
        s.ensure.run(r.deviceId, r.fleet, r.receivedMs);
        s.liveUpdate.run({
          deviceId: r.deviceId,
          fleet: r.fleet,
          receivedMs: r.receivedMs,
          seq: r.seq,
          bdSeq: r.bdSeq,
          summary: json.get(r)!,
        });
      }
      const bySeq = new Map<string, number[]>();
      for (const r of rows) {
        const l = bySeq.get(r.deviceId);
        if (l) l.push(r.seq);
        else bySeq.set(r.deviceId, [r.seq]);
      }
      const storedSeq = new Map<string, number>();
      for (const [id, seqs] of bySeq) {
        const seq = this.advanceFast(id, seqs);
        if (seq !== undefined) storedSeq.set(id, seq);
      }
      return { inserted, storedSeq };
    })();
  }

  /**
   * The stored-seq walk without queries in the common case: this store is the only writer of its
   * file, so it keeps each device's stored seq and highest stored seq in memory; only when seqs
   * above the stored one were stored earlier (a gap being filled) does it walk the table.
   */
  private advanceFast(deviceId: string, seqs: readonly number[]): number | undefined {
    let m = this.marks.get(deviceId);
    if (!m) {
      const row = this.s.marks.get(deviceId, deviceId) as { stored: number | null; max: number | null } | undefined;
      if (!row || row.stored === null) {
        const seq = this.advanceStoredSeq(deviceId);
        if (seq === undefined) return undefined;
        m = { stored: seq, max: Number((this.s.marks.get(deviceId, deviceId) as { max: number }).max) };
        this.marks.set(deviceId, m);
        return seq;
      }
      m = { stored: row.stored, max: row.max ?? row.stored };
      this.marks.set(deviceId, m);
    }
    let max = m.max;
    for (const q of seqs) if (q > max) max = q;
    m.max = max;
    let st = m.stored;
    if (max > st) {
      const batch = new Set(seqs);
      while (batch.has(st + 1)) st++;
      if (st < max) st = this.advanceStoredSeq(deviceId) ?? st;
      else if (st > m.stored) this.s.setStoredSeq.run(st, deviceId, st);
      m.stored = st;
    }
    return st;
  }

  /** Walks forward from the device's stored seq over consecutive stored seqs (table scan in pages). */
  private advanceStoredSeq(deviceId: string): number | undefined {
    const s = this.s;
    const cur = s.storedSeqOf.get(deviceId) as number | null | undefined;
    let seq = cur ?? (s.minSeq.get(deviceId) as number | null | undefined);
    if (seq === null || seq === undefined) return undefined;
    for (;;) {
      const next = s.seqsAfter.all(deviceId, seq) as number[];
      let i = 0;
      while (i < next.length && next[i] === seq + 1) seq = next[i++]!;
      if (i < next.length || next.length < 256) break;
    }
    if (cur === null || cur === undefined || seq > cur) s.setStoredSeq.run(seq, deviceId, seq);
    return seq;
  }

  async storedSeq(deviceId: string): Promise<number | undefined> {
    this.marks.delete(deviceId);
    return this.db.transaction(() => this.advanceStoredSeq(deviceId))();
  }

  async skipTo(deviceId: string, seq: number): Promise<number | undefined> {
    this.marks.delete(deviceId);
    return this.db.transaction(() => {
      this.s.setStoredSeq.run(seq - 1, deviceId, seq - 1);
      return this.advanceStoredSeq(deviceId);
    })();
  }

  async listHeartbeats(deviceId: string, limit: number): Promise<StoredHeartbeat[]> {
    return (this.s.heartbeats.all(deviceId, limit) as Row[]).map(rowToHeartbeat);
  }

  async countHeartbeats(deviceId?: string): Promise<number> {
    return Number(deviceId === undefined ? this.s.countAll.get() : this.s.countDevice.get(deviceId));
  }

  async recordCheckpoint(c: { deviceId: string; treeSize: number; rootHash: string; timeMs: number }): Promise<void> {
    const s = this.s;
    this.db.transaction(() => {
      s.checkpoint.run(c.deviceId, c.treeSize, c.rootHash, c.timeMs);
      s.checkpointHead.run(c.treeSize, c.rootHash, c.deviceId, c.treeSize);
    })();
  }

  async checkpointRoot(deviceId: string, treeSize: number): Promise<string | undefined> {
    return (this.s.checkpointRoot.get(deviceId, treeSize) as string | undefined) ?? undefined;
  }

  async flagHistoryRewritten(deviceId: string): Promise<void> {
    this.s.rewritten.run(deviceId);
  }

  async addAlert(a: { timeMs: number; deviceId: string | null; code: string; message: string }): Promise<AlertRecord> {
    const info = this.s.alert.run(a.timeMs, a.deviceId, a.code, a.message);
    return { id: Number(info.lastInsertRowid), ...a };
  }

  async listAlerts(limit: number): Promise<AlertRecord[]> {
    return (this.s.alerts.all(limit) as Row[]).map(rowToAlert);
  }
}
