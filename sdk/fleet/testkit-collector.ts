// Test-only: a collector wired to a real broker, a temporary SQLite store and its HTTP API.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectMqtt, type MqttClient } from '../telemetry/mqtt-client';
import type { Clock } from '../util/clock';
import { Collector, type CollectorOptions, type HandleOutcome } from './collector';
import { type FleetHttpServer, startFleetHttp } from './http';
import { SqliteStore } from './sqlite-store';
import type { Store } from './store';
import type { SimDevice } from './testkit';

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(public ms = Date.now()) {}
  now(): number {
    return this.ms;
  }
  monotonicNs(): bigint {
    return BigInt(this.ms) * 1_000_000n;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** Polls `cond` every 5 ms until it holds; throws after `timeoutMs` with `what`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface Rig {
  collector: Collector;
  store: Store;
  http: FleetHttpServer;
  /** The collector's own MQTT connection. */
  mqtt: MqttClient;
  /** A second connection the test publishes devices' messages on. */
  pub: MqttClient;
  clock: ManualClock;
  dir: string;
  get(path: string): Promise<{ status: number; body: unknown; text: string }>;
  /** Publishes and waits until the collector handled it; resolves with what became of it. */
  send(topic: string, payload: Uint8Array): Promise<HandleOutcome>;
  close(): Promise<void>;
}

/** Writes devices' public keys into an enrollment directory. */
export function writeEnrollment(dir: string, devices: SimDevice[]): void {
  for (const d of devices) writeFileSync(join(dir, `${d.id}.pub`), d.signer.publicKeyPem());
}

/** Starts a collector on `url` with a fresh SQLite store (unless one is given). */
export async function startRig(
  url: string,
  o: Partial<CollectorOptions> & { enroll?: SimDevice[]; clock?: ManualClock } = {},
): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'ew-fleet-'));
  const clock = o.clock ?? new ManualClock();
  const store = o.store ?? new SqliteStore(join(dir, 'fleet.db'));
  let enrollDir: string | undefined;
  if (o.enroll) {
    enrollDir = join(dir, 'enroll');
    (await import('node:fs')).mkdirSync(enrollDir);
    writeEnrollment(enrollDir, o.enroll);
  }
  const mqtt = await connectMqtt(url, { clientId: `ew-collector-${Math.random().toString(16).slice(2)}` });
  const pub = await connectMqtt(url, { clientId: `ew-devices-${Math.random().toString(16).slice(2)}` });
  const { enroll: _e, ...rest } = o;
  const collector = await Collector.start({
    tickMs: 0,
    onlineSweepMs: 0,
    ...rest,
    store,
    mqtt,
    clock,
    ...(enrollDir ? { enrollDir } : {}),
  });
  const http = await startFleetHttp(collector);
  let handled = 0;
  let arrived = 0;
  const outcomes: HandleOutcome[] = [];
  // The subscription handler calls this.handle, so an instance wrapper sees every message.
  const origHandle = collector.handle.bind(collector);
  collector.handle = async (t, p) => {
    const i = arrived++;
    const r = await origHandle(t, p);
    outcomes[i] = r;
    handled++;
    return r;
  };
  return {
    collector,
    store,
    http,
    mqtt,
    pub,
    clock,
    dir,
    async get(path) {
      const res = await fetch(`${http.url}${path}`);
      const text = await res.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: res.status, body, text };
    },
    async send(topic, payload) {
      const target = handled + 1;
      await pub.publish(topic, payload, { qos: 1 });
      await waitFor(() => handled >= target, `collector to handle a message on ${topic}`);
      return outcomes[target - 1]!;
    },
    async close() {
      await http.close();
      await collector.close();
      await pub.end();
      await mqtt.end();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
