import { afterEach, describe, expect, it } from 'vitest';
import { MOSQUITTO_MISSING, type Mosquitto, startMosquitto } from '../../test/mosquitto';
import { type EmbeddedBroker, startEmbeddedBroker } from './embedded-broker';
import { soakRestarts } from './testkit/soak';

if (MOSQUITTO_MISSING) console.warn(`skipping Mosquitto restart tests: ${MOSQUITTO_MISSING}`);

// `npm run soak` sets EW_SOAK_RESTARTS=100; the suite's default keeps the run short.
const RESTARTS = Math.max(20, Number(process.env.EW_SOAK_RESTARTS) || 20);
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('broker restarts while a device publishes: 0 heartbeats missing', () => {
  it('embedded aedes closed and restarted 10 times in process', async () => {
    let b: EmbeddedBroker = await startEmbeddedBroker();
    cleanup.push(() => b.close());
    const port = b.port;
    const r = await soakRestarts(
      b.url,
      async () => {
        await b.close();
        b = await startEmbeddedBroker({ port });
      },
      10,
    );
    console.log(JSON.stringify(r.missing.length === 0 ? { ...r, missing: 0 } : r));
    expect(r.missing).toEqual([]);
    expect(r.rejected).toBe(0);
    expect(r.stored).toBe(r.published);
    expect(r.published).toBeGreaterThan(30);
  });

  it.skipIf(!!MOSQUITTO_MISSING)(
    `private Mosquitto killed with SIGKILL ${RESTARTS / 2} times and SIGTERM ${RESTARTS / 2} times`,
    async () => {
      const m: Mosquitto = await startMosquitto();
      cleanup.push(() => m.stop());
      const r = await soakRestarts(
        m.url,
        async (i) => {
          await m.kill(i % 2 === 0 ? 'SIGKILL' : 'SIGTERM');
          await m.start();
        },
        RESTARTS,
      );
      console.log(JSON.stringify(r.missing.length === 0 ? { ...r, missing: 0 } : r));
      expect(r.missing).toEqual([]);
      expect(r.rejected).toBe(0);
      expect(r.stored).toBe(r.published);
      expect(r.published).toBeGreaterThan(3 * RESTARTS);
    },
  );
});
