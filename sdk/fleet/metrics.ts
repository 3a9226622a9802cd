/** A tiny Prometheus text-format registry: counters and gauges with labels, no dependency. */
export class Metrics {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();
  private readonly gauges = new Map<string, { help: string; read: () => Map<string, number> | number }>();

  /** Declares a counter (so it is exported at 0 before its first increment). */
  counter(name: string, help: string): void {
    if (!this.counters.has(name)) this.counters.set(name, { help, values: new Map() });
  }

  /** Adds `by` to a counter with the given labels. */
  inc(name: string, labels: Record<string, string> = {}, by = 1): void {
    let c = this.counters.get(name);
    if (!c) {
      c = { help: name, values: new Map() };
      this.counters.set(name, c);
    }
    const key = labelText(labels);
    c.values.set(key, (c.values.get(key) ?? 0) + by);
  }

  /** Current value of a counter (summed over labels when none are given). */
  get(name: string, labels?: Record<string, string>): number {
    const c = this.counters.get(name);
    if (!c) return 0;
    if (labels) return c.values.get(labelText(labels)) ?? 0;
    let n = 0;
    for (const v of c.values.values()) n += v;
    return n;
  }

  /** Values of a counter by one label (e.g. rejections by code). */
  byLabel(name: string, label: string): Record<string, number> {
    const out: Record<string, number> = {};
    const c = this.counters.get(name);
    if (!c) return out;
    for (const [key, v] of c.values) {
      const m = new RegExp(`${label}="((?:[^"\\\\]|\\\\.)*)"`).exec(key);
      if (!m) continue;
      const value = m[1]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      out[value] = (out[value] ?? 0) + v;
    }
    return out;
  }

  /** Declares a gauge read at scrape time: one number, or values keyed by label text from {@link labelText}. */
  gauge(name: string, help: string, read: () => Map<string, number> | number): void {
    this.gauges.set(name, { help, read });
  }

  /** The Prometheus text exposition. */
  text(): string {
    const lines: string[] = [];
    for (const [name, c] of this.counters) {
      lines.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      if (c.values.size === 0) lines.push(`${name} 0`);
      for (const [key, v] of c.values) lines.push(`${name}${key} ${v}`);
    }
    for (const [name, g] of this.gauges) {
      lines.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`);
      const v = g.read();
      if (typeof v === 'number') lines.push(`${name} ${v}`);
      else for (const [key, n] of v) lines.push(`${name}${key} ${n}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

/** `{a="x",b="y"}` with Prometheus escaping, or '' for no labels. */
export function labelText(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  return `{${keys.map((k) => `${k}="${esc(labels[k]!)}"`).join(',')}}`;
}
