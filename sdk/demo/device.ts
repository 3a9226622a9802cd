// One simulated device of the demo: a virtual MCU on a serial link streams audio; the device
// process (the Agent: warden + policy + telemetry) runs Silero VAD on every window with signed
// provenance and drives the MCU's LED; every bundle is verified as it arrives.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VirtualMcu } from '../../devices/simulator/virtual-mcu';
import { MakerVad, type WindowResult } from '../../examples/maker-vad/maker-vad';
import { Agent } from '../agent/agent';
import { agentConfigSchema } from '../agent/config';
import { tensorsToJson } from '../cli/input-file';
import type { TensorMap } from '../engine/tensor';
import { SerialTransport } from '../link/serial-transport';
import { LinkSession } from '../link/session';
import type { Transport } from '../link/transport';
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
    private readonly session: LinkSession,
    private readonly vad: MakerVad,
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

  /** Starts the Agent (loading Silero VAD under the warden), the MCU and the link, then the VAD pipeline. */
  static async start(o: DemoDeviceOptions): Promise<DemoDevice> {
    const config = agentConfigSchema.parse({
      home: o.home,
      fleet: o.fleet,
      models: [{ name: 'vad', path: o.vadPath }],
      provenance: { mode: 'batched', durability: 'group', checkpointEvery: 1000, checkpointMs: 250 },
      heartbeat: { intervalSeconds: o.heartbeatSeconds },
      brokers: [{ url: o.brokerUrl }],
    });
    const agent = await Agent.start(config, { log: o.log });
    const cleanups: (() => Promise<unknown>)[] = [() => agent.stop()];
    try {
      const model = agent.warden.models[0];
      if (!model) throw new Error(`device ${o.index}: Silero VAD did not load (${o.vadPath})`);
      let transport: Transport;
      let mcu: { stop(): Promise<void> };
      let kind: McuKind;
      if (o.firmware) {
        const fw: HostFirmware = await startHostFirmware(o.firmware, join(o.home, 'mcu.pty'), o.wavPath);
        cleanups.push(() => fw.stop());
        transport = new SerialTransport({ path: fw.path });
        mcu = fw;
        kind = 'c-host-firmware';
      } else {
        const link = createMemoryTransportPair({ seed: o.index + 1 });
        const sim = new VirtualMcu({ transport: link.device, audio: o.audio, imuHz: false, seed: o.index + 1 });
        await sim.start();
        cleanups.push(() => sim.stop());
        transport = link.host;
        mcu = sim;
        kind = 'ts-simulator';
      }
      const session = new LinkSession({ transport });
      cleanups.push(() => session.close());
      await session.open();
      const vad = new MakerVad({ session, model });
      // The first heartbeat goes out now, so the fleet sees the device at once.
      await agent.heartbeatNow();
      return new DemoDevice(o, agent, session, vad, mcu, kind);
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
   * Stops in order: the MCU stops streaming, the windows already received are processed, the link
   * closes, a last heartbeat goes out, then the Agent flushes its audit log (a final checkpoint, so
   * every pending bundle resolves) and sends a clean death. Resolves once every bundle is verified.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.mcu.stop().catch((e) => this.error(e));
      await this.vad.stop().catch((e) => this.error(e));
      await this.session.close().catch((e) => this.error(e));
      await this.agent.heartbeatNow().catch((e) => this.error(e));
      await this.agent.stop().catch((e) => this.error(e));
      while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    })();
    return this.stopping;
  }
}
