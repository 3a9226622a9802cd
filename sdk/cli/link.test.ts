// `edgewarden link …` end to end: the commands are bundled with esbuild (only this subcommand, so
// other areas' work in progress cannot break it) and run as real processes on a pty pair.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPtyPair, type PtyPair, ptyRelayKind } from '../../hil-tests/pty/pty-pair';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(root, 'node_modules', '.cache', 'edgewarden-test', `link-cli-${process.pid}.mjs`);

function run(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`link ${args.join(' ')} did not finish in ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  mkdirSync(dirname(cli), { recursive: true });
  await build({
    stdin: {
      contents: `import { Command } from 'commander';
        import { registerLink } from './sdk/cli/link';
        const program = new Command().name('edgewarden').exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2));
        registerLink(program);
        await program.parseAsync(process.argv);`,
      resolveDir: root,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile: cli,
    logLevel: 'error',
  });
});
afterAll(() => rmSync(cli, { force: true }));

describe('edgewarden link', () => {
  it('ports --json prints a JSON array of ports', async () => {
    const r = await run(['link', 'ports', '--json']);
    expect(r.code).toBe(0);
    expect(Array.isArray(JSON.parse(r.stdout))).toBe(true);
  });

  it('monitor on a missing port exits 2 with EW_LINK_OPEN', async () => {
    const r = await run(['link', 'monitor', '/nonexistent/tty', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr.trim()).error.code).toBe('EW_LINK_OPEN');
  });

  const relay = ptyRelayKind();
  if (!relay) console.warn('link simulate/monitor test skipped: needs socat or python3 for a pty pair');
  describe.skipIf(!relay)('simulate and monitor on a pty pair', () => {
    let dir: string;
    let pair: PtyPair;
    let sim: ChildProcess | undefined;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'ew-cli-link-'));
      pair = await openPtyPair(join(dir, 'dev'), join(dir, 'host'));
    });
    afterAll(async () => {
      sim?.kill('SIGTERM');
      await pair?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('monitor --json --hello prints the Hello, 512-sample mic batches and clean counters from link simulate', async () => {
      sim = spawn(process.execPath, [cli, 'link', 'simulate', pair.a, '--imu-hz', '0', '--duration', '20', '--json'], {
        cwd: root,
        stdio: 'ignore',
      });
      const r = await run(['link', 'monitor', pair.b, '--json', '--hello', '--duration', '2', '--stats-every', '0']);
      expect(r.code).toBe(0);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const hello = lines.find((l) => l.type === 'hello');
      expect(hello).toMatchObject({ firmwareName: 'ew-sim', protocolVersion: 1 });
      const batches = lines.filter((l) => l.type === 'sensorBatch');
      expect(batches.length).toBeGreaterThan(5);
      expect(batches[0]).toMatchObject({ sensorId: 1, sampleCount: 512, samplesBytes: 1024 });
      const counters = lines.at(-1).counters;
      expect(counters.frames).toBe(lines.filter((l) => l.type).length);
      expect(counters.crcErrors + counters.cobsErrors + counters.malformed).toBe(0);
    });
  });
});
