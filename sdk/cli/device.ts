import type { Command } from 'commander';
import { detectBoard } from '../../devices/boards/detect';
import { readHealth } from '../../devices/boards/health';
import { ed25519Backend } from '../provenance/ed25519';
import { action, EXIT, emit, paint, resolveHome } from './common';

/** Registers `edgewarden device info`. */
export function registerDevice(program: Command): void {
  const device = program.command('device').description('the board this runs on');
  device
    .command('info')
    .description('detect the board (Raspberry Pi, Jetson, generic Linux) and read its health')
    .option('--root <dir>', 'probe this file tree instead of / (for fixtures)', '/')
    .option('--home <dir>', 'device home whose disk free space is reported')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  edgewarden device info\n  edgewarden device info --json')
    .action(
      action(async (opts: { root: string; home?: string; json?: boolean }) => {
        const profile = await detectBoard({ root: opts.root });
        const health = await readHealth({
          root: opts.root,
          diskPath: resolveHome(opts.home).replace(/\/[^/]*$/, '') || '/',
        });
        const ed25519 = ed25519Backend();
        emit(opts.json, { board: profile, health, ed25519 }, () => {
          const out = process.stdout;
          const lines = [
            `${paint(out, 'bold', profile.model)} (${profile.family}/${profile.variant}, ${profile.arch}, ${profile.cpus} CPUs)`,
            `os: ${profile.os}${profile.l4t ? `, L4T ${profile.l4t}` : ''}`,
            `execution providers to try: ${profile.executionProviders.join(' > ')}; intra-op threads: ${profile.intraOpThreads}`,
            `ed25519: ${ed25519.name}${ed25519.reason ? ` (${ed25519.reason})` : ''}`,
            `temperature: ${health.tempMilliC === undefined ? 'unknown' : `${(health.tempMilliC / 1000).toFixed(1)} °C`}`,
            `memory: ${mib(health.memAvailableBytes)} free of ${mib(health.memTotalBytes)}; load ${health.load1}`,
          ];
          if (health.diskFreeBytes !== undefined) lines.push(`disk free: ${mib(health.diskFreeBytes)}`);
          if (profile.family === 'raspberry-pi') {
            lines.push(
              `power: under-voltage now ${yesNo(health.underVoltageNow)}, since boot ${yesNo(health.underVoltageSinceBoot)}; throttled now ${yesNo(health.throttledNow)}, since boot ${yesNo(health.throttledSinceBoot)}`,
            );
          }
          if (profile.unsupported) lines.push(paint(out, 'red', `not supported: ${profile.unsupported}`));
          return lines.join('\n');
        });
        return profile.unsupported ? EXIT.failedCheck : EXIT.ok;
      }),
    );
}

const mib = (n: number) => `${Math.round(n / 1048576)} MiB`;
const yesNo = (b: boolean) => (b ? 'yes' : 'no');
