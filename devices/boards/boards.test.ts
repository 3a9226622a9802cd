import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectBoard } from './detect';
import { readHealth } from './health';

const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name);

describe('detectBoard', () => {
  it.each([
    ['pi3', 'raspberry-pi', 'pi3', 'Raspberry Pi 3 Model B Plus Rev 1.3'],
    ['pi4', 'raspberry-pi', 'pi4', 'Raspberry Pi 4 Model B Rev 1.4'],
    ['pi5', 'raspberry-pi', 'pi5', 'Raspberry Pi 5 Model B Rev 1.0'],
    ['pi-zero-2w', 'raspberry-pi', 'pi-zero-2w', 'Raspberry Pi Zero 2 W Rev 1.0'],
    ['jetson-nano', 'jetson', 'jetson-nano', 'NVIDIA Jetson Nano Developer Kit'],
    ['jetson-xavier-nx', 'jetson', 'jetson-xavier-nx', 'NVIDIA Jetson Xavier NX Developer Kit'],
    ['jetson-orin', 'jetson', 'jetson-orin', 'NVIDIA Jetson AGX Orin Developer Kit'],
    ['generic-x64', 'generic-linux', 'generic', 'Linux computer'],
  ])('recognises %s', async (dir, family, variant, model) => {
    const p = await detectBoard({ root: fixture(dir) });
    expect(p).toMatchObject({ family, variant, model });
    expect(p.unsupported).toBeUndefined();
    expect(p.executionProviders.at(-1)).toBe('cpu');
  });

  it('suggests GPU providers on Jetson and reads the L4T release', async () => {
    const p = await detectBoard({ root: fixture('jetson-xavier-nx') });
    expect(p.executionProviders).toEqual(['tensorrt', 'cuda', 'cpu']);
    expect(p.l4t).toBe('R35.4.1');
    expect(p.cpus).toBe(6);
    expect(p.os).toBe('Ubuntu 20.04.6 LTS');
  });

  it('suggests one intra-op thread on a 2-core machine and more on a 4-core Pi 4', async () => {
    expect((await detectBoard({ root: fixture('generic-x64') })).intraOpThreads).toBe(1);
    expect((await detectBoard({ root: fixture('pi4') })).intraOpThreads).toBe(2);
    expect((await detectBoard({ root: fixture('jetson-orin') })).intraOpThreads).toBe(4);
  });

  it('says a 32-bit OS is not supported', async () => {
    const p = await detectBoard({ root: fixture('pi4-32bit') });
    expect(p.arch).toBe('arm');
    expect(p.unsupported).toMatch(/32-bit.*64-bit OS/);
  });

  it('treats an empty tree as generic Linux', async () => {
    const p = await detectBoard({ root: fixture('does-not-exist'), arch: 'x64' });
    expect(p).toMatchObject({ family: 'generic-linux', arch: 'x64' });
  });
});

describe('readHealth', () => {
  it('decodes Pi under-voltage and throttling, now and since boot', async () => {
    const h = await readHealth({ root: fixture('pi3') });
    expect(h).toMatchObject({
      throttled: 0x50005,
      underVoltageNow: true,
      throttledNow: true,
      underVoltageSinceBoot: true,
      throttledSinceBoot: true,
      tempMilliC: 53300,
    });
    const z = await readHealth({ root: fixture('pi-zero-2w') });
    expect(z).toMatchObject({ underVoltageNow: false, underVoltageSinceBoot: true, throttledSinceBoot: true });
  });

  it('picks the CPU thermal zone among several, and reads memory, load and uptime', async () => {
    const h = await readHealth({ root: fixture('jetson-nano') });
    expect(h.tempMilliC).toBe(41500);
    expect(h.memTotalBytes).toBe(4051236 * 1024);
    expect(h.memAvailableBytes).toBe(Math.floor(4051236 / 2) * 1024);
    expect(h.load1).toBeCloseTo(1.05);
    expect(h.uptimeS).toBe(3600);
    expect(h.throttled).toBe(0);
  });

  it('reports free disk space of a real path', async () => {
    const h = await readHealth({ root: fixture('generic-x64'), diskPath: import.meta.dirname });
    expect(h.diskFreeBytes).toBeGreaterThan(0);
  });
});
