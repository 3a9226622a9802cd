import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectMqtt } from '../telemetry/mqtt-client';
import { Collector } from './collector';
import { PgStore } from './pg-store';
import { pgAnswers, portAnswers, SimDevice, TEST_MOSQUITTO_URL, TEST_PG_URL, uniqueName } from './testkit';
import { waitFor, writeEnrollment } from './testkit-collector';

const mosquitto = await portAnswers(Number(new URL(TEST_MOSQUITTO_URL).port || 1883));
const pg = await pgAnswers();
const missing = [!mosquitto && `Mosquitto at ${TEST_MOSQUITTO_URL}`, !pg && `PostgreSQL at ${TEST_PG_URL}`].filter(
  Boolean,
);
if (missing.length) console.warn(`two-collector test skipped: needs ${missing.join(' and ')}`);

describe.skipIf(missing.length > 0)('two collectors, one shared subscription, one PostgreSQL fleet', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('split the messages, store each heartbeat once, and both show the whole fleet', async () => {
    const fleet = uniqueName('shared');
    const group = uniqueName('g');
    const schema = uniqueName('ew_test');
    const dir = mkdtempSync(join(tmpdir(), 'ew-shared-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const devices = Array.from({ length: 20 }, () => new SimDevice(fleet));
    mkdirSync(join(dir, 'enroll'));
    writeEnrollment(join(dir, 'enroll'), devices);

    const collectors: Collector[] = [];
    for (let i = 0; i < 2; i++) {
      const store = new PgStore({ connectionString: TEST_PG_URL, schema });
      const mqtt = await connectMqtt(TEST_MOSQUITTO_URL, { clientId: `${group}-${i}` });
      const c = await Collector.start({
        store,
        mqtt,
        fleet,
        shareGroup: group,
        enrollDir: join(dir, 'enroll'),
        tickMs: 0,
      });
      collectors.push(c);
      cleanups.push(async () => {
        await c.close();
        await mqtt.end();
        if (i === 0) await store.dropSchema();
        await store.close();
      });
    }
    const pub = await connectMqtt(TEST_MOSQUITTO_URL, { clientId: `${group}-devices` });
    cleanups.push(() => pub.end());

    const sent: [string, Uint8Array][] = [];
    for (const d of devices) {
      await pub.publish(d.topic('birth'), d.birth());
      for (let s = 0; s < 5; s++) {
        const hb = d.heartbeat();
        sent.push([d.topic('hb'), hb]);
        await pub.publish(d.topic('hb'), hb);
      }
    }
    const total = () => collectors.reduce((n, c) => n + c.stats().heartbeatsAccepted, 0);
    await waitFor(() => total() === 100, '100 heartbeats accepted in all', 20_000);
    expect(collectors.every((c) => c.stats().heartbeatsAccepted > 0)).toBe(true);

    // Replays land on either collector; the database keeps each seq once.
    for (const [topic, hb] of sent.slice(0, 10)) await pub.publish(topic, hb);
    const replays = () => collectors.reduce((n, c) => n + (c.stats().rejected.EW_FLEET_REPLAY ?? 0), 0);
    await waitFor(() => replays() === 10, '10 replays rejected', 20_000);
    await Promise.all(collectors.map((c) => c.idle()));
    expect(total()).toBe(100);

    const store = new PgStore({ connectionString: TEST_PG_URL, schema });
    cleanups.push(() => store.close());
    expect(await store.countHeartbeats()).toBe(100);
    for (const c of collectors) {
      const list = await c.devices();
      expect(list).toHaveLength(20);
      expect(list.every((d) => d.lastSeq === 5 && d.storedSeq === 5 && d.online && d.compliance === 'compliant')).toBe(
        true,
      );
    }
  });
});
