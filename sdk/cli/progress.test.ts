import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createProgress, createStatusLine } from './progress';

/** A stand-in for process.stderr that records what is written. */
function fakeStream(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const s = {
    isTTY,
    columns: 80,
    text: '',
    write(chunk: string) {
      s.text += chunk;
      return true;
    },
  };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

describe('progress bar', () => {
  let ci: string | undefined;
  beforeEach(() => {
    ci = process.env.CI;
    delete process.env.CI;
    vi.useFakeTimers();
  });
  afterEach(() => {
    if (ci !== undefined) process.env.CI = ci;
    vi.useRealTimers();
  });

  it('draws a bar on a terminal, at most every intervalMs, and clears it when done', () => {
    const stream = fakeStream(true);
    const p = createProgress({ label: 'digesting model', total: 4 * 1048576, unit: 'bytes', stream, intervalMs: 100 });
    expect(p.active).toBe(true);
    p.tick(1048576);
    expect(stream.text).toContain(' 25% 1.0 MB/4.0 MB');
    const drawn = stream.text;
    p.tick(1048576); // within 100 ms: not redrawn
    expect(stream.text).toBe(drawn);
    vi.advanceTimersByTime(150);
    p.tick(1048576);
    expect(stream.text).toContain(' 75% 3.0 MB/4.0 MB');
    expect(stream.text).toContain('█');
    p.done();
    expect(stream.text.endsWith('\r\u001b[2K')).toBe(true);
    // No line is longer than the terminal.
    for (const line of stream.text.split('\r')) expect(line.length).toBeLessThan(80 + 8);
  });

  it('shows a count with a spinner when the total is unknown', () => {
    const stream = fakeStream(true);
    const p = createProgress({ label: 'verifying audit log', stream });
    p.update(1234, 'segment 2');
    expect(stream.text).toMatch(/verifying audit log 1234 segment 2/);
  });

  it('is silent when stderr is not a terminal, under --json, and on CI', () => {
    const pipe = fakeStream(false);
    const tty = fakeStream(true);
    for (const p of [
      createProgress({ label: 'x', total: 10, stream: pipe }),
      createProgress({ label: 'x', total: 10, stream: tty, json: true }),
    ]) {
      expect(p.active).toBe(false);
      p.tick(5);
      p.done();
    }
    process.env.CI = 'true';
    const onCi = createProgress({ label: 'x', total: 10, stream: tty });
    onCi.tick(5);
    expect(onCi.active).toBe(false);
    expect(pipe.text + tty.text).toBe('');
  });

  it('status line: redrawn in place on a terminal, silent otherwise', () => {
    const tty = fakeStream(true);
    const line = createStatusLine({ stream: tty });
    line.set('3 devices');
    line.set('4 devices');
    line.clear();
    expect(tty.text).toBe('\r\u001b[2K3 devices\r\u001b[2K4 devices\r\u001b[2K');
    const pipe = fakeStream(false);
    const quiet = createStatusLine({ stream: pipe });
    quiet.set('x');
    quiet.clear();
    expect(quiet.active).toBe(false);
    expect(pipe.text).toBe('');
  });
});
