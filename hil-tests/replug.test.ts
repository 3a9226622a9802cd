// Unplug and replug: the pseudo-terminal goes away and comes back on the same path, 20 times. The
// session must come back each time (reconnect event, then an acknowledged command) and no file
// descriptor may leak (counted in /proc/self/fd before and after).
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SerialTransport } from '../sdk/link/serial-transport';
import { LinkSession } from '../sdk/link/session';
import { waitFor } from './pty/pty-pair';
import { simCTarget, simTsTarget } from './targets';

const fdCount = () => readdirSync('/proc/self/fd').length;
const CYCLES = 20;

for (const target of [simTsTarget, simCTarget]) {
  const skip = target.skip ?? (process.platform !== 'linux' ? 'needs Linux (/proc/self/fd)' : undefined);
  if (skip) console.warn(skip);
  describe.skipIf(skip !== undefined)(`unplug and replug on ${target.name}`, () => {
    it(`comes back after each of ${CYCLES} replugs, leaking no file descriptors`, async () => {
      const before = fdCount();
      const device = await target.start();
      const session = new LinkSession({
        transport: new SerialTransport({ path: device.path }),
        reconnect: { initialDelayMs: 10, maxDelayMs: 100, jitter: 0.2 },
        helloTimeoutMs: 300,
        pingIntervalMs: 0,
      });
      const reasons: string[] = [];
      session.on('disconnect', (d) => reasons.push(d.reason));
      try {
        const first = await session.open();
        const led = first.actuators.find((a) => a.name === 'led')!;
        for (let i = 0; i < CYCLES; i++) {
          const back = session.next('reconnect', 10_000);
          await device.replug!();
          const [info] = await back;
          expect(info.hello.firmwareName).toBe(first.firmwareName);
          await session.command(led.id, i & 1);
        }
        expect(session.stats.reconnects).toBe(CYCLES);
        expect(reasons).toEqual(Array(CYCLES).fill('lost'));
      } finally {
        await session.close();
        await device.stop();
      }
      // Handles close asynchronously in libuv: wait (bounded) for the count to settle.
      await waitFor(() => fdCount() <= before, 5000, `fd count back to ${before}`).catch(() => undefined);
      expect(fdCount()).toBe(before);
    });
  });
}
