import { cpus as osCpus } from 'node:os';
import { dtStrings, readUnder } from './files';
import type { BoardProfile } from './profile';

interface DetectOptions {
  /** Root of the file tree to probe; '/' on a device, a fixture folder in tests. */
  readonly root?: string;
  /** Architecture to assume when the tree does not say (defaults to process.arch). */
  readonly arch?: string;
}

const PI_VARIANTS: readonly [RegExp, string][] = [
  [/raspberrypi,5-/, 'pi5'],
  [/raspberrypi,4-|raspberrypi,400|raspberrypi,4-compute/, 'pi4'],
  [/raspberrypi,model-zero-2-w/, 'pi-zero-2w'],
  [/raspberrypi,3-/, 'pi3'],
];

const JETSON_VARIANTS: readonly [RegExp, string][] = [
  [/orin|tegra234/i, 'jetson-orin'],
  [/xavier-nx|p3668/i, 'jetson-xavier-nx'],
  [/xavier|tegra194/i, 'jetson-xavier'],
  [/nano|tegra210/i, 'jetson-nano'],
];

function archFrom(text: string | undefined, fallback: string): string {
  const a = text?.trim();
  if (a === 'aarch64' || a === 'arm64') return 'arm64';
  if (a === 'x86_64') return 'x64';
  if (a?.startsWith('armv')) return 'arm';
  return fallback;
}

function countCpus(cpuinfo: string | undefined): number {
  const n = (cpuinfo ?? '').split('\n').filter((l) => /^processor\s*:/.test(l)).length;
  return n > 0 ? n : osCpus().length;
}

function osName(osRelease: string | undefined): string {
  const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease ?? '');
  return m?.[1] ?? 'Linux';
}

/**
 * Thread suggestion per board. ONNX Runtime's default (one thread per core) loses on small models:
 * on a 2-core x64 box the PaddleOCR classifier ran ~2x faster with 1 intra-op thread than with the
 * default. Small boards get few threads; measure yours with `edgewarden bench`.
 */
function suggestThreads(variant: string, cpus: number): number {
  if (variant === 'pi-zero-2w' || variant === 'pi3') return 2;
  if (cpus <= 2) return 1;
  return Math.min(4, Math.floor(cpus / 2) || 1);
}

/** Detects the board from device-tree, L4T and procfs files under `root`. */
export async function detectBoard(options: DetectOptions = {}): Promise<BoardProfile> {
  const root = options.root ?? '/';
  const [model, compatible, tegra, cpuinfo, kernelArch, osRelease] = await Promise.all([
    readUnder(root, 'proc/device-tree/model'),
    readUnder(root, 'proc/device-tree/compatible'),
    readUnder(root, 'etc/nv_tegra_release'),
    readUnder(root, 'proc/cpuinfo'),
    readUnder(root, 'proc/sys/kernel/arch'),
    readUnder(root, 'etc/os-release'),
  ]);
  const modelName = dtStrings(model)[0] ?? /^Model\s*:\s*(.+)$/m.exec(cpuinfo ?? '')?.[1]?.trim() ?? '';
  const compat = dtStrings(compatible).join(' ');
  const arch = archFrom(kernelArch, options.arch ?? process.arch);
  const cpus = countCpus(cpuinfo);
  const os = osName(osRelease);
  const unsupported =
    arch === 'arm' || arch === 'ia32'
      ? `32-bit ${arch} is not supported: onnxruntime-node ships binaries for 64-bit Linux only; install a 64-bit OS`
      : undefined;
  const base = { model: modelName || 'Linux computer', arch, cpus, os, ...(unsupported ? { unsupported } : {}) };

  if (/raspberrypi/.test(compat) || /^Raspberry Pi/.test(modelName)) {
    const variant = PI_VARIANTS.find(([re]) => re.test(compat))?.[1] ?? piVariantFromModel(modelName);
    return {
      ...base,
      family: 'raspberry-pi',
      variant,
      executionProviders: ['cpu'],
      intraOpThreads: suggestThreads(variant, cpus),
    };
  }
  if (tegra !== undefined || /nvidia,(tegra|jetson|p3)/.test(compat) || /Jetson/i.test(modelName)) {
    const variant = JETSON_VARIANTS.find(([re]) => re.test(`${compat} ${modelName}`))?.[1] ?? 'jetson';
    const l4t = /^# R(\d+) \(release\), REVISION: ([\d.]+)/m.exec(tegra ?? '');
    return {
      ...base,
      family: 'jetson',
      variant,
      ...(l4t ? { l4t: `R${l4t[1]}.${l4t[2]}` } : {}),
      // GPU providers first; the engine falls back to CPU (recording why) when this runtime lacks them.
      executionProviders: ['tensorrt', 'cuda', 'cpu'],
      intraOpThreads: suggestThreads(variant, cpus),
    };
  }
  return {
    ...base,
    family: 'generic-linux',
    variant: 'generic',
    executionProviders: ['cpu'],
    intraOpThreads: suggestThreads('generic', cpus),
  };
}

function piVariantFromModel(model: string): string {
  if (/Raspberry Pi 5/.test(model)) return 'pi5';
  if (/Raspberry Pi 4|Raspberry Pi 400|Compute Module 4/.test(model)) return 'pi4';
  if (/Zero 2/.test(model)) return 'pi-zero-2w';
  if (/Raspberry Pi 3/.test(model)) return 'pi3';
  return 'pi';
}
