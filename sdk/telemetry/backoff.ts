/** Timer functions, injected so reconnect and drain pacing run on fake time in tests. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const SYSTEM_TIMERS: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending reconnect must not keep a process alive on its own.
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Exponential backoff: attempt n waits min(maxMs, initialMs·factor^(n-1)), minus up to `jitter` of it at random. */
export interface BackoffOptions {
  /** First delay (default 500 ms). */
  initialMs?: number;
  /** Ceiling (default 30 s). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Fraction of the delay randomised away, 0..1 (default 0.5), so devices do not reconnect in lockstep. */
  jitter?: number;
}

export interface Backoff {
  /** The delay before the next attempt; grows until reset. */
  next(): number;
  /** Back to the first delay (after a successful connection). */
  reset(): void;
}

export function createBackoff(o: BackoffOptions = {}, random: () => number = Math.random): Backoff {
  const initial = Math.max(0, o.initialMs ?? 500);
  const max = Math.max(initial, o.maxMs ?? 30_000);
  const factor = Math.max(1, o.factor ?? 2);
  const jitter = Math.min(1, Math.max(0, o.jitter ?? 0.5));
  let n = 0;
  return {
    next() {
      const base = Math.min(max, initial * factor ** n);
      n = Math.min(n + 1, 64);
      return Math.round(base * (1 - jitter * Math.min(1, Math.max(0, random()))));
    },
    reset() {
      n = 0;
    },
  };
}
