import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { generateSpeechLike } from '../../devices/simulator/audio-gen';
import { VirtualMcu } from '../../devices/simulator/virtual-mcu';
import { readWav, toMono } from '../../devices/simulator/wav';
import { EdgewardenError } from '../errors';
import { resolvePort } from '../link/discovery';
import { FramedLink, type LinkStats } from '../link/framed-link';
import { type LinkMessage, linkMessageToJson, PROTOCOL_VERSION } from '../link/messages';
import { DEFAULT_BAUD_RATE, listSerialPorts, SerialTransport } from '../link/serial-transport';
import { action, EXIT, emit, paint } from './common';

interface MonitorOptions {
  json?: boolean;
  baud: string;
  hello?: boolean;
  duration?: string;
  statsEvery: string;
  samples?: boolean;
}

interface SimulateOptions {
  json?: boolean;
  baud: string;
  wav?: string;
  imuHz: string;
  stream: boolean;
  bitErrorRate: string;
  garbageRate: string;
  protocolVersion: string;
  duration?: string;
}

function number(name: string, v: string, min = 0): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min)
    throw new EdgewardenError('EW_CLI_USAGE', `${name} must be a number ≥ ${min}, got ${JSON.stringify(v)}`);
  return n;
}

/** PORT is a path, or usb:VID:PID (hex) to find the board by its USB identity. */
async function portPath(spec: string): Promise<string> {
  const m = /^usb:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(spec);
  return m ? resolvePort({ vendorId: m[1], productId: m[2] }) : spec;
}

