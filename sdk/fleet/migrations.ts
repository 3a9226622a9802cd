/** One schema step. Versions are applied in order, once, each in its own transaction. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

/** SQLite schema history. Append new versions; never edit an applied one. */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'devices, heartbeats, checkpoints, alerts',
    sql: `
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  fleet TEXT,
  keyid TEXT,
  public_key TEXT,
  status TEXT NOT NULL DEFAULT 'approved',
  first_seen_ms INTEGER,
  bd_seq INTEGER,
  born_ms INTEGER,
  birth_time_ms INTEGER,
  boot_id TEXT,
  dead INTEGER NOT NULL DEFAULT 0,
  death_clean INTEGER,
  died_ms INTEGER,
  last_seen_ms INTEGER,
  last_seq INTEGER,
  last_bd_seq INTEGER,
  last_hb TEXT,
  stored_seq INTEGER,
  history_rewritten INTEGER NOT NULL DEFAULT 0,
  ckpt_size INTEGER,
  ckpt_root TEXT
);
-- A rowid table: rows are about 1 KB (signed bytes and summary), too large for WITHOUT ROWID;
-- inserts append, and the (device_id, seq) uniqueness lives in a small index.
CREATE TABLE heartbeats (
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  bd_seq INTEGER NOT NULL,
  fleet TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  historical INTEGER NOT NULL,
  envelope BLOB NOT NULL,
  summary TEXT NOT NULL,
  UNIQUE (device_id, seq)
);
CREATE TABLE checkpoints (
  device_id TEXT NOT NULL,
  tree_size INTEGER NOT NULL,
  root TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  PRIMARY KEY (device_id, tree_size)
) WITHOUT ROWID;
CREATE TABLE alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  device_id TEXT,
  code TEXT NOT NULL,
  message TEXT NOT NULL
);`,
  },
];

/** PostgreSQL schema history (same shape as SQLite's). */
export const PG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'devices, heartbeats, checkpoints, alerts',
    sql: `
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  fleet TEXT,
  keyid TEXT,
  public_key TEXT,
  status TEXT NOT NULL DEFAULT 'approved',
  first_seen_ms BIGINT,
  bd_seq BIGINT,
  born_ms BIGINT,
  birth_time_ms BIGINT,
  boot_id TEXT,
  dead BOOLEAN NOT NULL DEFAULT FALSE,
  death_clean BOOLEAN,
  died_ms BIGINT,
  last_seen_ms BIGINT,
  last_seq BIGINT,
  last_bd_seq BIGINT,
  last_hb JSONB,
  stored_seq BIGINT,
  history_rewritten BOOLEAN NOT NULL DEFAULT FALSE,
  ckpt_size BIGINT,
  ckpt_root TEXT
);
CREATE TABLE heartbeats (
  device_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  bd_seq BIGINT NOT NULL,
  fleet TEXT NOT NULL,
  time_ms BIGINT NOT NULL,
  received_ms BIGINT NOT NULL,
  historical BOOLEAN NOT NULL,
  envelope BYTEA NOT NULL,
  summary JSONB NOT NULL,
  PRIMARY KEY (device_id, seq)
);
CREATE TABLE checkpoints (
  device_id TEXT NOT NULL,
  tree_size BIGINT NOT NULL,
  root TEXT NOT NULL,
  time_ms BIGINT NOT NULL,
  PRIMARY KEY (device_id, tree_size)
);
CREATE TABLE alerts (
  id BIGSERIAL PRIMARY KEY,
  time_ms BIGINT NOT NULL,
  device_id TEXT,
  code TEXT NOT NULL,
  message TEXT NOT NULL
);`,
  },
];
