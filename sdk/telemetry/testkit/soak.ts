// Runs a device that publishes continuously while `restart` takes the broker down and up again,
// then checks that the collector stored every seq. Shared by the aedes and Mosquitto restart tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deviceIdOf, KeySigner } from '../../provenance/keys';
import { Telemetry } from '../telemetry';
import { MiniCollector } from './mini-collector';

export interface SoakResult {
  published: number;
  stored: number;
  /** Heartbeats received including re-sends (≥ stored). */
  received: number;
  missing: number[];
  rejected: number;
  restarts: number;
  outboxDepth: number;
}

export async function soakRestarts(
  url: string,
  restart: (i: number) => Promise<void>,
  times: number,
): Promise<SoakResult> {
  const dir = mkdtempSync(join(tmpdir(), 'ew-soak-'));
  const dev = KeySigner.generate();
  const device = deviceIdOf(dev.keyId);
  const col = await MiniCollector.start(url, { devices: [dev], mqtt: { backoff: { initialMs: 10, maxMs: 100 } } });
  const t = await Telemetry.start({
    dir,
    signer: dev,
    fleet: 'soak',
    brokers: [{ url, name: 'b' }],
    backoff: { initialMs: 10, maxMs: 100 },
    receiptTimeoutMs: 300,
    drain: { ratePerS: 2000, burst: 200 },
  });
  let published = 0;
  const timer = setInterval(() => {
    t.publish({ compliance: { state: 'compliant', reasons: [] } }).then(
      (seq) => {
        published = Math.max(published, seq);
      },
      () => {},
    );
  }, 10);
  try {
    for (let i = 0; i < times; i++) {
      const before = col.seqs(device).length;
      await col.until(() => col.seqs(device).length >= before + 3, 15_000, `progress before restart ${i}`);
      await restart(i);
    }
    clearInterval(timer);
    await col.until(() => published > 0 && col.seqs(device).length >= published, 20_000, 'every seq stored');
    await col.until(() => t.stats()[0]!.outboxDepth === 0, 20_000, 'outbox drained by receipts');
    const seqs = new Set(col.seqs(device));
    const missing: number[] = [];
    for (let s = 1; s <= published; s++) if (!seqs.has(s)) missing.push(s);
    return {
      published,
      stored: seqs.size,
      received: col.heartbeats.length,
      missing,
      rejected: col.rejected,
      restarts: times,
      outboxDepth: t.stats()[0]!.outboxDepth,
    };
  } finally {
    clearInterval(timer);
    await t.close();
    await col.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
