/** Per-model counters and latency percentiles, as heartbeats and `warden.stats()` report them. */
export interface ModelStats {
  readonly name: string;
  readonly digest: Uint8Array;
  /** Inferences that ran (allowed, redacted and blocked). */
  readonly inferences: number;
  /** Inferences whose outputs the gate blocked. */
  readonly blocked: number;
  /** Inferences that failed (bad input, runtime error). */
  readonly errors: number;
  /** Median and 99th-percentile latency of `infer()` up to the outputs, in microseconds (0 when none). */
  readonly p50Us: number;
  readonly p99Us: number;
  readonly executionProvider: string;
}

// Log-spaced buckets, 4% apart, from 1 µs to about 2 minutes: constant memory, ±2% error.
const GROWTH = 1.04;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = Math.ceil(Math.log(120e6) / LOG_GROWTH) + 1;

/** A fixed-bucket latency histogram: O(1) record, constant memory, approximate percentiles. */
export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  private total = 0;

  /** Records one latency in microseconds. */
  record(us: number): void {
    const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / LOG_GROWTH));
    this.counts[i] = (this.counts[i] as number) + 1;
    this.total++;
  }

  get count(): number {
    return this.total;
  }

  /** The latency at quantile q (0..1), as the upper edge of its bucket, rounded to whole µs; 0 when empty. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return Math.round(GROWTH ** i);
    }
    return Math.round(GROWTH ** (BUCKETS - 1));
  }
}

/** Mutable counters of one model; `snapshot()` gives the public, immutable view. */
export class ModelCounters {
  inferences = 0;
  blocked = 0;
  errors = 0;
  readonly latency = new LatencyHistogram();

  constructor(
    private readonly name: string,
    private readonly digest: Uint8Array,
    private readonly executionProvider: string,
  ) {}

  snapshot(): ModelStats {
    return {
      name: this.name,
      digest: this.digest,
      inferences: this.inferences,
      blocked: this.blocked,
      errors: this.errors,
      p50Us: this.latency.quantile(0.5),
      p99Us: this.latency.quantile(0.99),
      executionProvider: this.executionProvider,
    };
  }
}
