import { describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { applyChannelFaults, createMemoryTransportPair, seededRandom } from './memory-transport';

const settle = () => new Promise<void>((r) => setImmediate(r));

describe('in-memory transport pair', () => {
  it('delivers what one end writes to the other, in order, only while that end is open', async () => {
    const link = createMemoryTransportPair();
    const got: number[] = [];
    link.device.on('data', (c) => got.push(...c));
    await link.host.open();
    await link.host.write(Uint8Array.from([1, 2]));
    await settle();
    expect(got).toEqual([]);
    await link.device.open();
    await link.host.write(Uint8Array.from([3]));
    await link.host.write(Uint8Array.from([4, 5]));
    await settle();
    expect(got).toEqual([3, 4, 5]);
  });

  it('unplug closes both ends with EW_LINK_DISCONNECTED and refuses open() until replug', async () => {
    const link = createMemoryTransportPair();
    await link.host.open();
    await link.device.open();
    const errors: (Error | undefined)[] = [];
    link.host.on('close', (e) => errors.push(e));
    link.unplug();
    expect(isEdgewardenError(errors[0], 'EW_LINK_DISCONNECTED')).toBe(true);
    expect(link.device.isOpen).toBe(false);
    expect(isEdgewardenError(await link.host.open().catch((e) => e), 'EW_LINK_OPEN')).toBe(true);
    link.replug();
    await link.host.open();
    expect(link.host.isOpen).toBe(true);
    expect(isEdgewardenError(await link.device.write(new Uint8Array(1)).catch((e) => e), 'EW_LINK_NOT_OPEN')).toBe(
      true,
    );
  });

  it('flips bits at the configured rate, reproducibly for a seed, and stalls on demand', async () => {
    const data = new Uint8Array(100_000);
    const a = applyChannelFaults(data, { bitErrorRate: 1e-3 }, seededRandom(5));
    const flips = a.reduce((n, b) => n + b.toString(2).replaceAll('0', '').length, 0);
    expect(flips).toBeGreaterThan(700);
    expect(flips).toBeLessThan(900);
    expect(applyChannelFaults(data, { bitErrorRate: 1e-3 }, seededRandom(5))).toEqual(a);
    expect(data.every((b) => b === 0)).toBe(true);
    expect(applyChannelFaults(data, { stalled: true }, seededRandom(1)).length).toBe(0);
    const g = applyChannelFaults(Uint8Array.from([7]), { garbageRate: 1, garbageMaxBytes: 4 }, seededRandom(1));
    expect(g.length).toBeGreaterThan(1);
    expect(g.at(-1)).toBe(7);
  });
});
