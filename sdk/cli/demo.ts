import type { Command } from 'commander';
import { type DemoSummary, startDemo } from '../demo/demo';
import { EdgewardenError } from '../errors';
import { action, EXIT, paint } from './common';
import { createStatusLine } from './progress';

interface DemoCliOptions {
  duration?: string;
  devices: string;
  http?: string;
  heartbeat: string;
  simulator?: boolean;
  json?: boolean;
}

function positive(name: string, v: string, integer: boolean): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new EdgewardenError('EW_CLI_USAGE', `${name} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
  }
  return n;
}

/** Registers `edgewarden demo`: a broker, a collector with its dashboard and simulated devices on this machine. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run a whole fleet here: an MQTT broker, the collector and its dashboard, and simulated devices running ' +
        'Silero VAD with signed outputs; every output is verified',
    )
    .option('--duration <seconds>', 'stop by itself after this long and print a summary (default: until Ctrl-C)')
    .option('--devices <n>', 'simulated devices', '2')
    .option('--http <host:port>', 'dashboard address (default 127.0.0.1 and a free port)')
    .option('--heartbeat <seconds>', 'seconds between heartbeats', '1')
    .option('--simulator', 'use the TypeScript MCU simulator even where the C firmware can be built')
    .option('--json', 'machine-readable summary on stdout')
    .addHelpText(
      'after',
      `
Each device is a virtual microcontroller on a serial link (the C host firmware on a pseudo-terminal
where cc and make exist, the TypeScript simulator otherwise) streaming 16 kHz audio; the device
process runs Silero VAD on every 32 ms window under the warden (batched provenance, audit log in a
temporary home), switches the MCU's LED on speech, and reports signed heartbeats over MQTT
($MQTT_URL, or an embedded broker). Everything is removed when the demo stops.

With --duration (or --json) the summary is JSON on stdout: outputs signed and verified, devices the
collector saw, heartbeats stored, allVerified. Exit status: 0 when every output verified and the
collector saw every device, 1 otherwise.

Examples:
  $ npm run demo                                   # until Ctrl-C; open the dashboard URL it prints
  $ edgewarden demo --duration 20 --json
  $ edgewarden demo --devices 5 --http 127.0.0.1:8080`,
    )
    .action(
      action(async (opts: DemoCliOptions) => {
        const duration = opts.duration === undefined ? undefined : positive('--duration', opts.duration, false);
        const devices = positive('--devices', opts.devices, true);
        const heartbeatSeconds = positive('--heartbeat', opts.heartbeat, false);
        const status = createStatusLine({ json: opts.json === true });
        const say = (line: string) => {
          if (opts.json) return;
          status.clear();
          process.stderr.write(`${line}\n`);
        };
        // Signals are caught from the start: a Ctrl-C while devices start still ends in an orderly stop.
        let stopNow: (why: string) => void = () => {};
        const stopped = new Promise<string>((resolve) => {
          stopNow = resolve;
        });
        const onSignal = (sig: NodeJS.Signals) => stopNow(sig);
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        say(`starting ${devices} simulated device(s)…`);
        const demo = await startDemo({
          devices,
          heartbeatSeconds,
          ...(opts.http ? { http: opts.http } : {}),
          ...(process.env.MQTT_URL ? { brokerUrl: process.env.MQTT_URL } : {}),
          ...(opts.simulator ? { mcu: 'ts-simulator' as const } : {}),
          log: (line) => {
            if (/fail|error|refused/i.test(line)) say(paint(process.stderr, 'yellow', line));
          },
        });
        say(`${paint(process.stderr, 'bold', 'dashboard')}: ${demo.url}`);
        say(
          `${demo.devices.length} device(s) on the ${demo.mcu === 'c-host-firmware' ? 'C host firmware (pty)' : 'TypeScript simulator'}` +
            `${demo.mcuNote ? ` (${demo.mcuNote})` : ''}, broker ${demo.brokerUrl}`,
        );
        const sample = demo.devices.find((d) => d.resultFile)?.resultFile;
        if (sample) say(`a signed result file to drop on the check page: ${sample}`);
        say(duration === undefined ? 'press Ctrl-C to stop' : `stopping in ${duration} s`);
        if (duration !== undefined) setTimeout(() => stopNow('duration'), duration * 1000).unref();

        const started = Date.now();
        let sampled = sample !== undefined;
        const timer = setInterval(() => {
          const s = demo.snapshot();
          if (!sampled) {
            const file = demo.devices.find((d) => d.resultFile)?.resultFile;
            if (file) {
              sampled = true;
              say(`a signed result file to drop on the check page: ${file} (removed when the demo stops)`);
            }
          }
          const secs = Math.round((Date.now() - started) / 1000);
          status.set(
            `${secs}s · ${s.devices} dev · ${s.outputsVerified}/${s.outputsSigned} verified` +
              `${s.outputsFailed ? ` · ${s.outputsFailed} FAILED` : ''} · ${s.speechWindows} speech · ` +
              `${s.ledChanges} LED · ${s.heartbeatsStored} heartbeats`,
          );
        }, 500);

        const why = await stopped;
        clearInterval(timer);
        status.clear();
        say(why === 'duration' ? 'stopping…' : `${why}: stopping…`);
        const summary = await demo.stop();
        // A timed run is a check: its JSON summary goes to stdout (the human one to stderr).
        report(opts.json === true, duration !== undefined, summary);
        return summary.ok ? EXIT.ok : EXIT.failedCheck;
      }),
    );
}

function report(json: boolean, timed: boolean, s: DemoSummary): void {
  if (json || timed) process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  if (json) return;
  const out = timed ? process.stderr : process.stdout;
  const verdict = s.ok
    ? paint(out, 'green', 'every output verified')
    : paint(out, 'red', s.allVerified ? 'not every device reached the collector' : 'NOT every output verified');
  out.write(
    `${verdict}: ${s.outputsVerified}/${s.outputsSigned} signed outputs verified in ${s.durationS} s; ` +
      `the collector saw ${s.devicesSeen}/${s.devices} devices (${s.devicesCompliant} compliant), ` +
      `${s.heartbeatsStored} heartbeats stored; ${s.ledChanges} LED changes (${s.mcu === 'c-host-firmware' ? 'C host firmware' : 'TypeScript simulator'})\n`,
  );
  for (const d of s.perDevice) {
    const problems = [...d.failures, ...d.errors];
    out.write(
      `  ${d.id}: ${d.windows} windows, ${d.speechWindows} speech, ${d.verified}/${d.signed} verified` +
        `${problems.length ? ` — ${problems.join('; ')}` : ''}\n`,
    );
  }
}
