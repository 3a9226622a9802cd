import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PgStore } from './pg-store';
import { SqliteStore } from './sqlite-store';
import type { Store } from './store';
import { storeSuite } from './store.suite';
import { pgAnswers, TEST_PG_URL, uniqueName } from './testkit';

const dirs = new Map<Store, string>();

storeSuite(
  'SQLite',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ew-store-'));
    const s = new SqliteStore(join(dir, 'fleet.db'));
    dirs.set(s, dir);
    await s.migrate();
    return s;
  },
  async (s) => {
    await s.close();
    rmSync(dirs.get(s)!, { recursive: true, force: true });
  },
);

const hasPg = await pgAnswers();
if (!hasPg) console.warn(`PostgreSQL store tests skipped: nothing answers at ${TEST_PG_URL}`);

describe.skipIf(!hasPg)('PostgreSQL', () => {
  storeSuite(
    'PostgreSQL',
    async () => {
      const s = new PgStore({ connectionString: TEST_PG_URL, schema: uniqueName('ew_test') });
      await s.migrate();
      return s;
    },
    async (s) => {
      await (s as PgStore).dropSchema();
      await s.close();
    },
  );

  it('two stores on one schema (two collectors) store each seq once under concurrency', async () => {
    const schema = uniqueName('ew_test');
    const a = new PgStore({ connectionString: TEST_PG_URL, schema });
    const b = new PgStore({ connectionString: TEST_PG_URL, schema });
    try {
      await Promise.all([a.migrate(), b.migrate()]);
      const mk = (d: string, seq: number) => ({
        deviceId: d,
        fleet: 'f',
        bdSeq: 1,
        seq,
        timeMs: seq,
        receivedMs: seq,
        historical: false,
        envelope: new Uint8Array([seq & 0xff]),
        summary: {} as never,
      });
      // Overlapping batches, in opposite device orders, racing each other.
      const batches = [];
      for (let i = 0; i < 20; i++) {
        const rows = [];
        for (let d = 0; d < 10; d++) rows.push(mk(`d${d}`, i), mk(`d${d}`, i + 1));
        batches.push(a.storeHeartbeats(rows), b.storeHeartbeats([...rows].reverse()));
      }
      const results = await Promise.all(batches);
      const insertedCount = results.reduce((n, r) => n + r.inserted.filter(Boolean).length, 0);
      expect(insertedCount).toBe(10 * 21);
      expect(await a.countHeartbeats()).toBe(210);
      expect(await b.storedSeq('d3')).toBe(20);
    } finally {
      await a.dropSchema();
      await a.close();
      await b.close();
    }
  });
});

describe('SqliteStore errors', () => {
  it('refuses use before migrate and reports a bad path with EW_FLEET_STORE', async () => {
    const s = new SqliteStore(':memory:');
    await expect(s.listDevices()).rejects.toMatchObject({ code: 'EW_FLEET_STORE' });
    await s.close();
    expect(() => new SqliteStore('/nonexistent-dir/x/y.db')).toThrow(
      expect.objectContaining({ code: 'EW_FLEET_STORE' }),
    );
  });
});
