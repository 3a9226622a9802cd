import { afterEach, describe, expect, it } from 'vitest';
import { decodeDeviceCommand, decodeReceipt } from '../telemetry/control';
import { type EmbeddedBroker, startEmbeddedBroker } from '../telemetry/embedded-broker';
import type { DeviceView } from './collector';
import { portAnswers, SimDevice, TEST_MOSQUITTO_URL, uniqueName } from './testkit';
import { ManualClock, type Rig, startRig, waitFor } from './testkit-collector';

const mosquitto = await portAnswers(Number(new URL(TEST_MOSQUITTO_URL).port || 1883));
if (!mosquitto) console.warn(`Mosquitto tests skipped: nothing answers at ${TEST_MOSQUITTO_URL}`);

const DIGEST = `sha256:${'07'.repeat(32)}`;

const brokers: { name: string; skip: boolean; url: () => Promise<{ url: string; close(): Promise<void> }> }[] = [
  {
    name: 'embedded aedes',
    skip: false,
    url: async () => {
      const b: EmbeddedBroker = await startEmbeddedBroker();
      return { url: b.url, close: () => b.close() };
    },
  },
  { name: 'Mosquitto', skip: !mosquitto, url: async () => ({ url: TEST_MOSQUITTO_URL, close: async () => {} }) },
];

