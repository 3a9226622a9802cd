import { afterEach, describe, expect, it } from 'vitest';
import { createBackoff } from './backoff';
import { type EmbeddedBroker, startEmbeddedBroker } from './embedded-broker';
import { connectMqtt, createMqttClient, type MqttClient, type MqttMessage } from './mqtt-client';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function broker(port = 0): Promise<EmbeddedBroker> {
  const b = await startEmbeddedBroker({ port });
  cleanup.push(() => b.close());
  return b;
}

async function client(url: string, opts: Parameters<typeof connectMqtt>[1] = {}): Promise<MqttClient> {
  const c = await connectMqtt(url, { backoff: { initialMs: 20, maxMs: 100 }, ...opts });
  cleanup.push(() => c.end());
  return c;
}

function nextMessage(c: MqttClient, topic: string, timeoutMs = 5000): Promise<MqttMessage> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no message on ${topic}`)), timeoutMs);
    const on = (m: MqttMessage) => {
      if (m.topic !== topic) return;
      clearTimeout(t);
      c.off('message', on);
      resolve(m);
    };
    c.on('message', on);
  });
}

describe('backoff', () => {
  it('grows exponentially to the ceiling, jitter subtracts up to its fraction, reset starts over', () => {
    const b = createBackoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 }, () => 0);
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000, 1000]);
    b.reset();
    expect(b.next()).toBe(100);
    const j = createBackoff({ initialMs: 100, jitter: 0.5 }, () => 1);
    expect(j.next()).toBe(50);
  });
});

describe('mqtt client over the embedded broker', () => {
  it('publishes QoS 1 and receives on a subscription', async () => {
    const b = await broker();
    const sub = await client(b.url);
    await sub.subscribe('t/#');
    const pub = await client(b.url);
    const got = nextMessage(sub, 't/1');
    await pub.publish('t/1', new Uint8Array([1, 2, 3]));
    const m = await got;
    expect([...m.payload]).toEqual([1, 2, 3]);
    expect(m.qos).toBe(1);
  });

  it('the will fires on abrupt socket loss, not on a clean end', async () => {
    const b = await broker();
    const sub = await client(b.url);
    await sub.subscribe('will/#');
    const dev = await connectMqtt(b.url, { will: { topic: 'will/a', payload: new Uint8Array([7]) } });
    const clean = await connectMqtt(b.url, { will: { topic: 'will/b', payload: new Uint8Array([8]) } });
    const gotA = nextMessage(sub, 'will/a');
    const seen: string[] = [];
    sub.on('message', (m) => seen.push(m.topic));
    await clean.end();
    await dev.end({ abrupt: true });
    expect([...(await gotA).payload]).toEqual([7]);
    expect(seen).not.toContain('will/b');
  });

  it('reconnects with backoff after the broker restarts, re-subscribes, and asks for the will each attempt', async () => {
    const b1 = await startEmbeddedBroker();
    let wills = 0;
    const c = createMqttClient(b1.url, {
      backoff: { initialMs: 10, maxMs: 50 },
      will: () => ({ topic: `w/${++wills}`, payload: new Uint8Array(0) }),
    });
    cleanup.push(() => c.end());
    await c.waitConnected(5000);
    await c.subscribe('x');
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    await b1.close();
    await closed;
    await expect(c.publish('x', new Uint8Array([1]))).rejects.toMatchObject({ code: 'EW_TELEMETRY_NOT_CONNECTED' });
    const b2 = await broker(b1.port);
    await c.waitConnected(5000);
    expect(wills).toBeGreaterThanOrEqual(2);
    const got = nextMessage(c, 'x');
    const other = await client(b2.url);
    await other.publish('x', new Uint8Array([9]));
    expect([...(await got).payload]).toEqual([9]);
  });

  it('aedes refuses MQTT 5: connectMqtt rejects with EW_TELEMETRY_CONNECT', async () => {
    const b = await broker();
    await expect(connectMqtt(b.url, { protocolVersion: 5, timeoutMs: 1500 })).rejects.toMatchObject({
      code: 'EW_TELEMETRY_CONNECT',
    });
  });

  it('schedules reconnects on the injected timers with exponential backoff and the injected jitter', async () => {
    const b = await broker();
    const port = b.port;
    await b.close();
    const delays: number[] = [];
    const fire: (() => void)[] = [];
    const c = createMqttClient(`mqtt://127.0.0.1:${port}`, {
      backoff: { initialMs: 100, maxMs: 400, factor: 2, jitter: 0.5 },
      random: () => 0.5,
      timers: {
        setTimeout: (fn, ms) => {
          delays.push(ms);
          fire.push(fn);
          return fire.length;
        },
        clearTimeout: () => {},
      },
    });
    cleanup.push(() => c.end());
    for (let i = 0; i < 4; i++) {
      // Each refused attempt schedules exactly one timer; nothing reconnects until it fires.
      await new Promise<void>((resolve) => c.once('reconnecting', () => resolve()));
      fire.shift()!();
    }
    expect(delays.slice(0, 4)).toEqual([75, 150, 300, 300]);
    expect(c.connected).toBe(false);
  });

  it('rejects a bad URL with EW_TELEMETRY_OPTIONS', () => {
    expect(() => createMqttClient('http://x')).toThrow(expect.objectContaining({ code: 'EW_TELEMETRY_OPTIONS' }));
  });
});
