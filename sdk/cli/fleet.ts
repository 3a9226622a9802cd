import { join } from 'node:path';
import type { Command } from 'commander';
import { EdgewardenError } from '../errors';
import { openStore, type RunningFleet, type ServeFleetOptions, serveFleet } from '../fleet/serve';
import { action, EXIT, emit, paint, resolveHome } from './common';

/** Options of `edgewarden fleet serve` as commander parses them. */
export interface FleetServeFlags {
  broker?: string;
  db?: string;
  http?: string;
  enroll?: string;
  tofu?: boolean;
  fleet?: string;
  shareGroup?: string;
  allowModel?: string[];
  maxSkewS?: string;
  offlineAfterS?: string;
  username?: string;
  password?: string;
  embeddedPort?: string;
  home?: string;
  json?: boolean;
}

/** The fleet database when --db is not given: `<home>/fleet/fleet.db`. */
export function defaultFleetDb(home?: string): string {
  return join(resolveHome(home), 'fleet', 'fleet.db');
}

const seconds = (flag: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new EdgewardenError('EW_FLEET_OPTIONS', `${flag} wants seconds, got ${v}`);
  return n * 1000;
};

/** Turns CLI flags into {@link serveFleet} options (validated). */
export function serveOptions(f: FleetServeFlags): ServeFleetOptions {
  if (f.enroll && f.tofu) throw new EdgewardenError('EW_FLEET_OPTIONS', 'use --enroll DIR or --tofu, not both');
  const o: ServeFleetOptions = { db: f.db ?? defaultFleetDb(f.home), http: f.http ?? '127.0.0.1:8080' };
  if (f.broker) o.broker = f.broker;
  if (f.enroll) o.enrollDir = f.enroll;
  if (f.tofu) o.tofu = true;
  if (f.fleet) o.fleet = f.fleet;
  if (f.shareGroup) o.shareGroup = f.shareGroup;
  if (f.allowModel?.length) o.policy = { allowedModels: f.allowModel };
  const skew = seconds('--max-skew-s', f.maxSkewS);
  if (skew !== undefined) o.maxSkewMs = skew;
  const offline = seconds('--offline-after-s', f.offlineAfterS);
  if (offline !== undefined) o.offlineAfterMs = offline;
  if (f.embeddedPort !== undefined) {
    const p = Number(f.embeddedPort);
    if (!Number.isInteger(p) || p < 0 || p > 65535) {
      throw new EdgewardenError('EW_FLEET_OPTIONS', `--embedded-port wants a port, got ${f.embeddedPort}`);
    }
    o.embeddedPort = p;
  }
  if (f.username !== undefined || f.password !== undefined) {
    o.mqtt = {
      ...(f.username !== undefined ? { username: f.username } : {}),
      ...(f.password !== undefined ? { password: f.password } : {}),
    };
  }
  return o;
}

/** Starts the collector service and reports where it listens. */
export async function fleetServe(f: FleetServeFlags): Promise<RunningFleet> {
  const running = await serveFleet(serveOptions(f));
  const info = {
    broker: running.broker.url,
    embeddedBroker: running.broker.embedded,
    shareGroup: running.shareGroup ?? null,
    http: running.http.url,
    db: running.store.kind === 'sqlite' ? (f.db ?? defaultFleetDb(f.home)) : 'postgres',
    enrollment: f.enroll ? 'allowlist' : f.tofu ? 'tofu' : 'store',
    fleet: f.fleet ?? '+',
  };
  emit(f.json, info, () =>
    [
      `${paint(process.stdout, 'green', 'fleet collector running')}`,
      `  broker   ${info.broker}${info.embeddedBroker ? ' (embedded)' : ''}${info.shareGroup ? ` shared as $share/${info.shareGroup}` : ''}`,
      `  api      ${info.http}/api/devices   metrics ${info.http}/metrics`,
      `  store    ${info.db}`,
      `  devices  ${info.enrollment === 'allowlist' ? `allowlist ${f.enroll}` : info.enrollment === 'tofu' ? 'trust on first use (approve with: edgewarden fleet approve DEVICE)' : 'enrolled in the store'}`,
    ].join('\n'),
  );
  return running;
}

/** Approves a device waiting after trust-on-first-use. */
export async function fleetApprove(device: string, f: { db?: string; home?: string }): Promise<boolean> {
  if (!/^[0-9a-f]{32}$/.test(device)) {
    throw new EdgewardenError(
      'EW_FLEET_OPTIONS',
      `a device id is 32 lowercase hex characters, got ${JSON.stringify(device)}`,
    );
  }
  const store = openStore(f.db ?? defaultFleetDb(f.home));
  try {
    await store.migrate();
    return await store.approve(device);
  } finally {
    await store.close();
  }
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Registers `edgewarden fleet serve` and `edgewarden fleet approve`. */
export function registerFleet(program: Command): void {
  const fleet = program.command('fleet').description('The fleet collector: verify, store and serve device heartbeats.');
  fleet
    .command('serve')
    .description('Run the collector: subscribe, verify, store, and serve the JSON API and /metrics.')
    .option('--broker <url>', 'MQTT broker URL (default: an embedded broker on 127.0.0.1:1883)')
    .option('--db <file|url>', 'SQLite file or postgres:// URL (default: $EDGEWARDEN_HOME/fleet/fleet.db)')
    .option('--http <host:port>', 'API address', '127.0.0.1:8080')
    .option('--enroll <dir>', 'allowlist: a directory of device public keys')
    .option('--tofu', 'trust on first use: new devices wait in pending until approved')
    .option('--fleet <name>', 'serve one fleet (default: all)')
    .option('--share-group <group>', 'shared-subscription group on an external broker (default: edgewarden)')
    .option('--allow-model <digest>', 'allowed model digest (sha256:<hex>); repeat for more', collect)
    .option('--max-skew-s <seconds>', 'allowed future clock skew of signed timestamps (default 300)')
    .option('--offline-after-s <seconds>', 'silence after which a device is offline (default 35)')
    .option('--embedded-port <port>', 'port of the embedded broker (default 1883, else a free one)')
    .option('--username <name>', 'MQTT username')
    .option('--password <password>', 'MQTT password')
    .option('--home <dir>', 'edgewarden home (for the default database)')
    .option('--json', 'machine-readable output')
    .action(
      action(async (f: FleetServeFlags) => {
        const running = await fleetServe(f);
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        await running.close();
        return EXIT.ok;
      }),
    );
  fleet
    .command('approve')
    .argument('<device>', 'device id (32 hex characters)')
    .description('Approve a device that enrolled itself by trust on first use.')
    .option('--db <file|url>', 'SQLite file or postgres:// URL (default: $EDGEWARDEN_HOME/fleet/fleet.db)')
    .option('--home <dir>', 'edgewarden home (for the default database)')
    .option('--json', 'machine-readable output')
    .action(
      action(async (device: string, f: { db?: string; home?: string; json?: boolean }) => {
        const ok = await fleetApprove(device, f);
        if (!ok) {
          throw new EdgewardenError('EW_FLEET_NOT_FOUND', `no device ${device} in ${f.db ?? defaultFleetDb(f.home)}`);
        }
        emit(f.json, { approved: device }, `approved ${device}`);
        return EXIT.ok;
      }),
    );
}