for (const broker of brokers) {
  describe.skipIf(broker.skip)(`collector over ${broker.name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    async function rig(o: Parameters<typeof startRig>[1] = {}): Promise<Rig> {
      const b = await broker.url();
      cleanups.push(() => b.close());
      const r = await startRig(b.url, o);
      cleanups.push(() => r.close());
      return r;
    }

    it('devices publish; the API shows them online and compliant; receipts follow storage', async () => {
      const fleet = uniqueName('f');
      const clock = new ManualClock();
      const devs = [0, 1, 2].map(() => new SimDevice(fleet, () => clock.now()));
      const r = await rig({ fleet, enroll: devs, clock, policy: { allowedModels: [DIGEST] } });
      const receipts = new Map<string, number>();
      await r.pub.subscribe(`ew/v1/${fleet}/+/receipt`);
      r.pub.on('message', (m) => {
        if (m.topic.endsWith('/receipt')) receipts.set(m.topic.split('/')[3]!, decodeReceipt(m.payload).storedSeq);
      });
      for (const d of devs) {
        await r.send(d.topic('birth'), d.birth());
        await r.send(d.topic('hb'), d.heartbeat());
        await r.send(d.topic('hb'), d.heartbeat());
      }
      expect(r.collector.stats()).toMatchObject({ accepted: 9, heartbeatsAccepted: 6, rejected: {} });
      const { status, body } = await r.get('/api/devices');
      expect(status).toBe(200);
      const list = body as DeviceView[];
      expect(list.map((d) => d.id).sort()).toEqual(devs.map((d) => d.id).sort());
      for (const d of list) {
        expect(d).toMatchObject({ fleet, online: true, compliance: 'compliant', lastSeq: 2, pending: false });
        expect(d.models[0]).toMatchObject({ name: 'vad', digest: DIGEST });
        expect(d.health?.tempMilliC).toBe(45000);
        expect(typeof d.lastSeen).toBe('string');
      }
      await waitFor(() => devs.every((d) => receipts.get(d.id) === 2), 'receipts with storedSeq 2');

      const one = await r.get(`/api/devices/${devs[0]!.id}`);
      expect((one.body as DeviceView).id).toBe(devs[0]!.id);
      const hbs = await r.get(`/api/devices/${devs[0]!.id}/heartbeats?limit=1`);
      expect((hbs.body as { seq: number }[]).map((h) => h.seq)).toEqual([2]);
      expect((await r.get('/api/devices/nope')).status).toBe(404);
      const metrics = (await r.get('/metrics')).text;
      expect(metrics).toMatch(/^edgewarden_heartbeats_accepted_total 6$/m);
      expect(metrics).toMatch(/^edgewarden_devices_online 3$/m);

      // A clean death takes a device offline at once; silence takes the others offline after the timeout.
      await r.send(devs[0]!.topic('death'), devs[0]!.death());
      expect((await r.collector.device(devs[0]!.id))?.online).toBe(false);
      expect((await r.collector.device(devs[1]!.id))?.online).toBe(true);
      clock.advance(36_000);
      await r.collector.tick();
      expect((await r.collector.devices()).every((d) => !d.online)).toBe(true);
      expect((await r.get('/metrics')).text).toMatch(/^edgewarden_devices_online 0$/m);
    });

    it('a device running a model the fleet does not allow is non-compliant, with an alert', async () => {
      const fleet = uniqueName('f');
      const d = new SimDevice(fleet);
      const r = await rig({ fleet, enroll: [d], policy: { allowedModels: [`sha256:${'ab'.repeat(32)}`] } });
      await r.send(d.topic('hb'), d.heartbeat());
      const v = (await r.collector.device(d.id))!;
      expect(v.compliance).toBe('non_compliant');
      expect(v.complianceReasons.join()).toMatch(/model vad .* not allowed/);
      await waitFor(async () => (await r.collector.alerts()).some((a) => a.code === 'non_compliant'), 'an alert');
      // The device's own report counts too.
      await r.send(d.topic('hb'), d.heartbeat({ compliance: { state: 'degraded', reasons: ['thermal'] } }));
      expect((await r.collector.device(d.id))!.complianceReasons.join()).toMatch(/thermal/);
    });

    it('a seq gap is asked for with a backfill command; the receipt moves once it is filled', async () => {
      const fleet = uniqueName('f');
      const clock = new ManualClock();
      const d = new SimDevice(fleet, () => clock.now());
      const r = await rig({ fleet, enroll: [d], clock, gapGraceMs: 1000 });
      const cmds: unknown[] = [];
      const receipts: number[] = [];
      await r.pub.subscribe([d.topic('cmd'), d.topic('receipt')]);
      r.pub.on('message', (m) => {
        if (m.topic.endsWith('/cmd')) cmds.push(decodeDeviceCommand(m.payload));
        else receipts.push(decodeReceipt(m.payload).storedSeq);
      });
      const hb1 = d.heartbeat();
      const hb2 = d.heartbeat();
      const hb3 = d.heartbeat();
      const hb4 = d.heartbeat();
      await r.send(d.topic('hb'), hb1);
      await r.send(d.topic('hb'), hb4);
      await waitFor(() => receipts.length >= 2, 'two receipts');
      expect(receipts).toEqual([1, 1]);
      expect(r.collector.openGaps()).toEqual([{ deviceId: d.id, from: 2, to: 3, asks: 0 }]);
      await r.collector.tick();
      expect(cmds).toEqual([]);
      clock.advance(1500);
      await r.collector.tick();
      await waitFor(() => cmds.length === 1, 'a backfill command');
      expect(cmds[0]).toEqual({ kind: 'backfill', fromSeq: 2, toSeq: 3 });
      await r.send(d.topic('hb'), hb2);
      await r.send(d.topic('hb'), hb3);
      await waitFor(() => receipts.at(-1) === 4, 'receipt for 4');
      clock.advance(1500);
      await r.collector.tick();
      expect(r.collector.openGaps()).toEqual([]);
    });

    it('a gap that is never filled is given up after the configured asks, with an alert', async () => {
      const fleet = uniqueName('f');
      const clock = new ManualClock();
      const d = new SimDevice(fleet, () => clock.now());
      const r = await rig({ fleet, enroll: [d], clock, gapGraceMs: 100, gapMaxAsks: 2 });
      await r.send(d.topic('hb'), d.heartbeat());
      d.seq += 3;
      await r.send(d.topic('hb'), d.heartbeat());
      for (let i = 0; i < 3; i++) {
        clock.advance(200);
        await r.collector.tick();
      }
      expect(r.collector.openGaps()).toEqual([]);
      expect(r.collector.metrics.get('edgewarden_backfill_requests_total')).toBe(2);
      expect((await r.collector.device(d.id))!.storedSeq).toBe(5);
      expect((await r.collector.alerts()).map((a) => a.code)).toContain('heartbeats_lost');
    });

    it('trust on first use: pending until approved, then accepted', async () => {
      const fleet = uniqueName('f');
      const d = new SimDevice(fleet);
      const r = await rig({ fleet, tofu: true });
      await r.send(d.topic('hb'), d.heartbeat());
      expect(r.collector.stats().rejected).toEqual({ EW_FLEET_UNKNOWN_KEY: 1 });
      await r.send(d.topic('birth'), d.birth());
      let view = (await r.collector.device(d.id))!;
      expect(view).toMatchObject({ pending: true, compliance: 'unknown' });
      await r.send(d.topic('hb'), d.heartbeat());
      expect(r.collector.stats().rejected).toEqual({ EW_FLEET_UNKNOWN_KEY: 1, EW_FLEET_PENDING: 1 });
      expect(await r.store.countHeartbeats(d.id)).toBe(0);
      const res = await fetch(`${r.http.url}/api/devices/${d.id}/approve`, { method: 'POST' });
      expect(res.status).toBe(200);
      await r.send(d.topic('hb'), d.heartbeat());
      view = (await r.collector.device(d.id))!;
      expect(view).toMatchObject({ pending: false, lastSeq: 3, online: true });
      expect(await r.store.countHeartbeats(d.id)).toBe(1);
      // A birth without a key from an unknown device is refused in TOFU mode too.
      const other = new SimDevice(fleet);
      await r.send(other.topic('birth'), other.birth({ withKey: false }));
      expect(r.collector.stats().rejected.EW_FLEET_UNKNOWN_KEY).toBe(2);
    });

    it('TOFU approval made by another process (the CLI, through the store) takes effect', async () => {
      const fleet = uniqueName('f');
      const clock = new ManualClock();
      const d = new SimDevice(fleet, () => clock.now());
      const r = await rig({ fleet, tofu: true, clock });
      await r.send(d.topic('birth'), d.birth());
      await r.send(d.topic('hb'), d.heartbeat());
      expect(r.collector.stats().rejected).toEqual({ EW_FLEET_PENDING: 1 });
      expect(await r.store.approve(d.id)).toBe(true);
      clock.advance(1500);
      await r.send(d.topic('hb'), d.heartbeat());
      expect(r.collector.stats().heartbeatsAccepted).toBe(1);
    });

    it('streams heartbeat, device and alert events over SSE', async () => {
      const fleet = uniqueName('f');
      const d = new SimDevice(fleet);
      const r = await rig({ fleet, enroll: [d] });
      const ctrl = new AbortController();
      const res = await fetch(`${r.http.url}/api/events`, { signal: ctrl.signal });
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
      const reader = res.body!.getReader();
      let text = '';
      const reading = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          text += Buffer.from(value).toString();
        }
      })().catch(() => {});
      await waitFor(() => text.includes('edgewarden fleet events'), 'the stream to open');
      await r.send(d.topic('birth'), d.birth());
      await r.send(d.topic('hb'), d.heartbeat());
      await waitFor(() => text.includes('event: heartbeat') && text.includes('event: device'), 'events');
      expect(text).toContain(`"deviceId":"${d.id}"`);
      ctrl.abort();
      await reading;
    });
  });
}
