// One behavioural suite for every Store implementation (store.test.ts runs it on SQLite and PostgreSQL).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HeartbeatRow, HeartbeatSummary, Store } from './store';

const summary = (seq: number): HeartbeatSummary => ({
  timeMs: 1000 + seq,
  sdkVersion: '0.1.0',
  bootId: 'aa',
  models: [
    {
      name: 'vad',
      digest: 'sha256:00',
      inferences: seq,
      blocked: 0,
      errors: 0,
      p50Us: 1,
      p99Us: 2,
      executionProvider: 'cpu',
    },
  ],
  policyDigest: '',
  compliance: { state: 'compliant', reasons: [] },
  outboxDepth: 0,
  dropped: 0,
  historical: false,
  share: 'full',
  policyRefusals: [],
  auditAlerts: [],
});

const row = (deviceId: string, seq: number, over: Partial<HeartbeatRow> = {}): HeartbeatRow => ({
  deviceId,
  fleet: 'f1',
  bdSeq: 1,
  seq,
  timeMs: 1000 + seq,
  receivedMs: 2000 + seq,
  historical: false,
  envelope: new Uint8Array([1, 2, seq & 0xff]),
  summary: summary(seq),
  ...over,
});

const enroll = (s: Store, id: string, status: 'approved' | 'pending' = 'approved') =>
  s.enroll({ deviceId: id, keyid: `${id}k`, publicKey: `${id}p`, status, nowMs: 1 });

