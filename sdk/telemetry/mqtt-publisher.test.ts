import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KeySigner } from '../provenance/keys';
import type { Timers } from './backoff';
import { type EmbeddedBroker, startEmbeddedBroker } from './embedded-broker';
import { decodeHeartbeat, type HeartbeatInput } from './heartbeat';
import { connectMqtt } from './mqtt-client';
import { MqttPublisher, type MqttPublisherOptions } from './mqtt-publisher';
import { Telemetry } from './telemetry';
import { MiniCollector } from './testkit/mini-collector';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ew-pub-'));
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function broker(port = 0): Promise<EmbeddedBroker> {
  const b = await startEmbeddedBroker({ port });
  cleanup.push(() => b.close());
  return b;
}

async function collector(url: string, devices: KeySigner[], receipts = true): Promise<MiniCollector> {
  const c = await MiniCollector.start(url, { devices, receipts });
  cleanup.push(() => c.close());
  return c;
}

async function publisher(
  o: Partial<MqttPublisherOptions> & { url: string; signer: KeySigner },
): Promise<MqttPublisher> {
  const p = await MqttPublisher.start({
    fleet: 'lab',
    bootId: new Uint8Array(16).fill(1),
    dir: tmp(),
    mqtt: { backoff: { initialMs: 20, maxMs: 200 } },
    ...o,
  });
  cleanup.push(() => p.close());
  return p;
}

function hb(signer: KeySigner, seq: number, extra: Partial<HeartbeatInput> = {}): HeartbeatInput {
  return {
    deviceKeyid: new Uint8Array(signer.keyId),
    fleet: 'lab',
    bdSeq: 0,
    seq,
    timeUnixMs: 1_800_000_000_000 + seq,
    bootId: new Uint8Array(16).fill(1),
    models: [
      {
        digest: new Uint8Array(32).fill(2),
        name: 'vad',
        inferences: seq,
        blocked: 0,
        errors: 0,
        p50Us: 10,
        p99Us: 20,
        executionProvider: 'cpu',
      },
    ],
    health: { throttled: 0, memTotalBytes: 1, memAvailableBytes: 1, diskFreeBytes: 1, load1Milli: 1, uptimeS: 1 },
    compliance: { state: 'compliant', reasons: [] },
    ...extra,
  };
}

const connected = (p: MqttPublisher) =>
  new Promise<void>((resolve) => (p.stats().connected ? resolve() : p.once('connect', () => resolve())));

