// `edgewarden demo` through the built CLI: it runs a broker, a collector with its dashboard and two
// simulated devices, verifies every signed output, and leaves no process, port or folder behind,
// whether it stops by itself (--duration) or on SIGTERM.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { type DemoSummary, startDemo } from '../sdk/demo/demo';
import { freePort } from '../sdk/telemetry/testkit/free-port';
import { CLI, ensureBuilt, ROOT } from './cli-build';

beforeAll(() => {
  ensureBuilt();
}, 240_000);

/** Processes whose command line mentions `text` (the demo's temporary folder). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(text)) found.push(`${pid}: ${cmd}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function runCli(args: string[]): {
  child: ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
} {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', MQTT_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done };
}

async function expectNothingLeft(s: DemoSummary): Promise<void> {
  expect(s.dir).toMatch(/ew-demo-/);
  expect(existsSync(s.dir)).toBe(false);
  expect(processesMentioning(s.dir)).toEqual([]);
  expect(await portIsFree(Number(new URL(s.dashboard).port))).toBe(true);
  expect(await portIsFree(Number(new URL(s.broker).port))).toBe(true);
}

describe('edgewarden demo', () => {
  it('--duration: two devices, every signed output verified, both seen by the collector, nothing left', async () => {
    const { done } = runCli(['demo', '--duration', '4', '--devices', '2', '--json']);
    const r = await done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as DemoSummary;
    expect(s).toMatchObject({ ok: true, allVerified: true, devices: 2, devicesSeen: 2, outputsFailed: 0 });
    // 16 kHz audio in 512-sample windows is 31 windows a second per device: allow for start-up.
    expect(s.outputsSigned).toBeGreaterThan(2 * 31);
    expect(s.outputsVerified).toBe(s.outputsSigned);
    expect(s.windows).toBe(s.outputsSigned);
    expect(s.speechWindows).toBeGreaterThan(0);
    expect(s.speechWindows).toBeLessThan(s.windows);
    expect(s.heartbeatsStored).toBeGreaterThanOrEqual(2 * 3);
    expect(s.perDevice.map((d) => d.errors)).toEqual([[], []]);
    await expectNothingLeft(s);
  }, 40_000);

  it('SIGTERM stops a demo without --duration cleanly: summary printed, nothing left', async () => {
    const port = await freePort();
    const { child, done } = runCli(['demo', '--devices', '1', '--http', `127.0.0.1:${port}`, '--json']);
    const base = `http://127.0.0.1:${port}`;
    // Ready once the collector has a heartbeat that counts inferences (the device is past its start).
    await vi.waitFor(
      async () => {
        const devices = (await (await fetch(`${base}/api/devices`)).json()) as { models: { inferences: number }[] }[];
        expect(devices[0]?.models[0]?.inferences).toBeGreaterThan(0);
      },
      { timeout: 25_000, interval: 200 },
    );
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('/assets/app.js');
    child.kill('SIGTERM');
    const r = await done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as DemoSummary;
    expect(s).toMatchObject({ ok: true, allVerified: true, devices: 1, devicesSeen: 1 });
    expect(s.outputsVerified).toBe(s.outputsSigned);
    await expectNothingLeft(s);
  }, 40_000);
});

describe('demo module', () => {
  it('runs on the TypeScript simulator (where no C compiler is) with every output verified', async () => {
    const demo = await startDemo({ devices: 1, mcu: 'ts-simulator' });
    expect(demo.mcu).toBe('ts-simulator');
    const device = demo.devices[0]!;
    // Bounded wait for the pipeline to produce and verify outputs (about 31 windows a second).
    await vi.waitFor(() => expect(device.stats.verified).toBeGreaterThan(20), { timeout: 10_000, interval: 50 });
    const s = await demo.stop();
    expect(s).toMatchObject({ ok: true, allVerified: true, devicesSeen: 1, mcu: 'ts-simulator', outputsFailed: 0 });
    expect(s.perDevice[0]!.errors).toEqual([]);
    await expectNothingLeft(s);
  }, 30_000);
});
