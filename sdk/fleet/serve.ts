import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { EdgewardenError } from '../errors';
import { type EmbeddedBroker, startEmbeddedBroker } from '../telemetry/embedded-broker';
import { connectMqtt, type MqttClient, type MqttClientOptions } from '../telemetry/mqtt-client';
import { Collector, type CollectorOptions } from './collector';
import { type FleetHttpOptions, type FleetHttpServer, parseHostPort, startFleetHttp } from './http';
import { PgStore } from './pg-store';
import { SqliteStore } from './sqlite-store';
import type { Store } from './store';

/** Opens the store a `--db` value names: `postgres://…` → PostgreSQL, anything else → a SQLite file. */
export function openStore(db: string, o: { pgSchema?: string } = {}): Store {
  if (/^postgres(ql)?:\/\//.test(db)) {
    return new PgStore({ connectionString: db, ...(o.pgSchema ? { schema: o.pgSchema } : {}) });
  }
  if (db !== ':memory:') mkdirSync(dirname(db), { recursive: true });
  return new SqliteStore(db);
}

/** Options of {@link serveFleet}. */
export interface ServeFleetOptions extends Omit<CollectorOptions, 'store' | 'mqtt' | 'shareGroup'> {
  /** Broker URL; absent: an embedded broker on 127.0.0.1 (`embeddedPort`, default 1883, else a free port). */
  broker?: string;
  embeddedPort?: number;
  /** Store: a SQLite path or a `postgres://` URL. */
  db: string;
  /** PostgreSQL schema (default public). */
  pgSchema?: string;
  /** `HOST:PORT` of the API (default 127.0.0.1:8080; port 0 = free). */
  http?: string;
  /**
   * Shared-subscription group. Default `edgewarden` on an external broker; never on the embedded
   * one (aedes has no shared subscriptions, and one collector is all it serves).
   */
  shareGroup?: string | null;
  /** MQTT connection options (credentials, TLS, client id). */
  mqtt?: Omit<MqttClientOptions, 'will'>;
  /** Extra HTTP routes (the dashboard mounts itself here). */
  httpExtra?: FleetHttpOptions['extra'];
}

/** A running collector service. */
export interface RunningFleet {
  collector: Collector;
  store: Store;
  http: FleetHttpServer;
  broker: { url: string; embedded: boolean };
  shareGroup: string | undefined;
  close(): Promise<void>;
}

/** Starts everything `edgewarden fleet serve` runs: broker (if embedded), store, collector, HTTP API. */
export async function serveFleet(o: ServeFleetOptions): Promise<RunningFleet> {
  const { host, port } = parseHostPort(o.http ?? '127.0.0.1:8080');
  let embedded: EmbeddedBroker | undefined;
  let store: Store | undefined;
  let mqtt: MqttClient | undefined;
  let collector: Collector | undefined;
  try {
    let url = o.broker;
    if (!url) {
      try {
        embedded = await startEmbeddedBroker({ port: o.embeddedPort ?? 1883 });
      } catch {
        embedded = await startEmbeddedBroker({ port: 0 });
      }
      url = embedded.url;
    }
    const shareGroup = embedded ? undefined : o.shareGroup === null ? undefined : (o.shareGroup ?? 'edgewarden');
    store = openStore(o.db, o.pgSchema ? { pgSchema: o.pgSchema } : {});
    mqtt = await connectMqtt(url, {
      clientId: `edgewarden-collector-${process.pid}-${Date.now().toString(36)}`,
      ...o.mqtt,
    });
    const {
      broker: _b,
      embeddedPort: _p,
      db: _d,
      pgSchema: _s,
      http: _h,
      shareGroup: _g,
      mqtt: _m,
      httpExtra,
      ...rest
    } = o;
    collector = await Collector.start({ ...rest, store, mqtt, ...(shareGroup ? { shareGroup } : {}) });
    const http = await startFleetHttp(collector, { host, port, ...(httpExtra ? { extra: httpExtra } : {}) });
    const c = collector;
    const s = store;
    const m = mqtt;
    const e = embedded;
    return {
      collector: c,
      store: s,
      http,
      broker: { url, embedded: e !== undefined },
      shareGroup,
      async close() {
        await http.close();
        await c.close();
        await m.end();
        await s.close();
        await e?.close();
      },
    };
  } catch (err) {
    await collector?.close().catch(() => {});
    await mqtt?.end().catch(() => {});
    await store?.close().catch(() => {});
    await embedded?.close().catch(() => {});
    if (err instanceof EdgewardenError) throw err;
    throw new EdgewardenError('EW_FLEET_OPTIONS', `fleet serve failed: ${(err as Error)?.message ?? err}`, {
      cause: err,
    });
  }
}