describe('MqttPublisher over the embedded broker', () => {
  it('publishes a retained birth with bd_seq and the will fires with the same bd_seq on abrupt loss', async () => {
    const b = await broker();
    const dev = KeySigner.generate();
    const col = await collector(b.url, [dev]);
    const p = await publisher({ url: b.url, signer: dev });
    await connected(p);
    await col.until(() => col.births.length === 1, 5000, 'birth');
    const bd = p.currentBdSeq;
    expect(col.births[0]).toMatchObject({ kind: 'birth', bdSeq: bd, fleet: 'lab' });
    // A late subscriber gets the birth as a retained message.
    const late = await connectMqtt(b.url);
    cleanup.push(() => late.end());
    const retained = new Promise<boolean>((resolve) => late.on('message', (m) => resolve(m.retain)));
    await late.subscribe(`ew/v1/lab/${p.deviceId}/birth`);
    expect(await retained).toBe(true);
    await p.close({ abrupt: true });
    await col.until(() => col.deaths.length === 1, 5000, 'will');
    expect(col.deaths[0]).toMatchObject({ kind: 'death', bdSeq: bd, clean: false });
  });

  it('a clean close sends a clean death with the birth’s bd_seq; bd_seq grows per connection and persists', async () => {
    const b = await broker();
    const dev = KeySigner.generate();
    const col = await collector(b.url, [dev]);
    const dir = tmp();
    const p1 = await MqttPublisher.start({ url: b.url, signer: dev, fleet: 'lab', bootId: new Uint8Array(16), dir });
    await connected(p1);
    const bd1 = p1.currentBdSeq;
    await p1.close();
    await col.until(() => col.deaths.length === 1, 5000, 'clean death');
    expect(col.deaths[0]).toMatchObject({ bdSeq: bd1, clean: true });
    const p2 = await publisher({ url: b.url, signer: dev, dir });
    await connected(p2);
    expect(p2.currentBdSeq).toBe(bd1 + 1);
  });

  it('delivers QoS 1 heartbeats in order; receipts remove them from the outbox, PUBACK alone does not', async () => {
    const b = await broker();
    const dev = KeySigner.generate();
    const col = await collector(b.url, [dev], false);
    const p = await publisher({ url: b.url, signer: dev });
    await connected(p);
    for (let s = 1; s <= 10; s++) await p.publish(hb(dev, s));
    await col.until(() => col.seqs(p.deviceId).length === 10, 5000, '10 heartbeats');
    await col.until(() => p.stats().sent === 10, 5000, '10 PUBACKs');
    expect(p.stats().outboxDepth).toBe(10);
    expect(col.heartbeats.map((h) => h.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(col.heartbeats.every((h) => h.bdSeq === p.currentBdSeq)).toBe(true);
    col.receiptsEnabled = true;
    await p.publish(hb(dev, 11));
    await col.until(() => p.stats().outboxDepth === 0, 5000, 'receipt empties the outbox');
    expect(p.stats().lastReceiptSeq).toBe(11);
    expect(col.rejected).toBe(0);
  });

  it('without receipts a PUBACK removes the heartbeat', async () => {
    const b = await broker();
    const dev = KeySigner.generate();
    const col = await collector(b.url, [dev], false);
    const p = await publisher({ url: b.url, signer: dev, receipts: false });
    await connected(p);
    for (let s = 1; s <= 5; s++) await p.publish(hb(dev, s));
    await col.until(() => p.stats().sent === 5 && p.stats().outboxDepth === 0, 5000, 'PUBACK removal');
    expect(col.seqs(p.deviceId)).toEqual([1, 2, 3, 4, 5]);
  });

  it('drains after an outage in order, marks older entries historical, and re-sends unreceipted ones', async () => {
    const b1 = await startEmbeddedBroker();
    const dev = KeySigner.generate();
    const p = await publisher({ url: b1.url, signer: dev });
    await connected(p);
    const closed = new Promise<void>((r) => p.once('close', () => r()));
    await b1.close();
    await closed;
    for (let s = 1; s <= 30; s++) await p.publish(hb(dev, s));
    expect(p.stats().outboxDepth).toBe(30);
    const b2 = await broker(b1.port);
    const col = await collector(b2.url, [dev]);
    await col.until(() => col.seqs(p.deviceId).length === 30, 10_000, 'drain');
    const order = col.heartbeats.map((h) => h.seq);
    expect(order.slice(0, 30)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(col.heartbeats.filter((h) => h.seq < 30).every((h) => h.historical)).toBe(true);
    expect(col.heartbeats.find((h) => h.seq === 30)?.historical).toBe(false);
    // The queued copies carry the outbox depth at the time they were queued.
    expect(col.heartbeats.find((h) => h.seq === 30)?.outboxDepth).toBe(29);
    await col.until(() => p.stats().outboxDepth === 0, 5000, 'receipts');
  });

  it('paces the drain with the token bucket on the injected clock', async () => {
    const b = await broker();
    const dev = KeySigner.generate();
    let now = 1_000_000;
    const pending: (() => void)[] = [];
    const timers: Timers = {
      setTimeout: (fn) => {
        pending.push(fn);
        return pending.length;
      },
      clearTimeout: () => {},
    };
    const col = await collector(b.url, [dev], false);
    const p = await publisher({
      url: b.url,
      signer: dev,
      drain: { ratePerS: 1, burst: 3 },
      // No receipt timer among the fake timers: PUBACK removes entries here.
      receipts: false,
      clock: { now: () => now, monotonicNs: () => 0n },
      timers,
    });
    await connected(p);
    for (let s = 1; s <= 10; s++) await p.publish(hb(dev, s));
    await col.until(() => col.seqs(p.deviceId).length === 3 && p.stats().sent === 3, 5000, 'burst');
    expect(pending.length).toBeGreaterThan(0);
    expect(col.seqs(p.deviceId)).toEqual([1, 2, 3]);
    // Each tick of 3 s refills the bucket (capped at the burst); the drain advances only when time does.
    for (let sent = 3; sent < 10; ) {
      now += 3_000;
      for (const f of pending.splice(0)) f();
      sent = Math.min(10, sent + 3);
      await col.until(() => col.seqs(p.deviceId).length === sent && p.stats().sent === sent, 5000, `${sent} sent`);
      if (sent < 10) expect(pending.length).toBeGreaterThan(0);
    }
    expect(col.seqs(p.deviceId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('a tighter share level set at run time also applies to heartbeats already queued', async () => {
    const b1 = await startEmbeddedBroker();
    const dev = KeySigner.generate();
    const p = await publisher({ url: b1.url, signer: dev, share: 'full' });
    await connected(p);
    const closed = new Promise<void>((r) => p.once('close', () => r()));
    await b1.close();
    await closed;
    await p.publish(hb(dev, 1));
    p.setShare('summary');
    await p.publish(hb(dev, 2));
    expect(() => p.setShare('everything' as never)).toThrow(expect.objectContaining({ code: 'EW_TELEMETRY_OPTIONS' }));
    const b2 = await broker(b1.port);
    const col = await collector(b2.url, [dev]);
    await col.until(() => col.seqs(p.deviceId).length === 2, 10_000, 'both');
    for (const h of col.heartbeats) {
      expect(h.share).toBe('summary');
      expect(h.health).toBeUndefined();
      expect(h.models[0]!.name).toBe('');
    }
  });

  it('answers rebirth and backfill commands', async () => {
    const b = await broker();
    const dev = KeySigner.generate();
    const col = await collector(b.url, [dev], false);
    const p = await publisher({ url: b.url, signer: dev });
    await connected(p);
    for (let s = 1; s <= 4; s++) await p.publish(hb(dev, s));
    await col.until(() => col.heartbeats.length === 4, 5000, 'four');
    await col.until(() => col.births.length === 1, 5000, 'birth');
    await col.command('lab', p.deviceId, { kind: 'rebirth' });
    await col.until(() => col.births.length === 2, 5000, 'rebirth');
    expect(col.births[1]!.bdSeq).toBe(col.births[0]!.bdSeq);
    await col.command('lab', p.deviceId, { kind: 'backfill', fromSeq: 2, toSeq: 3 });
    await col.until(() => col.heartbeats.length >= 6, 5000, 'backfill');
    expect(col.heartbeats.slice(4, 6).map((h) => h.seq)).toEqual([2, 3]);
  });

  it('re-sends what was PUBACKed but never receipted after the receipt timeout', async () => {
    const b = await broker();
    const dev = KeySigner.generate();
    const col = await collector(b.url, [dev], false);
    const p = await publisher({ url: b.url, signer: dev, receiptTimeoutMs: 200 });
    await connected(p);
    await p.publish(hb(dev, 1));
    await col.until(() => col.heartbeats.length >= 2, 5000, 'a re-send');
    expect(col.heartbeats.slice(0, 2).map((h) => h.seq)).toEqual([1, 1]);
    col.receiptsEnabled = true;
    await col.until(() => p.stats().outboxDepth === 0, 5000, 'receipt');
  });
});

describe('Telemetry (several brokers)', () => {
  it('fans out one heartbeat to each broker at its own share level with its own outbox', async () => {
    const b1 = await broker();
    const b2 = await broker();
    const dev = KeySigner.generate();
    const c1 = await collector(b1.url, [dev]);
    const c2 = await collector(b2.url, [dev]);
    const t = await Telemetry.start({
      dir: tmp(),
      signer: dev,
      fleet: 'lab',
      brokers: [
        { url: b1.url, name: 'owner', share: 'full' },
        { url: b2.url, name: 'community', share: 'summary' },
      ],
      backoff: { initialMs: 20, maxMs: 200 },
    });
    cleanup.push(() => t.close());
    const { models, health, compliance } = hb(dev, 1);
    expect(await t.publish({ models, health, compliance })).toBe(1);
    expect(await t.publish({ models, health, compliance })).toBe(2);
    await c1.until(() => c1.heartbeats.length === 2, 5000, 'owner');
    await c2.until(() => c2.heartbeats.length === 2, 5000, 'community');
    expect(c1.heartbeats[0]).toMatchObject({ share: 'full', seq: 1 });
    expect(c1.heartbeats[0]!.models[0]!.name).toBe('vad');
    expect(c1.heartbeats[0]!.health).toBeDefined();
    expect(c2.heartbeats[0]).toMatchObject({ share: 'summary', seq: 1 });
    expect(c2.heartbeats[0]!.models[0]!.name).toBe('');
    expect(c2.heartbeats[0]!.health).toBeUndefined();
    expect(c2.heartbeats[0]!.compliance.state).toBe('compliant');
    expect(t.stats().map((s) => s.name)).toEqual(['owner', 'community']);
  });

  it('72 h offline on a fake clock: keeps exactly the bound and reports exactly how many were dropped', async () => {
    const dev = KeySigner.generate();
    let now = 1_800_000_000_000;
    const never: Timers = { setTimeout: () => 0, clearTimeout: () => {} };
    const dir = tmp();
    // A port nobody listens on: the device stays offline for the whole run.
    const b = await startEmbeddedBroker();
    await b.close();
    const t = await Telemetry.start({
      dir,
      signer: dev,
      fleet: 'lab',
      brokers: [{ url: b.url, name: 'offline' }],
      outbox: { maxEntries: 500, durability: 'none' },
      clock: { now: () => now, monotonicNs: () => 0n },
      timers: never,
    });
    const beats = (72 * 3600) / 10;
    for (let i = 0; i < beats; i++) {
      await t.publish({ compliance: { state: 'compliant', reasons: [] } });
      now += 10_000;
    }
    const [s] = t.stats();
    expect(s!.outboxDepth).toBe(500);
    expect(s!.dropped).toBe(beats - 500);
    const pub = t.publishers[0] as MqttPublisher;
    const newest = pub.outbox.get(beats)!;
    const last = decodeHeartbeat(newest.payload);
    expect(last).toMatchObject({ seq: beats, dropped: beats - 500, outboxDepth: 499 });
    expect(pub.outbox.first()!.seq).toBe(beats - 499);
    await t.close();
    // The count survives a restart.
    const again = await Telemetry.start({
      dir,
      signer: dev,
      fleet: 'lab',
      brokers: [{ url: b.url, name: 'offline' }],
      timers: never,
    });
    expect(again.stats()[0]).toMatchObject({ outboxDepth: 500, dropped: beats - 500 });
    expect(again.nextSeq).toBe(beats + 1);
    await again.close();
  });
});
