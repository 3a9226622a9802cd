import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedBroker } from '../telemetry/embedded-broker';
import type { DeviceView } from './collector';
import { buildCorpus } from './corpus';
import { portAnswers, SimDevice, TEST_MOSQUITTO_URL, uniqueName } from './testkit';
import { ManualClock, startRig } from './testkit-collector';

const mosquitto = await portAnswers(Number(new URL(TEST_MOSQUITTO_URL).port || 1883));
if (!mosquitto) console.warn(`Mosquitto corpus run skipped: nothing answers at ${TEST_MOSQUITTO_URL}`);

const targets = [
  { name: 'embedded aedes', skip: false },
  { name: 'Mosquitto', skip: !mosquitto },
];

for (const target of targets) {
  describe.skipIf(target.skip)(`forged and malformed messages over ${target.name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    it('rejects every corpus message under its code, accepts none, and keeps serving', async () => {
      let url = TEST_MOSQUITTO_URL;
      if (target.name !== 'Mosquitto') {
        const b = await startEmbeddedBroker();
        cleanups.push(() => b.close());
        url = b.url;
      }
      const fleet = uniqueName('corpus');
      const clock = new ManualClock();
      const now = () => clock.now();
      const [a, b, c] = [new SimDevice(fleet, now), new SimDevice(fleet, now), new SimDevice(fleet, now)];
      const r = await startRig(url, { fleet, enroll: [a, b], clock });
      cleanups.push(() => r.close());

      // Preconditions: births, two heartbeats of a, a checkpoint of size 10 for b.
      b.grow(10);
      for (const [t, p] of [
        [a.topic('birth'), a.birth()],
        [b.topic('birth'), b.birth()],
        [a.topic('hb'), a.heartbeat()],
        [a.topic('hb'), a.heartbeat()],
        [b.topic('hb'), b.heartbeat()],
      ] as const) {
        expect(await r.send(t, p)).toMatchObject({ accepted: true });
      }
      const before = r.collector.stats();
      const storedBefore = await r.store.countHeartbeats();
      const fresh = a.heartbeat();
      const corpus = buildCorpus(a, b, c, clock.now(), fresh);
      expect(corpus.length).toBeGreaterThanOrEqual(40);
      expect(new Set(corpus.map((x) => x.name)).size).toBe(corpus.length);

      const wrong: string[] = [];
      const expected: Record<string, number> = {};
      for (const x of corpus) {
        const out = await r.send(x.topic, x.payload);
        const codes = Array.isArray(x.code) ? x.code : [x.code];
        if (out.accepted || !codes.includes(out.code as never)) wrong.push(`${x.name}: ${JSON.stringify(out)}`);
        else expected[out.code] = (expected[out.code] ?? 0) + 1;
      }
      expect(wrong).toEqual([]);
      const after = r.collector.stats();
      expect(after.accepted).toBe(before.accepted);
      expect(after.errors).toBe(0);
      expect(await r.store.countHeartbeats()).toBe(storedBefore);
      // Every rejection is counted under its code.
      for (const [code, n] of Object.entries(expected)) expect(after.rejected[code]).toBe(n);
      const metrics = (await r.get('/metrics')).text;
      expect(metrics).toMatch(/^edgewarden_heartbeats_rejected_total\{code="EW_FLEET_SIGNATURE"\} \d+$/m);

      // The device whose history contradicts itself is flagged, with an alert.
      const bView = (await r.get(`/api/devices/${b.id}`)).body as DeviceView;
      expect(bView).toMatchObject({ historyRewritten: true, compliance: 'non_compliant' });
      expect((await r.collector.alerts()).map((x) => x.code)).toContain('history_rewritten');

      // Still serving: the untouched valid heartbeat is accepted and the API answers.
      expect(await r.send(a.topic('hb'), fresh)).toMatchObject({ accepted: true });
      const list = (await r.get('/api/devices')).body as DeviceView[];
      expect(list.find((d) => d.id === a.id)).toMatchObject({ lastSeq: 3, online: true, historyRewritten: false });
    });
  });
}
