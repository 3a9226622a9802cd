// The targets of the HIL suite: the same tests run against each one.
//  - sim-ts:   the TypeScript virtual MCU behind a pseudo-terminal pair (socat or the python relay)
//  - sim-c:    the C firmware's host build (devices/firmware/build/ew-host-fw), which serves its own pty
//  - hardware: a real board on HIL_PORT at HIL_BAUD
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSpeechLike } from '../devices/simulator/audio-gen';
import { VirtualMcu } from '../devices/simulator/virtual-mcu';
import { DEFAULT_BAUD_RATE, SerialTransport } from '../sdk/link/serial-transport';
import { openPtyPair, type PtyPair, ptyRelayKind, waitFor } from './pty/pty-pair';

// The repository root; from a bundle (bench/) this file's URL points elsewhere, so fall back to the cwd.
const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = existsSync(join(here, 'devices/firmware')) ? here : process.cwd();

/** A running device the host can open at `path`. */
export interface TargetDevice {
  path: string;
  baudRate: number;
  /** Simulates unplug + replug: the pty goes away and comes back on the same path (simulated targets only). */
  replug?: () => Promise<void>;
  stop(): Promise<void>;
}

export interface HilTarget {
  name: string;
  /** Why this target cannot run here (the test is skipped with this message), or undefined. */
  skip: string | undefined;
  start(): Promise<TargetDevice>;
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ew-hil-'));
}

/** The TypeScript virtual MCU on one end of a pty pair. */
export const simTsTarget: HilTarget = {
  name: 'sim-ts',
  skip: ptyRelayKind() ? undefined : 'sim-ts target skipped: needs socat or python3 for a pseudo-terminal pair',
  async start() {
    const dir = tempDir();
    const host = join(dir, 'host');
    const dev = join(dir, 'dev');
    let pair: PtyPair = await openPtyPair(host, dev);
    const mcu = new VirtualMcu({
      transport: new SerialTransport({ path: dev }),
      audio: generateSpeechLike({ seconds: 2 }),
      reopenEveryMs: 10,
    });
    await mcu.start();
    return {
      path: host,
      baudRate: DEFAULT_BAUD_RATE,
      async replug() {
        await pair.close();
        pair = await openPtyPair(host, dev);
      },
      async stop() {
        await mcu.stop();
        await pair.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

const FW = join(root, 'devices/firmware/build/ew-host-fw');

/**
 * Builds the C host firmware when a compiler is here and it is not built yet. Test files run in
 * parallel, so each builds into a private directory and renames the binary into place (atomic).
 */
function ensureHostFirmware(): string | undefined {
  if (existsSync(FW)) return undefined;
  if (!has('make') || !has('cc'))
    return 'sim-c target skipped: needs make and a C compiler (cc) to build devices/firmware';
  const tmp = mkdtempSync(join(tmpdir(), 'ew-fw-build-'));
  try {
    const r = spawnSync('make', ['-s', '-C', join(root, 'devices/firmware'), `BUILD=${tmp}`, 'host'], {
      encoding: 'utf8',
    });
    const built = join(tmp, 'ew-host-fw');
    if (r.status !== 0 || !existsSync(built)) return `sim-c target skipped: building ew-host-fw failed: ${r.stderr}`;
    mkdirSync(dirname(FW), { recursive: true });
    const part = `${FW}.${process.pid}`;
    copyFileSync(built, part);
    chmodSync(part, 0o755);
    renameSync(part, FW);
    return undefined;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Starts ew-host-fw with its pty linked at `link`; resolves once the link exists. */
export async function startHostFirmware(
  link: string,
  args: string[] = [],
): Promise<{ stop(): Promise<void>; child: ChildProcess }> {
  rmSync(link, { force: true });
  const child = spawn(FW, ['--link', link, '--exit-on-eof', '--quiet', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdout?.resume();
  child.stderr?.resume();
  let exited = false;
  const gone = new Promise<void>((r) =>
    child.once('exit', () => {
      exited = true;
      r();
    }),
  );
  await waitFor(() => exited || existsSync(link), 5000, 'ew-host-fw to create its pty');
  if (exited) throw new Error('ew-host-fw exited at start');
  return {
    child,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        await gone;
      }
      child.stdin?.destroy();
      child.stdout?.destroy();
      child.stderr?.destroy();
      rmSync(link, { force: true });
    },
  };
}

let fwSkip: string | undefined | null = null;

/** The C firmware's host build, on the pty it opens itself. */
export const simCTarget: HilTarget = {
  name: 'sim-c',
  get skip() {
    if (fwSkip === null) fwSkip = ensureHostFirmware();
    return fwSkip;
  },
  async start() {
    const dir = tempDir();
    const link = join(dir, 'fw');
    let fw = await startHostFirmware(link);
    return {
      path: link,
      baudRate: DEFAULT_BAUD_RATE,
      async replug() {
        await fw.stop();
        fw = await startHostFirmware(link);
      },
      async stop() {
        await fw.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** A real board. */
export const hardwareTarget: HilTarget = {
  name: 'hardware',
  skip: process.env.HIL_PORT
    ? undefined
    : 'hardware target skipped: plug in a board running the edgewarden firmware (devices/firmware/arduino) and set ' +
      'HIL_PORT=/dev/ttyACM0 (its serial port) and optionally HIL_BAUD (default 921600)',
  async start() {
    return {
      path: process.env.HIL_PORT!,
      baudRate: Number(process.env.HIL_BAUD ?? DEFAULT_BAUD_RATE),
      async stop() {},
    };
  },
};

/**
 * Every target, or those named in HIL_TARGETS (comma-separated, e.g. "sim-c,hardware"); the others
 * are skipped with a message.
 */
export const TARGETS: HilTarget[] = [simTsTarget, simCTarget, hardwareTarget].map((t) => {
  const only = process.env.HIL_TARGETS?.split(',').map((s) => s.trim());
  if (!only || only.includes(t.name)) return t;
  return {
    name: t.name,
    skip: `${t.name} target skipped: not in HIL_TARGETS=${process.env.HIL_TARGETS}`,
    start: t.start,
  };
});
