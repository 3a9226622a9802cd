import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceIdOf, writeKeyPair } from '../provenance/keys';
import { startEmbeddedBroker } from './embedded-broker';
import { freePortUrl } from './testkit/free-port';
import { MiniCollector } from './testkit/mini-collector';

const here = fileURLToPath(new URL('.', import.meta.url));
let work: string;
let script: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ew-kill-'));
  script = join(work, 'device-child.mjs');
  // The child runs the real TypeScript sources, bundled once (node cannot import them directly).
  await build({
    entryPoints: [join(here, 'testkit', 'device-child.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: script,
    logLevel: 'silent',
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Runs the device child; resolves `until(line)` when stdout shows a line starting with it. */
function device(dir: string, keyFile: string, url: string, count: number) {
  const child: ChildProcess = spawn(process.execPath, [script, dir, keyFile, url, String(count)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiters: { prefix: string; resolve: (l: string) => void }[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of waiters.filter((x) => line.startsWith(x.prefix))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    lines,
    exited,
    until(prefix: string, timeoutMs = 15_000): Promise<string> {
      const seen = lines.find((l) => l.startsWith(prefix));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`device never printed ${prefix}`)), timeoutMs);
        waiters.push({
          prefix,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      });
    },
    async kill(signal: NodeJS.Signals) {
      child.kill(signal);
      await exited;
    },
  };
}

describe('device process killed with SIGKILL', () => {
  it('with a full outbox: after restarts the outbox drains and the collector has every seq', async () => {
    const dir = join(work, 'home');
    const signer = await writeKeyPair(join(work, 'keys'), 'device');
    const keyFile = join(work, 'keys', 'device.key');
    const id = deviceIdOf(signer.keyId);
    const offline = await freePortUrl();
    // 1: offline, fills its outbox with 300 heartbeats, killed.
    const d1 = device(dir, keyFile, offline.url, 300);
    await d1.until('done');
    await d1.kill('SIGKILL');
    expect(d1.lines).toContain('queued 300');

    const b = await startEmbeddedBroker({ port: offline.port });
    const col = await MiniCollector.start(b.url, { devices: [signer] });
    try {
      // 2: online, killed in the middle of draining (after the collector stored some of the backlog).
      const d2 = device(dir, keyFile, b.url, 50);
      expect(await d2.until('start')).toMatch(/^start 301 /);
      await col.until(() => col.seqs(id).length >= 60, 15_000, 'part of the drain');
      const birth2 = col.births.at(-1)!;
      await d2.kill('SIGKILL');
      // The kill drops the socket: the broker publishes the will, with the birth's bd_seq.
      await col.until(() => col.deaths.some((d) => d.bdSeq === birth2.bdSeq), 10_000, 'will after SIGKILL');
      expect(col.deaths.find((d) => d.bdSeq === birth2.bdSeq)!.clean).toBe(false);
      const queued2 = Math.max(300, ...d2.lines.filter((l) => l.startsWith('queued')).map((l) => Number(l.slice(7))));
      // 3: restarts, queues 20 more, drains everything.
      const d3 = device(dir, keyFile, b.url, 20);
      const start3 = Number((await d3.until('start')).split(' ')[1]);
      expect(start3).toBe(queued2 + 1);
      await d3.until('done');
      const last = start3 + 19;
      await col.until(() => col.seqs(id).length === last, 20_000, `all ${last} seqs`);
      await d3.until('depth 0', 20_000);
      await d3.kill('SIGTERM');
      // SIGTERM closes cleanly: a clean death with the last birth's bd_seq.
      const birth3 = col.births.at(-1)!;
      await col.until(() => col.deaths.some((d) => d.bdSeq === birth3.bdSeq && d.clean), 10_000, 'clean death');
      const seqs = col.seqs(id);
      expect(seqs).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      expect(col.rejected).toBe(0);
      // Duplicates may arrive (a receipt lost to a kill); the collector dedupes by seq.
      expect(col.heartbeats.length).toBeGreaterThanOrEqual(last);
    } finally {
      await col.close();
      await b.close();
    }
  });
});
