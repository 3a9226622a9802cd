import { statfs } from 'node:fs/promises';
import { listUnder, readUnder } from './files';
import type { BoardHealth } from './profile';

// Raspberry Pi firmware get_throttled bits (see the Pi documentation of vcgencmd get_throttled).
const UNDER_VOLTAGE_NOW = 1 << 0;
const THROTTLED_NOW = 1 << 2;
const UNDER_VOLTAGE_SINCE_BOOT = 1 << 16;
const THROTTLED_SINCE_BOOT = 1 << 18;

// Thermal zone types that name the SoC/CPU, best first.
const SOC_ZONE_TYPES = ['cpu-thermal', 'cpu_thermal', 'soc_thermal', 'CPU-therm', 'cpu-thermal0', 'x86_pkg_temp'];

interface HealthOptions {
  readonly root?: string;
  /** A path on the filesystem whose free space is reported (the device home). */
  readonly diskPath?: string;
}

/** Reads SoC temperature, Pi throttling bits, memory, disk free space, load and uptime. */
export async function readHealth(options: HealthOptions = {}): Promise<BoardHealth> {
  const root = options.root ?? '/';
  const [meminfo, loadavg, uptime, throttledText, temp, disk] = await Promise.all([
    readUnder(root, 'proc/meminfo'),
    readUnder(root, 'proc/loadavg'),
    readUnder(root, 'proc/uptime'),
    readUnder(root, 'sys/devices/platform/soc/soc:firmware/get_throttled'),
    socTemperature(root),
    diskFree(options.diskPath),
  ]);
  const throttled = throttledText ? Number.parseInt(throttledText.trim(), 16) || 0 : 0;
  const mem = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(meminfo ?? '')?.[1] ?? 0) * 1024;
  return {
    ...(temp === undefined ? {} : { tempMilliC: temp }),
    throttled,
    underVoltageNow: (throttled & UNDER_VOLTAGE_NOW) !== 0,
    underVoltageSinceBoot: (throttled & UNDER_VOLTAGE_SINCE_BOOT) !== 0,
    throttledNow: (throttled & THROTTLED_NOW) !== 0,
    throttledSinceBoot: (throttled & THROTTLED_SINCE_BOOT) !== 0,
    memTotalBytes: mem('MemTotal'),
    memAvailableBytes: mem('MemAvailable'),
    ...(disk === undefined ? {} : { diskFreeBytes: disk }),
    load1: Number.parseFloat(loadavg?.split(' ')[0] ?? '0') || 0,
    uptimeS: Math.floor(Number.parseFloat(uptime?.split(' ')[0] ?? '0') || 0),
  };
}

async function socTemperature(root: string): Promise<number | undefined> {
  const zones = (await listUnder(root, 'sys/class/thermal')).filter((z) => z.startsWith('thermal_zone'));
  const readings: { type: string; temp: number }[] = [];
  for (const z of zones) {
    const [type, temp] = await Promise.all([
      readUnder(root, `sys/class/thermal/${z}/type`),
      readUnder(root, `sys/class/thermal/${z}/temp`),
    ]);
    const t = Number.parseInt(temp?.trim() ?? '', 10);
    if (Number.isFinite(t)) readings.push({ type: type?.trim() ?? '', temp: t });
  }
  for (const wanted of SOC_ZONE_TYPES) {
    const hit = readings.find((r) => r.type === wanted);
    if (hit) return hit.temp;
  }
  return readings[0]?.temp;
}

async function diskFree(path: string | undefined): Promise<number | undefined> {
  if (!path) return undefined;
  try {
    const s = await statfs(path);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}
