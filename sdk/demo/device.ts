// One simulated device of the demo: a virtual MCU on a serial link streams audio; the device
// process (the Agent: warden + policy + telemetry, with its `link:` configured to that MCU) runs
// Silero VAD on every window with signed provenance and drives the MCU's LED; every bundle is
// verified as it arrives.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VirtualMcu } from '../../devices/simulator/virtual-mcu';
import { Agent, type AgentDeps } from '../agent/agent';
import { agentConfigSchema } from '../agent/config';
import type { MakerVad, WindowResult } from '../agent/voice-activity';
import type { TensorMap } from '../engine/tensor';
import { tensorsToJson } from '../engine/tensor-json';
import { bundleToJson, type ProvenanceBundle } from '../provenance/bundle';
import { type KeySigner, writeKeyPair } from '../provenance/keys';
import { verifyBundle } from '../provenance/verifier';
import { createMemoryTransportPair } from '../testing/memory-transport';
import { type HostFirmware, startHostFirmware } from './firmware';

/** How the device's MCU is simulated. */
export type McuKind = 'c-host-firmware' | 'ts-simulator';

/** Counters of one demo device. */
export interface DemoDeviceStats {
  id: string;
  mcu: McuKind;
  windows: number;
  speechWindows: number;
  ledChanges: number;
  /** Bundles that resolved (the output's record is signed, or covered by a signed checkpoint). */
  signed: number;
  verified: number;
  failed: number;
  /** First failure codes (at most 5). */
  failures: string[];
  errors: string[];
}

export interface DemoDeviceOptions {
  index: number;
  /** The device home (keys/, audit/, outbox/, policy/). */
  home: string;
  fleet: string;
  brokerUrl: string;
  vadPath: string;
  /** 16 kHz mono audio the microphone hears, looped. */
  audio: Int16Array;
  /** The same audio as a WAV file, for the C firmware. */
  wavPath: string;
  /** The C host firmware binary, or undefined for the TypeScript simulator on an in-memory link. */
  firmware?: string;
  heartbeatSeconds: number;
  /** Where a sample result file (as `edgewarden run --out` writes it) goes after the first verified output. */
  resultPath: string;
  log: (line: string) => void;
}

/** Creates the device identity (keys/device.key, keys/device.pub) before the collector enrolls it. */
export function createDeviceKey(home: string): Promise<KeySigner> {
  return writeKeyPair(join(home, 'keys'), 'device');
}

/** A running demo device. */
export class DemoDevice {
  readonly stats: DemoDeviceStats;
  resultFile: string | undefined;
  private readonly pending = new Set<Promise<void>>();
  private stopping: Promise<void> | undefined;

  private constructor(
    private readonly o: DemoDeviceOptions,
    readonly agent: Agent,
    vad: MakerVad,
    private readonly mcu: { stop(): Promise<void> },
    mcuKind: McuKind,
  ) {
    this.stats = {
      id: agent.warden.deviceId,
      mcu: mcuKind,
      windows: 0,
      speechWindows: 0,
      ledChanges: 0,
      signed: 0,
      verified: 0,
      failed: 0,
      failures: [],
      errors: [],
    };
    vad.on('result', (r) => this.track(r));
    vad.on('led', () => {
      this.stats.ledChanges++;
    });
    vad.on('error', (e) => this.error(e));
  }

  /** Starts the MCU, then the Agent (Silero VAD under the warden, the link to the MCU, heartbeats). */
  static async start(o: DemoDeviceOptions): Promise<DemoDevice> {
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      let mcu: { stop(): Promise<void> };
      let kind: McuKind;
      let port: string;
      let openTransport: AgentDeps['openTransport'];
      if (o.firmware) {
        const fw: HostFirmware = await startHostFirmware(o.firmware, join(o.home, 'mcu.pty'), o.wavPath);
        cleanups.push(() => fw.stop());
        mcu = fw;
        kind = 'c-host-firmware';
        port = fw.path;
      } else {
        const link = createMemoryTransportPair({ seed: o.index + 1 });
        const sim = new VirtualMcu({ transport: link.device, audio: o.audio, imuHz: false, seed: o.index + 1 });
        await sim.start();
        cleanups.push(() => sim.stop());
        mcu = sim;
        kind = 'ts-simulator';
        port = `memory:device-${o.index + 1}`;
        openTransport = () => link.host;
      }
      const config = agentConfigSchema.parse({
        home: o.home,
        fleet: o.fleet,
        models: [{ name: 'vad', path: o.vadPath }],
        provenance: { mode: 'batched', durability: 'group', checkpointEvery: 1000, checkpointMs: 250 },
        heartbeat: { intervalSeconds: o.heartbeatSeconds },
        brokers: [{ url: o.brokerUrl }],
        link: { port, model: 'vad' },
      });
      const agent = await Agent.start(config, { log: o.log, ...(openTransport ? { openTransport } : {}) });
      cleanups.push(() => agent.stop());
      if (!agent.warden.models[0]) throw new Error(`device ${o.index + 1}: Silero VAD did not load (${o.vadPath})`);
      const vad = agent.voiceActivity;
      if (!vad) throw new Error(`device ${o.index + 1}: the link to the ${kind} did not open`);
      const device = new DemoDevice(o, agent, vad, mcu, kind);
      // The first heartbeat goes out now, so the fleet sees the device at once.
      await agent.heartbeatNow();
      return device;
    } catch (e) {
      for (const c of cleanups.reverse()) await c().catch(() => {});
      throw e;
    }
  }

  get id(): string {
    return this.stats.id;
  }

  /** The raw 32-byte public key a verifier trusts. */
  get publicKey(): Uint8Array {
    return this.agent.warden.publicKey;
  }

  private error(e: unknown): void {
    const text = (e as Error)?.message ?? String(e);
    if (this.stats.errors.length < 5) this.stats.errors.push(text);
  }

  private track(r: WindowResult): void {
    this.stats.windows++;
    if (r.speech) this.stats.speechWindows++;
    const p = r.provenance
      .then((bundle) => this.check(bundle, r))
      .catch((e) => this.error(e))
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  private async check(bundle: ProvenanceBundle, r: WindowResult): Promise<void> {
    this.stats.signed++;
    const v = verifyBundle(bundle, r.outputs as TensorMap, { trust: [this.publicKey], inputs: r.inputs });
    if (v.ok) this.stats.verified++;
    else {
      this.stats.failed++;
      if (this.stats.failures.length < 5) this.stats.failures.push(`${v.code}: ${v.message}`);
      return;
    }
    if (this.resultFile === undefined) {
      this.resultFile = this.o.resultPath;
      const model = this.agent.warden.models[0]!;
      const doc = {
        model: { name: model.name, path: model.path, digest: `sha256:${Buffer.from(model.digest).toString('hex')}` },
        deviceId: this.id,
        outputs: tensorsToJson(r.outputs as TensorMap),
        provenance: bundleToJson(bundle),
      };
      await writeFile(this.o.resultPath, `${JSON.stringify(doc, null, 2)}\n`);
    }
  }

  /**
   * Stops in order: a last heartbeat goes out, then the Agent stops its pipeline (the windows already
   * received are processed), closes the link, flushes its audit log (a final checkpoint, so every
   * pending bundle resolves) and sends a clean death; then the MCU stops. Resolves once every bundle
   * is verified.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.agent.heartbeatNow().catch((e) => this.error(e));
      await this.agent.stop().catch((e) => this.error(e));
      await this.mcu.stop().catch((e) => this.error(e));
      while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    })();
    return this.stopping;
  }
}
