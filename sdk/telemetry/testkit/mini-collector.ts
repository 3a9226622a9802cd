// A minimal collector for telemetry tests: verifies every envelope, records heartbeats, births and
// deaths, and sends cumulative receipts (the highest seq below which nothing is missing).
import { PAYLOAD_TYPES, verifyEnvelope } from '../../provenance/dsse';
import { TrustStore } from '../../provenance/keys';
import type { Signer } from '../../provenance/signer';
import { type DeviceCommand, encodeDeviceCommand, encodeReceipt } from '../control';
import { decodeSignedHeartbeat, type Heartbeat } from '../heartbeat';
import { decodeSignedLifecycle, type LifecycleFields } from '../lifecycle';
import { connectMqtt, type MqttClient, type MqttClientOptions } from '../mqtt-client';
import { deviceTopic, parseDeviceTopic } from '../topics';

export interface MiniCollectorOptions {
  /** Send receipts (default true). */
  receipts?: boolean;
  /** Devices whose envelopes are accepted. */
  devices: Signer[];
  mqtt?: MqttClientOptions;
}

export class MiniCollector {
  readonly heartbeats: Heartbeat[] = [];
  readonly births: Required<LifecycleFields>[] = [];
  readonly deaths: Required<LifecycleFields>[] = [];
  readonly retained: string[] = [];
  /** Heartbeats whose signature did not verify (must stay 0). */
  rejected = 0;
  receiptsEnabled: boolean;
  private readonly trust = new TrustStore();
  private readonly stored = new Map<string, Set<number>>();
  private readonly upTo = new Map<string, number>();
  private waiters: (() => void)[] = [];

  private constructor(
    readonly client: MqttClient,
    o: MiniCollectorOptions,
  ) {
    this.receiptsEnabled = o.receipts ?? true;
    for (const d of o.devices) this.trust.add(d.publicKey);
    client.on('message', (m) => {
      const t = parseDeviceTopic(m.topic);
      if (!t) return;
      if (m.retain) this.retained.push(m.topic);
      try {
        if (t.kind === 'hb') this.onHeartbeat(t.fleet, t.device, m.payload);
        else if (t.kind === 'birth' || t.kind === 'death') {
          const { envelope, lifecycle } = decodeSignedLifecycle(m.payload);
          if (!verifyEnvelope(envelope, this.trust, PAYLOAD_TYPES.lifecycle).ok) this.rejected++;
          else (t.kind === 'birth' ? this.births : this.deaths).push(lifecycle);
        }
      } catch {
        this.rejected++;
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async start(url: string, o: MiniCollectorOptions): Promise<MiniCollector> {
    const client = await connectMqtt(url, { backoff: { initialMs: 20, maxMs: 200 }, ...o.mqtt });
    const c = new MiniCollector(client, o);
    await client.subscribe(['ew/v1/+/+/hb', 'ew/v1/+/+/birth', 'ew/v1/+/+/death']);
    return c;
  }

  /** Distinct seqs stored for a device. */
  seqs(device: string): number[] {
    return [...(this.stored.get(device) ?? [])].sort((a, b) => a - b);
  }

  /** Resolves when `pred` holds (checked after each message), rejects after `timeoutMs`. */
  async until(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async command(fleet: string, device: string, c: DeviceCommand): Promise<void> {
    await this.client.publish(deviceTopic(fleet, device, 'cmd'), encodeDeviceCommand(c));
  }

  async close(): Promise<void> {
    await this.client.end();
  }

  private onHeartbeat(fleet: string, device: string, payload: Uint8Array): void {
    const { envelope, heartbeat } = decodeSignedHeartbeat(payload);
    if (!verifyEnvelope(envelope, this.trust, PAYLOAD_TYPES.heartbeat).ok) {
      this.rejected++;
      return;
    }
    this.heartbeats.push(heartbeat);
    const set = this.stored.get(device) ?? new Set<number>();
    this.stored.set(device, set);
    set.add(heartbeat.seq);
    let up = this.upTo.get(device) ?? 0;
    while (set.has(up + 1)) up++;
    this.upTo.set(device, up);
    if (this.receiptsEnabled && up > 0) {
      this.client
        .publish(
          deviceTopic(fleet, device, 'receipt'),
          encodeReceipt({ storedSeq: up, timeUnixMs: Date.now(), collector: 'mini' }),
        )
        .catch(() => {});
    }
  }
}
