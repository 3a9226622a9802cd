/** Time source, injected so that time-dependent code is tested with fake clocks. */
export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch. */
  now(): number;
  /** Monotonic nanoseconds (process.hrtime.bigint()). */
  monotonicNs(): bigint;
}

export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  monotonicNs: () => process.hrtime.bigint(),
};