/** Resolves after `seconds` (undefined: never) or on SIGINT/SIGTERM, whichever comes first. */
function runUntilStopped(seconds: number | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    const timer = seconds === undefined ? undefined : setTimeout(done, seconds * 1000);
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

const COUNTERS: (keyof LinkStats)[] = [
  'frames',
  'crcErrors',
  'cobsErrors',
  'oversize',
  'malformed',
  'wireBytes',
  'bufferHighWater',
];

function humanMessage(msg: LinkMessage, t: number): string {
  const j = linkMessageToJson(msg);
  const { seq, type, ...rest } = j;
  const fields = Object.entries(rest)
    .map(([k, v]) =>
      k === 'samples' || (typeof v === 'string' && v.length > 48)
        ? `${k}=${String(v).length / 2}B`
        : `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`,
    )
    .join(' ');
  return `${t.toFixed(3).padStart(9)} seq=${seq} ${String(type)} ${fields}`;
}

/** Registers `edgewarden link`: ports, monitor, simulate. */
export function registerLink(program: Command): void {
  const link = program
    .command('link')
    .description('the serial link to a microcontroller: list ports, monitor, simulate');

  link
    .command('ports')
    .description('list serial ports with their USB vendor/product ids')
    .option('--json', 'machine-readable output')
    .action(
      action(async (opts: { json?: boolean }) => {
        const ports = await listSerialPorts();
        emit(opts.json, ports, () =>
          ports.length === 0
            ? 'no serial ports found'
            : ports
                .map(
                  (p) =>
                    `${p.path.padEnd(24)} ${p.vendorId ?? '----'}:${p.productId ?? '----'}  ${[
                      p.manufacturer,
                      p.serialNumber,
                    ]
                      .filter(Boolean)
                      .join(' ')}`,
                )
                .join('\n'),
        );
        return EXIT.ok;
      }),
    );

  link
    .command('monitor')
    .argument('<port>', 'serial port path, or usb:VID:PID')
    .description('print every decoded message (JSON lines with --json) and the error counters')
    .option('--json', 'JSON lines: one per message, then {"counters": ...} lines')
    .option('--baud <rate>', 'line rate', String(DEFAULT_BAUD_RATE))
    .option('--hello', 'send a HelloRequest first (for firmware that waits to be asked)')
    .option('--duration <seconds>', 'stop after this long (default: until Ctrl-C)')
    .option('--stats-every <seconds>', 'print the counters this often (0: only at the end)', '5')
    .option('--samples', 'include sensor samples as hex (default: their byte count only)')
    .addHelpText(
      'after',
      `
Examples:
  $ edgewarden link monitor /dev/ttyACM0
  $ edgewarden link monitor usb:2e8a:000a --json --hello --duration 10`,
    )
    .action(
      action(async (port: string, opts: MonitorOptions) => {
        const path = await portPath(port);
        const transport = new SerialTransport({ path, baudRate: number('--baud', opts.baud, 1) });
        const framed = new FramedLink(transport);
        // `link monitor … | head` closes our stdout: stop quietly.
        process.stdout.on('error', (err: NodeJS.ErrnoException) => {
          if (err.code !== 'EPIPE') throw err;
          void transport.close().finally(() => process.exit(0));
        });
        const t0 = performance.now();
        const counters = () => {
          const s = framed.stats;
          return Object.fromEntries(COUNTERS.map((k) => [k, s[k]]));
        };
        const printCounters = () => {
          const c = counters();
          if (opts.json) process.stdout.write(`${JSON.stringify({ counters: c })}\n`);
          else
            process.stdout.write(
              `${paint(
                process.stdout,
                'dim',
                Object.entries(c)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(' '),
              )}\n`,
            );
        };
        framed.on('message', (msg) => {
          const t = (performance.now() - t0) / 1000;
          if (opts.json) {
            const j = linkMessageToJson(msg);
            if (!opts.samples && typeof j.samples === 'string') {
              j.samplesBytes = j.samples.length / 2;
              delete j.samples;
            }
            process.stdout.write(`${JSON.stringify({ t: Math.round(t * 1000) / 1000, ...j })}\n`);
          } else process.stdout.write(`${humanMessage(msg, t)}\n`);
        });
        framed.on('malformed', (err) => {
          if (opts.json)
            process.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message } })}\n`);
          else process.stdout.write(`${paint(process.stdout, 'yellow', `${err.code}: ${err.message}`)}\n`);
        });
        let lost: Error | undefined;
        transport.on('close', (err) => {
          lost = err;
        });
        await transport.open();
        if (opts.hello)
          await framed.send({ seq: 1, body: { type: 'helloRequest', protocolVersion: PROTOCOL_VERSION } });
        const every = number('--stats-every', opts.statsEvery);
        const statsTimer = every > 0 ? setInterval(printCounters, every * 1000) : undefined;
        const stopped = runUntilStopped(opts.duration === undefined ? undefined : number('--duration', opts.duration));
        const gone = new Promise<void>((r) => transport.once('close', () => r()));
        await Promise.race([stopped, gone]);
        clearInterval(statsTimer);
        await transport.close();
        printCounters();
        if (lost) {
          process.stderr.write(`${paint(process.stderr, 'red', 'error EW_LINK_DISCONNECTED')}: ${lost.message}\n`);
          return EXIT.badInput;
        }
        return EXIT.ok;
      }),
    );

  link
    .command('simulate')
    .argument('<port>', 'serial port (one end of a pty pair, or a USB-serial adapter looped to the host)')
    .description('run the virtual MCU on a serial port: Hello, microphone and IMU streams, LED/relay, faults on demand')
    .option('--json', 'print actuator changes as JSON lines')
    .option('--baud <rate>', 'line rate', String(DEFAULT_BAUD_RATE))
    .option('--wav <file>', 'microphone audio (WAV; default: generated speech-like audio)')
    .option('--imu-hz <rate>', 'IMU sample rate, 0 for none', '100')
    .option('--no-stream', 'send no sensor batches (only answer requests)')
    .option('--bit-error-rate <p>', 'flip each sent bit with this probability', '0')
    .option('--garbage-rate <p>', 'probability of a garbage burst before each sent frame', '0')
    .option('--protocol-version <n>', 'protocol version claimed in Hello', String(PROTOCOL_VERSION))
    .option('--duration <seconds>', 'stop after this long (default: until Ctrl-C)')
    .addHelpText(
      'after',
      `
Examples:
  $ socat -d -d pty,raw,echo=0,link=/tmp/ew-dev pty,raw,echo=0,link=/tmp/ew-host &
  $ edgewarden link simulate /tmp/ew-dev &
  $ edgewarden link monitor /tmp/ew-host --hello`,
    )
    .action(
      action(async (port: string, opts: SimulateOptions) => {
        const audio = opts.wav ? toMono(readWav(readFileSync(opts.wav)), 16000) : generateSpeechLike({ seconds: 10 });
        const transport = new SerialTransport({ path: await portPath(port), baudRate: number('--baud', opts.baud, 1) });
        const mcu = new VirtualMcu({
          transport,
          audio,
          imuHz: number('--imu-hz', opts.imuHz),
          autoStream: opts.stream,
          protocolVersion: number('--protocol-version', opts.protocolVersion),
          faults: {
            bitErrorRate: number('--bit-error-rate', opts.bitErrorRate),
            garbageRate: number('--garbage-rate', opts.garbageRate),
          },
          reopenEveryMs: 200,
        });
        mcu.on('actuator', (a) => {
          if (opts.json) process.stdout.write(`${JSON.stringify({ actuator: a })}\n`);
          else process.stdout.write(`${a.name}: ${a.value ? 'on' : 'off'}\n`);
        });
        await mcu.start();
        if (!opts.json) process.stderr.write(`virtual MCU on ${transport.path} (Ctrl-C to stop)\n`);
        await runUntilStopped(opts.duration === undefined ? undefined : number('--duration', opts.duration));
        await mcu.stop();
        return EXIT.ok;
      }),
    );
}
