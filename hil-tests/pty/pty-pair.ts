import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A connected pair of pseudo-terminals reachable at two fixed paths (symlinks). */
export interface PtyPair {
  readonly a: string;
  readonly b: string;
  /** What provides it: 'socat' or the project's own 'python' relay. */
  readonly kind: PtyRelayKind;
  /** Ends the relay: both ptys go away (like unplugging) and the links are removed. */
  close(): Promise<void>;
}

export type PtyRelayKind = 'socat' | 'python';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/**
 * Which relay this machine can run: socat where installed, else the python3 relay
 * (hil-tests/pty/pty_relay.py); `EW_PTY_RELAY=python|socat` forces one. Undefined: neither.
 */
export function ptyRelayKind(): PtyRelayKind | undefined {
  const forced = process.env.EW_PTY_RELAY;
  if (forced === 'socat' || forced === 'python') return forced;
  if (has('socat')) return 'socat';
  if (has('python3')) return 'python';
  return undefined;
}

// Beside this file; from a bundle (bench/) the file is elsewhere, so fall back to the repository path.
const RELAY = [
  join(dirname(fileURLToPath(import.meta.url)), 'pty_relay.py'),
  join(process.cwd(), 'hil-tests/pty/pty_relay.py'),
].find((p) => existsSync(p));

const linked = (p: string) => {
  try {
    return lstatSync(p).isSymbolicLink() && existsSync(p);
  } catch {
    return false;
  }
};

/** Waits, at most `timeoutMs`, until `cond()` holds (checking every 5 ms). */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Opens a pty pair linked at paths `a` and `b` (any old links there are replaced). */
export async function openPtyPair(a: string, b: string, kind = ptyRelayKind()): Promise<PtyPair> {
  if (!kind) throw new Error('no pty relay: install socat or python3');
  if (kind === 'python' && !RELAY) throw new Error('hil-tests/pty/pty_relay.py not found');
  for (const p of [a, b]) rmSync(p, { force: true });
  const child: ChildProcess =
    kind === 'socat'
      ? spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
          stdio: ['ignore', 'ignore', 'pipe'],
        })
      : spawn('python3', [RELAY!, a, b], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr = (stderr + d).slice(-2000);
  });
  child.stdout?.resume();
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  try {
    await waitFor(() => exited || (linked(a) && linked(b)), 5000, `${kind} to create ${a} and ${b}`);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  if (exited) throw new Error(`${kind} exited before creating the ptys: ${stderr}`);
  return {
    a,
    b,
    kind,
    async close() {
      if (!exited) {
        child.kill('SIGTERM');
        await gone;
      }
      child.stdin?.destroy();
      child.stderr?.destroy();
      child.stdout?.destroy();
      for (const p of [a, b]) rmSync(p, { force: true });
    },
  };
}
