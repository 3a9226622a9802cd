/** Board families edgewarden knows. */
export type BoardFamily = 'raspberry-pi' | 'jetson' | 'generic-linux';

/** What a board is and how inference should run on it. */
export interface BoardProfile {
  readonly family: BoardFamily;
  /** A short id: pi3, pi4, pi5, pi-zero-2w, jetson-nano, jetson-xavier-nx, jetson-orin, generic. */
  readonly variant: string;
  /** The human model string, e.g. "Raspberry Pi 4 Model B Rev 1.4". */
  readonly model: string;
  /** Node's architecture name: arm64, x64, arm, ... */
  readonly arch: string;
  readonly cpus: number;
  /** OS description, e.g. "Debian GNU/Linux 12 (bookworm)". */
  readonly os: string;
  /** L4T release on Jetson, e.g. "R35.4.1". */
  readonly l4t?: string;
  /** Execution providers to try, best first; 'cpu' is always last. */
  readonly executionProviders: readonly string[];
  /** Intra-op thread count suggested for this board (see README for how it was chosen). */
  readonly intraOpThreads: number;
  /** Why the board cannot run edgewarden, if it cannot (32-bit ARM has no onnxruntime-node binary). */
  readonly unsupported?: string;
}

/** A health reading; fields are absent when the board does not expose them. */
export interface BoardHealth {
  readonly tempMilliC?: number;
  /** Raspberry Pi get_throttled bits (0 elsewhere). */
  readonly throttled: number;
  readonly underVoltageNow: boolean;
  readonly underVoltageSinceBoot: boolean;
  readonly throttledNow: boolean;
  readonly throttledSinceBoot: boolean;
  readonly memTotalBytes: number;
  readonly memAvailableBytes: number;
  readonly diskFreeBytes?: number;
  readonly load1: number;
  readonly uptimeS: number;
}