/** Runs the store contract against fresh stores from `open` (closed and cleaned by `dispose`). */
export function storeSuite(name: string, open: () => Promise<Store>, dispose: (s: Store) => Promise<void>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await dispose(store);
    });

    it('migrates to the latest version and is idempotent', async () => {
      expect(await store.migrate()).toBe(1);
      expect(await store.migrate()).toBe(1);
    });

    it('enrolls a device once; a second enrollment does not change its key or status', async () => {
      const d = await enroll(store, 'd1', 'pending');
      expect(d).toMatchObject({ id: 'd1', keyid: 'd1k', publicKey: 'd1p', status: 'pending' });
      const again = await store.enroll({ deviceId: 'd1', keyid: 'xx', publicKey: 'yy', status: 'approved', nowMs: 2 });
      expect(again).toMatchObject({ keyid: 'd1k', status: 'pending' });
      expect(await store.approve('d1')).toBe(true);
      expect((await store.getDevice('d1'))?.status).toBe('approved');
      expect(await store.approve('nobody')).toBe(false);
      expect(await store.getDevice('nobody')).toBeUndefined();
    });

    it('stores each (device, seq) once and reports duplicates', async () => {
      await enroll(store, 'd1');
      const r1 = await store.storeHeartbeats([row('d1', 1), row('d1', 2)]);
      expect(r1.inserted).toEqual([true, true]);
      const r2 = await store.storeHeartbeats([row('d1', 2), row('d1', 3), row('d1', 3)]);
      expect(r2.inserted).toEqual([false, true, false]);
      expect(await store.countHeartbeats('d1')).toBe(3);
      expect(await store.countHeartbeats()).toBe(3);
    });

    it('tracks the highest contiguous stored seq across gaps and backfill', async () => {
      await enroll(store, 'd1');
      let r = await store.storeHeartbeats([row('d1', 5), row('d1', 6)]);
      expect(r.storedSeq.get('d1')).toBe(6);
      r = await store.storeHeartbeats([row('d1', 9)]);
      expect(r.storedSeq.get('d1')).toBe(6);
      r = await store.storeHeartbeats([row('d1', 7)]);
      expect(r.storedSeq.get('d1')).toBe(7);
      r = await store.storeHeartbeats([row('d1', 8)]);
      expect(r.storedSeq.get('d1')).toBe(9);
      expect(await store.storedSeq('d1')).toBe(9);
      // A duplicate still reports the stored seq (so a receipt can be re-sent).
      r = await store.storeHeartbeats([row('d1', 8)]);
      expect(r.inserted).toEqual([false]);
      expect(r.storedSeq.get('d1')).toBe(9);
    });

    it('skips a gap that will never be filled', async () => {
      await enroll(store, 'd1');
      await store.storeHeartbeats([row('d1', 1), row('d1', 2), row('d1', 5), row('d1', 6)]);
      expect(await store.storedSeq('d1')).toBe(2);
      expect(await store.skipTo('d1', 5)).toBe(6);
      expect((await store.getDevice('d1'))!.storedSeq).toBe(6);
    });

    it('keeps the newest heartbeat as device state and lists history newest first', async () => {
      await enroll(store, 'd1');
      await store.storeHeartbeats([row('d1', 2), row('d1', 1)]);
      await store.storeHeartbeats([row('d1', 0, { receivedMs: 99_999 })]);
      const d = (await store.getDevice('d1'))!;
      expect(d.lastSeq).toBe(2);
      expect(d.lastHeartbeat?.models[0]?.inferences).toBe(2);
      expect(d.lastSeenMs).toBe(99_999);
      expect(d.fleet).toBe('f1');
      const list = await store.listHeartbeats('d1', 2);
      expect(list.map((h) => h.seq)).toEqual([2, 1]);
      expect(list[0]!.summary.models[0]!.name).toBe('vad');
    });

    it('pairs births and deaths by bd_seq', async () => {
      await enroll(store, 'd1');
      const b = { deviceId: 'd1', fleet: 'f1', timeMs: 100, receivedMs: 200, bootId: 'bb' };
      expect(await store.recordBirth({ ...b, bdSeq: 3 })).toBe('accepted');
      expect(await store.recordBirth({ ...b, bdSeq: 3 })).toBe('duplicate');
      expect(await store.recordBirth({ ...b, bdSeq: 2 })).toBe('stale');
      expect(await store.recordDeath({ deviceId: 'd1', bdSeq: 2, clean: false, receivedMs: 300 })).toBe(false);
      expect((await store.getDevice('d1'))!.dead).toBe(false);
      expect(await store.recordDeath({ deviceId: 'd1', bdSeq: 3, clean: true, receivedMs: 300 })).toBe(true);
      expect((await store.getDevice('d1'))!).toMatchObject({ dead: true, deathClean: true, bdSeq: 3 });
      // A device that reset its counter: lower bd_seq, later signed time.
      expect(await store.recordBirth({ ...b, bdSeq: 1, timeMs: 500 })).toBe('accepted');
      expect((await store.getDevice('d1'))!).toMatchObject({ dead: false, bdSeq: 1 });
      // A birth for an unknown device creates it.
      expect(await store.recordBirth({ ...b, deviceId: 'd9', bdSeq: 0 })).toBe('accepted');
      expect((await store.getDevice('d9'))?.bdSeq).toBe(0);
    });

    it('a heartbeat with a newer bd_seq than the birth revives the device', async () => {
      await enroll(store, 'd1');
      await store.recordBirth({ deviceId: 'd1', fleet: 'f1', bdSeq: 1, timeMs: 1, receivedMs: 1, bootId: '' });
      await store.recordDeath({ deviceId: 'd1', bdSeq: 1, clean: true, receivedMs: 2 });
      await store.storeHeartbeats([row('d1', 1, { bdSeq: 2 })]);
      expect((await store.getDevice('d1'))!).toMatchObject({ dead: false, bdSeq: 2, lastBdSeq: 2 });
    });

    it('remembers checkpoints and the largest as the head', async () => {
      await enroll(store, 'd1');
      await store.recordCheckpoint({ deviceId: 'd1', treeSize: 10, rootHash: 'aa', timeMs: 1 });
      await store.recordCheckpoint({ deviceId: 'd1', treeSize: 4, rootHash: 'bb', timeMs: 2 });
      expect(await store.checkpointRoot('d1', 10)).toBe('aa');
      expect(await store.checkpointRoot('d1', 4)).toBe('bb');
      expect(await store.checkpointRoot('d1', 5)).toBeUndefined();
      const d = (await store.getDevice('d1'))!;
      expect([d.checkpointSize, d.checkpointRoot]).toEqual([10, 'aa']);
      await store.flagHistoryRewritten('d1');
      expect((await store.getDevice('d1'))!.historyRewritten).toBe(true);
    });

    it('keeps alerts newest first', async () => {
      const a1 = await store.addAlert({ timeMs: 1, deviceId: 'd1', code: 'EW_X', message: 'one' });
      const a2 = await store.addAlert({ timeMs: 2, deviceId: null, code: 'EW_Y', message: 'two' });
      expect(a2.id).toBeGreaterThan(a1.id);
      expect((await store.listAlerts(10)).map((a) => a.message)).toEqual(['two', 'one']);
      expect(await store.listAlerts(1)).toHaveLength(1);
    });

    it('stores a large batch in one call', async () => {
      const rows: HeartbeatRow[] = [];
      for (let d = 0; d < 50; d++) {
        await enroll(store, `dev${d}`);
        for (let s = 1; s <= 20; s++) rows.push(row(`dev${d}`, s));
      }
      const r = await store.storeHeartbeats(rows);
      expect(r.inserted.every(Boolean)).toBe(true);
      expect(r.storedSeq.get('dev7')).toBe(20);
      expect(await store.countHeartbeats()).toBe(1000);
      expect(await store.listDevices()).toHaveLength(50);
    });
  });
}
