import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFrame } from './audit-format';
import { AuditLog } from './audit-log';
import { RESUME_FILE, readResume } from './audit-resume';
import { chain, checkpointOf, tempDirs } from './audit-test-helpers';
import { verifyAuditLog } from './audit-verify';
import { KeySigner, TrustStore } from './keys';

const freshDir = tempDirs('ew-resume-');

const signer = KeySigner.generate();
const trust = new TrustStore([signer.publicKey]);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const records = chain(signer, 300);

/** Appends records [from, to) with a checkpoint every 50; returns the open log. */
async function fill(dir: string, from: number, to: number, segmentBytes?: number): Promise<AuditLog> {
  const log = await AuditLog.open(dir, { durability: 'none', ...(segmentBytes ? { segmentBytes } : {}) });
  expect(log.size).toBe(from);
  for (let i = from; i < to; i++) {
    log.appendRecord(records[i] as Uint8Array);
    if (log.size % 50 === 0) void log.appendCheckpoint(checkpointOf(signer, log.tree));
  }
  await log.flush();
  return log;
}

/** What an open rebuilt: size, root, last leaf, latest checkpoint, and how many records were resumed. */
async function state(dir: string) {
  const log = await AuditLog.open(dir);
  try {
    const cp = log.latestCheckpoint();
    return {
      size: log.size,
      root: hex(log.tree.root()),
      last: hex(log.lastLeafHash),
      checkpoint: cp ? hex(cp.payload) : '',
      frontier: log.tree.frontier().map((h) => (h ? hex(h) : '-')),
      resumed: log.resumed,
      damage: log.damage?.index,
    };
  } finally {
    await log.close();
  }
}

/** The same state computed by a scan from the first byte (the resume point removed). */
async function fullScanState(dir: string) {
  const copy = freshDir();
  cpSync(dir, copy, { recursive: true });
  unlinkSync(join(copy, RESUME_FILE));
  const s = await state(copy);
  expect(s.resumed).toBe(0);
  return s;
}

describe('audit log resume point', () => {
  it('a reopened log restores what a full scan rebuilds, without parsing the covered records', async () => {
    const dir = freshDir();
    await (await fill(dir, 0, 120)).close();
    const s = await state(dir);
    expect(s.resumed).toBe(120);
    expect(s.size).toBe(120);
    expect({ ...s, resumed: 0 }).toEqual(await fullScanState(dir));
    // Appending after a resumed open continues the same tree: proofs and roots match a full scan.
    await (await fill(dir, 120, 200)).close();
    const t = await state(dir);
    expect(t.resumed).toBe(200);
    expect({ ...t, resumed: 0 }).toEqual(await fullScanState(dir));
    expect((await verifyAuditLog(dir, { trust })).ok).toBe(true);
  });

  it('records written after the resume point (a crash before close) are parsed from where it ends', async () => {
    const dir = freshDir();
    await (await fill(dir, 0, 100)).close();
    const log = await fill(dir, 100, 160);
    // A copy of the directory taken while the log is open: what a power cut leaves.
    const crashed = freshDir();
    cpSync(dir, crashed, { recursive: true });
    unlinkSync(join(crashed, 'LOCK'));
    await log.close();
    const s = await state(crashed);
    expect(s.resumed).toBe(100);
    expect(s.size).toBe(160);
    expect({ ...s, resumed: 0 }).toEqual(await fullScanState(crashed));
  });

  it('covers sealed segments: each roll saves a resume point, and every segment is hashed, not parsed', async () => {
    const dir = freshDir();
    const log = await fill(dir, 0, 250, 8 * 1024);
    const segments = readdirSync(dir).filter((n) => n.endsWith('.seg'));
    expect(segments.length).toBeGreaterThan(3);
    // Saved at the last roll, before close.
    const atRoll = readResume(dir);
    expect(atRoll?.segments.map((x) => x.name)).toEqual(segments);
    await log.close();
    const s = await state(dir);
    expect(s.resumed).toBe(250);
    expect({ ...s, resumed: 0 }).toEqual(await fullScanState(dir));
  });

  it('a changed byte anywhere in the covered records falls back to the full scan and reports the exact index', async () => {
    const dir = freshDir();
    await (await fill(dir, 0, 80)).close();
    const seg = join(dir, readdirSync(dir).find((n) => n.endsWith('.seg')) as string);
    const pristine = readFileSync(seg);
    // The offset of record 37's entry, and a byte inside its body.
    let pos = 0;
    let entry = 0;
    let target = -1;
    while (pos < pristine.length) {
      const fr = readFrame(new Uint8Array(pristine), pos);
      if (!fr.ok) throw new Error('bad frame');
      if (fr.body[0] === 1 && entry++ === 37) target = pos + 20;
      pos = fr.next;
    }
    expect(target).toBeGreaterThan(0);
    const bad = Buffer.from(pristine);
    bad[target] = (bad[target] as number) ^ 0x10;
    writeFileSync(seg, bad);
    const s = await state(dir);
    expect(s.resumed).toBe(0);
    expect(s.damage).toBe(37);
  });

  it('a deleted covered segment is not resumed over', async () => {
    const dir = freshDir();
    await (await fill(dir, 0, 250, 8 * 1024)).close();
    const first = readdirSync(dir)
      .filter((n) => n.endsWith('.seg'))
      .sort()[0] as string;
    unlinkSync(join(dir, first));
    const s = await state(dir);
    expect(s.resumed).toBe(0);
    expect(s.damage).toBe(0);
  });

  it('a damaged resume file is ignored: every truncation and a flip in every byte give the full scan', async () => {
    const dir = freshDir();
    await (await fill(dir, 0, 60)).close();
    const expected = await fullScanState(dir);
    const file = join(dir, RESUME_FILE);
    const good = readFileSync(file);
    expect(readResume(dir)).toBeDefined();
    for (let i = 0; i < good.length; i++) {
      const flipped = Buffer.from(good);
      flipped[i] = (flipped[i] as number) ^ (1 << (i % 8));
      writeFileSync(file, flipped);
      expect(readResume(dir)).toBeUndefined();
      writeFileSync(file, good.subarray(0, i));
      expect(readResume(dir)).toBeUndefined();
    }
    writeFileSync(file, good.subarray(0, good.length >> 1));
    expect({ ...(await state(dir)), resumed: 0 }).toEqual(expected);
  });

  it('a rewritten resume file whose tree does not give its signed checkpoint root is refused', async () => {
    const dir = freshDir();
    await (await fill(dir, 0, 100)).close();
    const file = join(dir, RESUME_FILE);
    const good = readFileSync(file);
    // Change the hash of the first 64 leaves (level 6, which the root of 100 is made of; found by
    // content) and recompute the trailing checksum, as someone editing the file on purpose would.
    const reopened = await AuditLog.open(freshDirWithCopy(dir));
    const subtree = Buffer.from((reopened.tree.levelBytes()[6] as Uint8Array).subarray(0, 32));
    await reopened.close();
    const at = good.indexOf(subtree);
    expect(at).toBeGreaterThan(0);
    const forged = Buffer.from(good.subarray(0, good.length - 32));
    forged[at] = (forged[at] as number) ^ 1;
    writeFileSync(file, Buffer.concat([forged, createHash('sha256').update(forged).digest()]));
    expect(readResume(dir)).toBeUndefined();
    const s = await state(dir);
    expect(s.resumed).toBe(0);
    expect(s.size).toBe(100);
  });
});

/** A copy of a closed log's directory (without its lock), to open beside the original. */
function freshDirWithCopy(dir: string): string {
  const copy = freshDir();
  cpSync(dir, copy, { recursive: true });
  return copy;
}
