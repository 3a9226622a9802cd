// Runs the C firmware's own tests (make test) and drives the host build of the firmware over a real
// pseudo-terminal, framing messages here with the generated protobuf code and a small COBS/CRC.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  read as fsRead,
  lstatSync,
  mkdtempSync,
  openSync,
  readlinkSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { edgewarden } from '../../sdk/__generated__/messages.js';
import { crc32c } from '../../sdk/util/crc32c';

const here = dirname(fileURLToPath(import.meta.url));
const fwBin = join(here, 'build', 'ew-host-fw');
const { LinkMessage, NackReason } = edgewarden.v1;
type Msg = edgewarden.v1.LinkMessage;

const runs = (cmd: string, args: string[]) => {
  try {
    return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
};
const haveToolchain = runs('cc', ['--version']) && runs('make', ['--version']);
if (!haveToolchain)
  console.warn('devices/firmware: C tests skipped: needs `cc` and `make` (Debian: apt install build-essential)');

// ---- a small framer, independent of sdk/link, so this test checks the C side on its own ----

function cobsEncode(src: Uint8Array): number[] {
  const out: number[] = [0];
  let codeAt = 0;
  let code = 1;
  src.forEach((b, i) => {
    if (b !== 0) {
      out.push(b);
      code++;
    }
    if (b === 0 || code === 0xff) {
      out[codeAt] = code;
      code = 1;
      if (b === 0 || i + 1 < src.length) {
        codeAt = out.length;
        out.push(0);
      } else codeAt = -1;
    }
  });
  if (codeAt >= 0) out[codeAt] = code;
  return out;
}

function cobsDecode(src: Uint8Array): Uint8Array | null {
  const out: number[] = [];
  let i = 0;
  while (i < src.length) {
    const code = src[i++]!;
    if (code === 0 || i + code - 1 > src.length) return null;
    for (let k = 1; k < code; k++) out.push(src[i++]!);
    if (code !== 0xff && i < src.length) out.push(0);
  }
  return Uint8Array.from(out);
}

function frame(msg: edgewarden.v1.LinkMessage.$Properties): Buffer {
  const payload = LinkMessage.encode(msg).finish();
  const raw = Buffer.alloc(payload.length + 4);
  raw.set(payload);
  raw.writeUInt32LE(crc32c(payload), payload.length);
  return Buffer.from([...cobsEncode(raw), 0]);
}

function unframe(block: Uint8Array): Msg | null {
  const raw = cobsDecode(block);
  if (!raw || raw.length < 4) return null;
  const payload = raw.subarray(0, raw.length - 4);
  const crc = Buffer.from(raw.subarray(raw.length - 4)).readUInt32LE(0);
  return crc32c(payload) === crc ? LinkMessage.decode(payload) : null;
}

/** One running ew-host-fw with its pty opened here as a plain file descriptor. */
class HostFirmware {
  readonly messages: Msg[] = [];
  stderr = '';
  badFrames = 0;
  #fd = -1;
  #pending: number[] = [];
  #waiters: Array<() => void> = [];
  #reading: Promise<void> = Promise.resolve();
  #exited: Promise<number | null>;

  private constructor(
    readonly proc: ChildProcess,
    readonly path: string,
  ) {
    proc.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      this.#wake();
    });
    this.#exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  static async start(args: string[] = []): Promise<HostFirmware> {
    const proc = spawn(fwBin, ['--exit-on-eof', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const path = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('ew-host-fw printed no pty path within 10 s')), 10_000);
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          resolve(out.slice(0, nl));
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`ew-host-fw exited with ${code} before printing its pty: ${err}`));
      });
    });
    const fw = new HostFirmware(proc, path);
    fw.#fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY);
    fw.#reading = fw.#readLoop();
    return fw;
  }

  // Blocking reads run on libuv's thread pool; the loop ends when the firmware closes the pty (EIO).
  #readLoop(): Promise<void> {
    return new Promise((resolve) => {
      const buf = Buffer.alloc(4096);
      const next = () =>
        fsRead(this.#fd, buf, 0, buf.length, null, (err, n) => {
          if (err || n === 0) return resolve();
          for (const b of buf.subarray(0, n)) {
            if (b !== 0) {
              this.#pending.push(b);
              continue;
            }
            if (this.#pending.length > 0) {
              const m = unframe(Uint8Array.from(this.#pending));
              if (m) this.messages.push(m);
              else this.badFrames++;
            }
            this.#pending = [];
          }
          this.#wake();
          next();
        });
      next();
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  send(msg: edgewarden.v1.LinkMessage.$Properties): void {
    this.writeRaw(frame(msg));
  }

  writeRaw(bytes: Uint8Array): void {
    writeSync(this.#fd, bytes);
  }

  /** The first message (from index `from`) that matches, within a bounded time. */
  async waitFor(pred: (m: Msg) => boolean, what: string, from = 0, ms = 5000): Promise<Msg> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.messages.slice(from).find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no ${what} from ew-host-fw within ${ms} ms`);
      await this.#changed(deadline - Date.now());
    }
  }

  async waitStderr(re: RegExp, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!re.test(this.stderr)) {
      if (Date.now() > deadline) throw new Error(`stderr never matched ${re}: ${this.stderr}`);
      await this.#changed(deadline - Date.now());
    }
  }

  #changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, ms));
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async stop(): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    const code = await this.#exited;
    await Promise.race([this.#reading, new Promise((r) => setTimeout(r, 2000))]);
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
    return code;
  }
}

describe.skipIf(!haveToolchain)('C firmware library (make test)', () => {
  it('passes its C tests: COBS/CRC vectors, every message, golden frames, garbage and bit errors', () => {
    const r = spawnSync('make', ['-C', here, 'test'], { encoding: 'utf8', timeout: 180_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, out).toBe(0);
    const summary = /ew-tests: (\d+) tests, (\d+) checks, (\d+) failed/.exec(out);
    expect(summary, out).not.toBeNull();
    expect(Number(summary![1])).toBeGreaterThanOrEqual(24);
    expect(Number(summary![3])).toBe(0);
    expect(out).not.toMatch(/^FAIL /m);
    const golden = /golden: (\d+) messages checked/.exec(out);
    expect(Number(golden?.[1])).toBeGreaterThanOrEqual(15);
    // The Arduino sketch runs on the host against stub Arduino/PDM APIs, both microphone paths.
    const sketch = out.match(/^sketch .*$/gm) ?? [];
    if (!/sketch: SKIPPED/.test(out)) {
      expect(sketch).toHaveLength(2);
      for (const line of sketch) expect(line).toMatch(/-> ok$/);
    }
    console.info(`C tests: ${summary![1]} tests, ${summary![2]} checks; ${/sanitizers: .*/.exec(out)?.[0]}`);
  });
});

describe.skipIf(!haveToolchain)('host firmware over a pseudo-terminal', () => {
  let fw: HostFirmware;
  const extra: HostFirmware[] = [];
  const tmp: string[] = [];

  beforeAll(async () => {
    const r = spawnSync('make', ['-C', here, 'all'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    fw = await HostFirmware.start();
  });

  afterEach(async () => {
    for (const f of extra.splice(0)) await f.stop();
    for (const d of tmp.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  afterAll(async () => {
    await fw?.stop();
  });

  it('announces itself with Hello seq 0 at boot', async () => {
    const boot = await fw.waitFor((m) => m.body === 'hello', 'boot Hello');
    expect(boot.seq).toBe(0);
    expect(fw.messages[0]).toBe(boot);
  });

  it('answers HelloRequest with its Hello', async () => {
    const from = fw.messages.length;
    fw.send({ seq: 1, helloRequest: { protocolVersion: 1 } });
    const m = await fw.waitFor((x) => x.body === 'hello' && x.seq === 1, 'Hello seq 1', from);
    const h = m.hello!;
    expect(h.firmwareName).toBe('ew-host-fw');
    expect(h.protocolVersion).toBe(1);
    expect(h.maxRxPayload).toBe(256);
    expect(h.uniqueId?.length).toBe(8);
    expect(h.sensors?.map((s) => [s.id, s.name, s.rateHz, s.channels])).toEqual([
      [1, 'mic', 16000, 1],
      [2, 'imu', 100, 6],
    ]);
    expect(h.actuators?.map((a) => [a.id, a.name, a.kind])).toEqual([
      [1, 'led', edgewarden.v1.ActuatorKind.LED],
      [2, 'relay', edgewarden.v1.ActuatorKind.RELAY],
    ]);
  });

  it('acks Command(LED on) and switches the LED', async () => {
    const from = fw.messages.length;
    fw.send({ seq: 2, command: { actuatorId: 1, value: 1 } });
    const m = await fw.waitFor((x) => x.body === 'ack' || (x.body === 'nack' && x.seq === 2), 'Ack seq 2', from);
    expect(m.body).toBe('ack');
    expect(m.ack?.ackSeq).toBe(2);
    await fw.waitStderr(/^led: on$/m);
  });

  it('nacks an unknown actuator with UNKNOWN_ACTUATOR and a bad value with BAD_VALUE', async () => {
    let from = fw.messages.length;
    fw.send({ seq: 3, command: { actuatorId: 42, value: 1 } });
    const m = await fw.waitFor((x) => x.seq === 3 && (x.body === 'nack' || x.body === 'ack'), 'answer seq 3', from);
    expect(m.body).toBe('nack');
    expect(m.nack?.ackSeq).toBe(3);
    expect(m.nack?.reason).toBe(NackReason.UNKNOWN_ACTUATOR);
    expect(m.nack?.detail).toBe('no actuator 42');
    from = fw.messages.length;
    fw.send({ seq: 4, command: { actuatorId: 1, value: 7 } });
    const b = await fw.waitFor((x) => x.seq === 4 && (x.body === 'nack' || x.body === 'ack'), 'answer seq 4', from);
    expect(b.nack?.reason).toBe(NackReason.BAD_VALUE);
  });

  it('echoes Ping as Pong, and survives garbage on the line', async () => {
    const junk = Buffer.alloc(3000);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 131 + 7) & 0xff;
    fw.writeRaw(junk);
    fw.writeRaw(Buffer.from([0]));
    const from = fw.messages.length;
    fw.send({ seq: 5, ping: { timeUs: 123456789 } });
    const m = await fw.waitFor((x) => x.body === 'pong' && x.seq === 5, 'Pong seq 5', from);
    expect(m.pong?.timeUs).toBe(123456789);
  });

  it('streams 16 kHz audio in 512-sample windows and an IMU', async () => {
    const from = fw.messages.length;
    const isMic = (x: Msg) => x.body === 'sensorBatch' && x.sensorBatch?.sensorId === 1;
    const a = await fw.waitFor(isMic, 'audio batch', from);
    const b = await fw.waitFor((x) => isMic(x) && x !== a, 'second audio batch', fw.messages.indexOf(a) + 1);
    expect(a.sensorBatch?.sampleCount).toBe(512);
    expect(a.sensorBatch?.samples?.length).toBe(1024);
    const step = Number(b.sensorBatch?.firstSampleUs) - Number(a.sensorBatch?.firstSampleUs);
    expect(step % 32000).toBe(0); // 512 samples at 16 kHz; a window dropped under load skips one step
    expect(step).toBeGreaterThan(0);
    const imu = await fw.waitFor((x) => x.body === 'sensorBatch' && x.sensorBatch?.sensorId === 2, 'IMU batch', from);
    expect(imu.sensorBatch?.samples?.length).toBe(Number(imu.sensorBatch?.sampleCount) * 6 * 2);
    expect(fw.badFrames).toBe(0);
  });

  it('streams a WAV file given with --wav, and refuses a WAV it cannot play', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ew-fw-'));
    tmp.push(dir);
    const samples = new Int16Array(4000).map((_, i) => Math.round(5000 * Math.sin((2 * Math.PI * 300 * i) / 16000)));
    writeFileSync(join(dir, 'tone.wav'), wav(samples, 1));
    writeFileSync(join(dir, 'stereo.wav'), wav(samples, 2));
    const f = await HostFirmware.start(['--wav', join(dir, 'tone.wav'), '--link', join(dir, 'ttyEW')]);
    extra.push(f);
    expect(lstatSync(join(dir, 'ttyEW')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'ttyEW'))).toBe(f.path);
    const m = await f.waitFor((x) => x.body === 'sensorBatch' && x.sensorBatch?.sensorId === 1, 'audio batch');
    const got = m.sensorBatch!.samples!;
    const first = Number(m.sensorBatch!.firstSampleUs) / 62.5; // sample index of the window
    const want = Buffer.alloc(1024);
    for (let i = 0; i < 512; i++) want.writeInt16LE(samples[(first + i) % samples.length]!, i * 2);
    expect(Buffer.from(got).equals(want)).toBe(true);
    expect(await f.stop()).toBe(0);
    expect(() => lstatSync(join(dir, 'ttyEW'))).toThrow(); // the link is removed at exit

    const bad = spawnSync(fwBin, ['--wav', join(dir, 'stereo.wav')], { encoding: 'utf8', timeout: 10_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/mono 16000 Hz/);
  });
});

/** A PCM 16-bit WAV at 16 kHz; `channels` copies of each sample. */
function wav(samples: Int16Array, channels: number): Buffer {
  const data = Buffer.alloc(samples.length * 2 * channels);
  samples.forEach((s, i) => {
    for (let c = 0; c < channels; c++) data.writeInt16LE(s, (i * channels + c) * 2);
  });
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(16000, 24);
  h.writeUInt32LE(16000 * 2 * channels, 28);
  h.writeUInt16LE(2 * channels, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}
