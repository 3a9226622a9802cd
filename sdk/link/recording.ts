import { readFileSync, writeFileSync } from 'node:fs';
import { EdgewardenError } from '../errors';
import type { LinkCode } from './codes';
import { TypedEmitter } from './emitter';
import type { Transport, TransportEvents } from './transport';

/** One chunk of a recorded serial session: what the host sent (tx) or received (rx), `t` ms after the start. */
export interface RecordedChunk {
  t: number;
  dir: 'tx' | 'rx';
  bytes: Uint8Array;
}

/** A recorded serial session. On disk: JSON lines, a header then one `{t, dir, hex}` per chunk. */
export interface Recording {
  format: 'edgewarden.link.recording';
  version: 1;
  /** Where it was recorded (port path, target name). */
  source: string;
  startedAt: string;
  chunks: RecordedChunk[];
}

const recError = (message: string, details?: Record<string, unknown>) =>
  new EdgewardenError<LinkCode>('EW_LINK_RECORDING', message, { details });

/**
 * Wraps a transport and records every chunk written and received, with its time. Use it in place
 * of the inner transport; `recording` holds what happened so far, `save(path)` writes it.
 */
export class RecordingTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly inner: Transport;
  readonly recording: Recording;
  readonly #t0 = performance.now();

  constructor(inner: Transport) {
    super();
    this.inner = inner;
    this.recording = {
      format: 'edgewarden.link.recording',
      version: 1,
      source: inner.description,
      startedAt: new Date().toISOString(),
      chunks: [],
    };
    inner.on('data', (chunk) => {
      this.#add('rx', chunk);
      this.emit('data', chunk);
    });
    inner.on('close', (err) => this.emit('close', err));
  }

  get description(): string {
    return this.inner.description;
  }

  get isOpen(): boolean {
    return this.inner.isOpen;
  }

  open(): Promise<void> {
    return this.inner.open();
  }

  write(data: Uint8Array): Promise<void> {
    this.#add('tx', data);
    return this.inner.write(data);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Writes the recording as JSON lines. */
  save(path: string): void {
    writeFileSync(path, recordingToText(this.recording));
  }

  #add(dir: 'tx' | 'rx', bytes: Uint8Array): void {
    this.recording.chunks.push({
      t: Math.round((performance.now() - this.#t0) * 1000) / 1000,
      dir,
      bytes: Uint8Array.from(bytes),
    });
  }
}

/** The JSON-lines text of a recording. */
export function recordingToText(rec: Recording): string {
  const head = JSON.stringify({
    format: rec.format,
    version: rec.version,
    source: rec.source,
    startedAt: rec.startedAt,
  });
  const lines = rec.chunks.map((c) =>
    JSON.stringify({ t: c.t, dir: c.dir, hex: Buffer.from(c.bytes).toString('hex') }),
  );
  return `${[head, ...lines].join('\n')}\n`;
}

/** Parses a recording; throws `EW_LINK_RECORDING` naming the bad line. */
export function parseRecording(text: string): Recording {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  let head: Record<string, unknown>;
  try {
    head = JSON.parse(lines[0] ?? '');
  } catch {
    throw recError('recording has no JSON header line', { line: 1 });
  }
  if (head.format !== 'edgewarden.link.recording' || head.version !== 1)
    throw recError('not an edgewarden link recording (version 1)', { line: 1 });
  const chunks: RecordedChunk[] = lines.slice(1).map((l, i) => {
    let c: { t?: unknown; dir?: unknown; hex?: unknown };
    try {
      c = JSON.parse(l);
    } catch {
      throw recError(`line ${i + 2} is not JSON`, { line: i + 2 });
    }
    if (
      typeof c.t !== 'number' ||
      (c.dir !== 'tx' && c.dir !== 'rx') ||
      typeof c.hex !== 'string' ||
      !/^([0-9a-f]{2})*$/.test(c.hex)
    )
      throw recError(`line ${i + 2} is not a chunk {t, dir: tx|rx, hex}`, { line: i + 2 });
    return { t: c.t, dir: c.dir, bytes: Uint8Array.from(Buffer.from(c.hex, 'hex')) };
  });
  return {
    format: 'edgewarden.link.recording',
    version: 1,
    source: String(head.source ?? ''),
    startedAt: String(head.startedAt ?? ''),
    chunks,
  };
}

/** Reads a recording file. */
export function loadRecording(path: string): Recording {
  return parseRecording(readFileSync(path, 'utf8'));
}

/**
 * Plays a recording back as a transport, with no device: after the host writes what was recorded
 * as sent, it receives what was recorded as received next. With `strict` (default) each write must
 * equal the recorded bytes (so run the replayed session with liveness pings off, as when it was
 * recorded); a write that differs rejects with `EW_LINK_RECORDING`.
 */
export class ReplayTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly recording: Recording;
  readonly #strict: boolean;
  #open = false;
  #cursor = 0;
  #pendingTx = new Uint8Array(0);

  constructor(recording: Recording, options: { strict?: boolean } = {}) {
    super();
    this.recording = recording;
    this.#strict = options.strict ?? true;
  }

  get description(): string {
    return `replay:${this.recording.source}`;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** True when every recorded chunk was played. */
  get finished(): boolean {
    return this.#cursor >= this.recording.chunks.length;
  }

  async open(): Promise<void> {
    this.#open = true;
    this.#playReceived();
  }

  async write(data: Uint8Array): Promise<void> {
    if (!this.#open) throw new EdgewardenError<LinkCode>('EW_LINK_NOT_OPEN', `${this.description} is not open`);
    // Recorded writes may have been split or joined differently: compare as a byte stream.
    let buf = concat(this.#pendingTx, data);
    const chunks = this.recording.chunks;
    while (buf.length > 0 && this.#cursor < chunks.length && chunks[this.#cursor]!.dir === 'tx') {
      const want = chunks[this.#cursor]!.bytes;
      const n = Math.min(want.length, buf.length);
      if (this.#strict && Buffer.compare(buf.subarray(0, n), want.subarray(0, n)) !== 0)
        throw recError(`write differs from the recording at chunk ${this.#cursor + 1}`, {
          chunk: this.#cursor + 1,
          expected: Buffer.from(want).toString('hex'),
          actual: Buffer.from(buf.subarray(0, n)).toString('hex'),
        });
      if (n < want.length) break;
      buf = buf.subarray(n);
      this.#cursor++;
      this.#playReceived();
    }
    this.#pendingTx = buf.length > 0 && !this.finished ? Uint8Array.from(buf) : new Uint8Array(0);
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    this.emit('close', undefined);
  }

  #playReceived(): void {
    const chunks = this.recording.chunks;
    const rx: Uint8Array[] = [];
    while (this.#cursor < chunks.length && chunks[this.#cursor]!.dir === 'rx') rx.push(chunks[this.#cursor++]!.bytes);
    if (rx.length === 0) return;
    queueMicrotask(() => {
      for (const b of rx) if (this.#open) this.emit('data', b);
    });
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
