// The device side as shipped (telemetry's MqttPublisher with its durable outbox) against the
// collector: receipts drain the outbox, the clean death takes the device offline.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedBroker } from '../telemetry/embedded-broker';
import { MqttPublisher } from '../telemetry/mqtt-publisher';
import { SimDevice, uniqueName } from './testkit';
import { startRig, waitFor } from './testkit-collector';

describe('telemetry publisher → collector', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('stores every heartbeat once; receipts empty the outbox; a clean close is a death', async () => {
    const broker = await startEmbeddedBroker();
    cleanups.push(() => broker.close());
    const fleet = uniqueName('e2e');
    const d = new SimDevice(fleet);
    const r = await startRig(broker.url, { fleet, enroll: [d], clock: undefined });
    cleanups.push(() => r.close());
    const dir = mkdtempSync(join(tmpdir(), 'ew-e2e-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'outbox'));
    const pub = await MqttPublisher.start({
      url: broker.url,
      signer: d.signer,
      fleet,
      bootId: d.bootId,
      dir: join(dir, 'outbox'),
    });
    let closed = false;
    cleanups.push(async () => {
      if (!closed) await pub.close();
    });
    await waitFor(() => pub.stats().connected, 'the publisher to connect');
    for (let i = 0; i < 5; i++) await pub.publish(d.nextInput({ timeUnixMs: Date.now() }));
    await waitFor(() => pub.stats().lastReceiptSeq === 5 && pub.stats().outboxDepth === 0, 'receipts for all five');
    expect(await r.store.countHeartbeats(d.id)).toBe(5);
    expect(await r.collector.device(d.id)).toMatchObject({ online: true, lastSeq: 5, storedSeq: 5, dead: false });
    await pub.close();
    closed = true;
    await waitFor(async () => (await r.collector.device(d.id))?.dead === true, 'the clean death');
    expect((await r.collector.device(d.id))?.online).toBe(false);
    expect(r.collector.stats().rejected).toEqual({});
  });

  it("trust on first use: the publisher's birth names its key; pending until approved, then accepted", async () => {
    const broker = await startEmbeddedBroker();
    cleanups.push(() => broker.close());
    const fleet = uniqueName('tofu');
    const d = new SimDevice(fleet);
    const r = await startRig(broker.url, { fleet, tofu: true, clock: undefined });
    cleanups.push(() => r.close());
    const dir = mkdtempSync(join(tmpdir(), 'ew-e2e-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const pub = await MqttPublisher.start({ url: broker.url, signer: d.signer, fleet, bootId: d.bootId, dir });
    cleanups.push(() => pub.close());
    await waitFor(async () => (await r.collector.device(d.id))?.pending === true, 'the device to enroll as pending');
    await r.collector.approve(d.id);
    await pub.publish(d.nextInput({ timeUnixMs: Date.now() }));
    await waitFor(() => pub.stats().lastReceiptSeq === 1, 'the receipt after approval');
    expect(await r.store.countHeartbeats(d.id)).toBe(1);
  });
});
