// The C host firmware (devices/firmware, `make host`) as the demo's virtual MCU: it opens a
// pseudo-terminal and streams audio over the real serial protocol, exactly as a board would.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The firmware source folder, found from this module (source tree or bundled into dist/). */
function firmwareDir(): string | undefined {
  let dir = here;
  for (let i = 0; i < 5; i++) {
    const c = join(dir, 'devices', 'firmware');
    if (existsSync(join(c, 'Makefile'))) return c;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; err: string }> {
  return new Promise((resolve) => {
    let err = '';
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs });
    } catch (e) {
      resolve({ ok: false, err: (e as Error).message });
      return;
    }
    child.stderr?.on('data', (c: Buffer) => {
      if (err.length < 4000) err += c.toString();
    });
    child.on('error', (e) => resolve({ ok: false, err: e.message }));
    child.on('close', (code) => resolve({ ok: code === 0, err }));
  });
}

/**
 * The host firmware binary, built with `make -C devices/firmware host` when a C compiler and make
 * are here and it is not built yet. Answers why not when it cannot be had (the demo then uses the
 * TypeScript simulator).
 */
export async function ensureHostFirmware(): Promise<{ bin: string } | { reason: string }> {
  const dir = firmwareDir();
  if (!dir) return { reason: 'devices/firmware is not in this installation' };
  const bin = join(dir, 'build', 'ew-host-fw');
  if (existsSync(bin)) return { bin };
  const [cc, make] = await Promise.all([run('cc', ['--version'], 5000), run('make', ['--version'], 5000)]);
  if (!cc.ok || !make.ok) return { reason: 'no C compiler (cc) and make to build devices/firmware' };
  const built = await run('make', ['-s', '-C', dir, 'host'], 120_000);
  if (!built.ok || !existsSync(bin)) return { reason: `building the host firmware failed: ${built.err.trim()}` };
  return { bin };
}

/** A running host firmware. */
export interface HostFirmware {
  /** The pseudo-terminal, linked at the path given. */
  path: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `ew-host-fw --link PATH --wav WAV`; resolves once the pty link exists. The firmware exits
 * when its stdin closes, so it never outlives this process, even one killed with SIGKILL.
 */
export async function startHostFirmware(bin: string, link: string, wav: string): Promise<HostFirmware> {
  rmSync(link, { force: true });
  // Its own process group: a Ctrl-C in the terminal goes to the demo, which stops it in order.
  const child = spawn(bin, ['--link', link, '--wav', wav, '--exit-on-eof', '--quiet'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout?.resume();
  child.stderr?.resume();
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  child.once('error', () => {
    exited = true;
  });
  const deadline = Date.now() + 5000;
  while (!exited && !existsSync(link)) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('ew-host-fw did not open its pseudo-terminal within 5 s');
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  if (exited) throw new Error('ew-host-fw exited at start');
  return {
    path: link,
    child,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await gone;
        clearTimeout(killer);
      }
      child.stdin?.destroy();
      child.stdout?.destroy();
      child.stderr?.destroy();
      rmSync(link, { force: true });
    },
  };
}
