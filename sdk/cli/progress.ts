// A progress bar for long commands: drawn on stderr only when stderr is a terminal and the command
// does not print JSON, so pipes, logs and `--json` output stay clean.

/** A progress indicator; every method is a no-op when it is silent. */
export interface Progress {
  /** Whether anything is drawn. */
  readonly active: boolean;
  /** Sets the amount done (of `total`, when the total is known). */
  update(done: number, note?: string): void;
  /** Adds to the amount done. */
  tick(by?: number, note?: string): void;
  /** Clears the bar (the caller prints the result). */
  done(): void;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Shown before the bar, e.g. 'digesting model'. */
  label: string;
  /** Total amount; absent: a spinner with the count. */
  total?: number;
  /** How `done` and `total` read: 'bytes' shows MB, 'count' plain numbers (default). */
  unit?: 'bytes' | 'count';
  /** The command's --json flag: silent when set. */
  json?: boolean;
  /** Default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Least time between redraws (default 100 ms). */
  intervalMs?: number;
}

const SILENT: Progress = { active: false, update() {}, tick() {}, done() {} };
const SPIN = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

function amount(n: number, unit: 'bytes' | 'count'): string {
  return unit === 'bytes' ? `${(n / 1048576).toFixed(n < 10 * 1048576 ? 1 : 0)} MB` : String(Math.round(n));
}

/**
 * A progress bar on stderr, or a silent one (not a terminal, `--json`, or $CI set).
 *
 * @example
 * const p = createProgress({ label: 'digesting model', total: size, unit: 'bytes', json: opts.json });
 * for await (const chunk of stream) p.tick(chunk.length);
 * p.done();
 */
export function createProgress(o: ProgressOptions): Progress {
  const stream = o.stream ?? process.stderr;
  if (o.json || stream.isTTY !== true || process.env.CI) return SILENT;
  const unit = o.unit ?? 'count';
  const every = o.intervalMs ?? 100;
  let value = 0;
  let last = 0;
  let frame = 0;
  let note = '';
  let drawn = false;
  const draw = (force: boolean) => {
    const now = Date.now();
    if (!force && now - last < every) return;
    last = now;
    const cols = Math.max(40, stream.columns ?? 80);
    let line: string;
    if (o.total !== undefined && o.total > 0) {
      const f = Math.min(1, value / o.total);
      const text = `${o.label} ${Math.floor(f * 100)
        .toString()
        .padStart(3)}% ${amount(value, unit)}/${amount(o.total, unit)}${note ? ` ${note}` : ''}`;
      const width = Math.max(10, Math.min(30, cols - text.length - 4));
      const full = Math.round(f * width);
      line = `${'█'.repeat(full)}${'░'.repeat(width - full)} ${text}`;
    } else {
      line = `${SPIN[frame++ % SPIN.length]} ${o.label} ${amount(value, unit)}${note ? ` ${note}` : ''}`;
    }
    stream.write(`\r\u001b[2K${line.slice(0, cols - 1)}`);
    drawn = true;
  };
  return {
    active: true,
    update(done, n) {
      value = done;
      if (n !== undefined) note = n;
      draw(false);
    },
    tick(by = 1, n) {
      value += by;
      if (n !== undefined) note = n;
      draw(false);
    },
    done() {
      if (drawn) stream.write('\r\u001b[2K');
      drawn = false;
    },
  };
}

/**
 * A status line redrawn in place on a terminal (the demo's live summary); silent elsewhere.
 * Returns a function to set the text, and one to end the line.
 */
export function createStatusLine(o: { json?: boolean; stream?: NodeJS.WriteStream } = {}): {
  active: boolean;
  set(text: string): void;
  clear(): void;
} {
  const stream = o.stream ?? process.stderr;
  if (o.json || stream.isTTY !== true) return { active: false, set() {}, clear() {} };
  let drawn = false;
  return {
    active: true,
    set(text) {
      const cols = Math.max(40, stream.columns ?? 80);
      stream.write(`\r\u001b[2K${text.slice(0, cols - 1)}`);
      drawn = true;
    },
    clear() {
      if (drawn) stream.write('\r\u001b[2K');
      drawn = false;
    },
  };
}
