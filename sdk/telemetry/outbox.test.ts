import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox } from './outbox';
import { TokenBucket } from './token-bucket';

const dirs: string[] = [];
const boxes: Outbox[] = [];
afterEach(() => {
  for (const b of boxes.splice(0)) b.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ew-outbox-'));
  dirs.push(d);
  return d;
}

function open(dir: string, opts: Parameters<typeof Outbox.openSync>[1] = {}): Outbox {
  const b = Outbox.openSync(dir, { durability: 'none', ...opts });
  boxes.push(b);
  return b;
}

const payload = (seq: number) => () => new TextEncoder().encode(`hb-${seq}`);
const seqs = (b: Outbox) => [...b].map((e) => e.seq);

describe('outbox', () => {
  it('keeps entries in order across a reopen, applies receipts and removals', () => {
    const dir = tmp();
    const a = open(dir);
    for (let s = 1; s <= 5; s++) a.put(s, 1000 + s, payload(s));
    expect(a.ackUpTo(2)).toBe(2);
    expect(a.remove(4)).toBe(true);
    a.close();
    const b = open(dir);
    expect(seqs(b)).toEqual([3, 5]);
    expect(new TextDecoder().decode(b.get(5)!.payload)).toBe('hb-5');
    expect(b.get(5)!.timeUnixMs).toBe(1005);
    expect(b.lastSeq).toBe(5);
    expect(b.ackedUpTo).toBe(2);
    expect(() => b.put(5, 0, payload(5))).toThrow(/must exceed/);
  });

  it('is bounded: drops the oldest first, counts it, and tells the builder depth and dropped', () => {
    const b = open(tmp(), { maxEntries: 3 });
    const seen: { depth: number; dropped: number }[] = [];
    for (let s = 1; s <= 6; s++) {
      b.put(s, s, (st) => {
        seen.push(st);
        return new Uint8Array([s]);
      });
    }
    expect(seqs(b)).toEqual([4, 5, 6]);
    expect(b.dropped).toBe(3);
    expect(seen.at(-1)).toEqual({ depth: 2, dropped: 3 });
    expect(seen[2]).toEqual({ depth: 2, dropped: 0 });
  });

  it('fsyncs per append with durability always, and the data reads back', () => {
    const dir = tmp();
    const a = open(dir, { maxEntries: 10, durability: 'always' });
    for (let s = 1; s <= 20; s++) a.put(s, s, payload(s));
    a.ackUpTo(15);
    a.close();
    expect(seqs(open(dir))).toEqual([16, 17, 18, 19, 20]);
  });

  it('stays small on disk while dropping for a long time', () => {
    const dir = tmp();
    const a = open(dir, { maxEntries: 10 });
    for (let s = 1; s <= 3000; s++) a.put(s, s, payload(s));
    expect(a.dropped).toBe(2990);
    expect(statSync(join(dir, 'outbox.log')).size).toBeLessThan(80_000);
    a.close();
    const b = open(dir, { maxEntries: 10 });
    expect(b.dropped).toBe(2990);
    expect(seqs(b)).toEqual(Array.from({ length: 10 }, (_, i) => 2991 + i));
  });

  it('survives a torn tail: cuts it, reports the bytes, and appends cleanly after', () => {
    const dir = tmp();
    const a = open(dir);
    a.put(1, 1, payload(1));
    a.put(2, 2, payload(2));
    a.close();
    appendFileSync(join(dir, 'outbox.log'), Buffer.from([40, 0, 0, 0, 1, 2, 3]));
    const b = open(dir);
    expect(b.recovery.truncatedBytes).toBe(7);
    expect(seqs(b)).toEqual([1, 2]);
    b.put(3, 3, payload(3));
    b.close();
    expect(seqs(open(dir))).toEqual([1, 2, 3]);
  });

  it('stops at a damaged record (bad CRC) and keeps what came before it', () => {
    const dir = tmp();
    const a = open(dir);
    a.put(1, 1, payload(1));
    const size1 = statSync(join(dir, 'outbox.log')).size;
    a.put(2, 2, payload(2));
    a.close();
    const bytes = readFileSync(join(dir, 'outbox.log'));
    bytes[size1 + 10]! ^= 0xff;
    writeFileSync(join(dir, 'outbox.log'), bytes);
    const b = open(dir);
    expect(seqs(b)).toEqual([1]);
    expect(b.recovery.truncatedBytes).toBe(bytes.length - size1);
  });

  it('compacts when acknowledged records pile up, keeping lastSeq, dropped and content', () => {
    const dir = tmp();
    const a = open(dir, { maxEntries: 10 });
    for (let s = 1; s <= 3000; s++) {
      a.put(s, s, payload(s));
      if (s % 7 === 0) a.ackUpTo(s - 3);
    }
    const size = statSync(join(dir, 'outbox.log')).size;
    expect(size).toBeLessThan(40_000);
    const live = seqs(a);
    const dropped = a.dropped;
    a.close();
    const b = open(dir, { maxEntries: 10 });
    expect(seqs(b)).toEqual(live);
    expect(b.dropped).toBe(dropped);
    expect(b.lastSeq).toBe(3000);
  });

  it('refuses a second live owner and takes over a dead owner’s lock', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'lock'), '1'); // pid 1 is alive (init)
    expect(() => Outbox.openSync(dir)).toThrow(expect.objectContaining({ code: 'EW_TELEMETRY_OUTBOX' }));
    writeFileSync(join(dir, 'lock'), '999999999');
    const b = open(dir);
    expect(b.recovery.staleLockPid).toBe(999999999);
  });

  it('finds the first entry at or after a seq', () => {
    const b = open(tmp());
    for (const s of [2, 4, 6, 8]) b.put(s, s, payload(s));
    b.remove(6);
    expect(b.firstAtOrAfter(1)?.seq).toBe(2);
    expect(b.firstAtOrAfter(5)?.seq).toBe(8);
    expect(b.firstAtOrAfter(9)).toBeUndefined();
  });
});

describe('token bucket', () => {
  it('allows a burst, then paces at the rate on the injected clock', () => {
    let now = 0;
    const t = new TokenBucket(10, 2, () => now);
    expect([t.take(), t.take(), t.take()]).toEqual([true, true, false]);
    expect(t.waitMs()).toBe(100);
    now += 100;
    expect(t.take()).toBe(true);
    now += 10_000;
    expect([t.take(), t.take(), t.take()]).toEqual([true, true, false]);
  });
});
