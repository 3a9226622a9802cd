import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SimDevice, uniqueName } from '../fleet/testkit';
import { waitFor } from '../fleet/testkit-collector';
import { connectMqtt } from '../telemetry/mqtt-client';
import { fleetApprove, fleetServe, registerFleet, serveOptions } from './fleet';

describe('edgewarden fleet', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });

  it('serve --tofu on the embedded broker; approve from another process admits the device', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ew-cli-fleet-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const db = join(dir, 'fleet.db');
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out.push(String(s));
      return true;
    });
    const running = await fleetServe({ db, tofu: true, http: '127.0.0.1:0', embeddedPort: '0', json: true });
    cleanups.push(() => running.close());
    const info = JSON.parse(out.join(''));
    expect(info).toMatchObject({ embeddedBroker: true, shareGroup: null, enrollment: 'tofu' });
    expect(info.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const fleet = uniqueName('cli');
    const d = new SimDevice(fleet);
    const pub = await connectMqtt(info.broker);
    cleanups.push(() => pub.end());
    await pub.publish(d.topic('birth'), d.birth());
    await pub.publish(d.topic('hb'), d.heartbeat());
    await waitFor(() => running.collector.stats().rejected.EW_FLEET_PENDING === 1, 'a pending rejection');
    const pending = await (await fetch(`${info.http}/api/devices/${d.id}`)).json();
    expect(pending).toMatchObject({ pending: true });

    expect(await fleetApprove(d.id, { db })).toBe(true);
    expect(await fleetApprove('0'.repeat(32), { db })).toBe(false);
    await expect(fleetApprove('not-a-device', { db })).rejects.toMatchObject({ code: 'EW_FLEET_OPTIONS' });

    // The collector re-reads a pending device at most once a second; keep publishing until accepted.
    await waitFor(
      async () => {
        if (running.collector.stats().heartbeatsAccepted > 0) return true;
        await pub.publish(d.topic('hb'), d.heartbeat());
        return false;
      },
      'the approved device to be accepted',
      10_000,
    );
    const list = await (await fetch(`${info.http}/api/devices`)).json();
    expect(list).toEqual([expect.objectContaining({ id: d.id, pending: false, online: true })]);
  });

  it('validates its flags', () => {
    expect(() => serveOptions({ enroll: '/x', tofu: true })).toThrow(
      expect.objectContaining({ code: 'EW_FLEET_OPTIONS' }),
    );
    expect(() => serveOptions({ maxSkewS: 'soon' })).toThrow(expect.objectContaining({ code: 'EW_FLEET_OPTIONS' }));
    expect(() => serveOptions({ http: 'nowhere' })).not.toThrow();
    expect(serveOptions({ allowModel: ['sha256:ab'], maxSkewS: '2', db: 'x.db' })).toMatchObject({
      db: 'x.db',
      maxSkewMs: 2000,
      policy: { allowedModels: ['sha256:ab'] },
    });
  });

  it('approve of an unknown device exits 2 with EW_FLEET_NOT_FOUND', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ew-cli-fleet-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const err: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      err.push(String(s));
      return true;
    });
    const program = new Command().exitOverride();
    registerFleet(program);
    await program.parseAsync(['node', 'edgewarden', 'fleet', 'approve', 'ab'.repeat(16), '--db', join(dir, 'f.db')]);
    expect(process.exitCode).toBe(2);
    expect(err.join('')).toContain('EW_FLEET_NOT_FOUND');
  });
});
