import { cpSync, existsSync, readdirSync, readFileSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { edgewarden } from '../__generated__/provenance.js';
import { type AuditBase, BASE_FILE, readBase, writeBase } from './audit-base';
import { AuditLog } from './audit-log';
import { RESUME_FILE } from './audit-resume';
import { chain, checkpointOf, tempDirs } from './audit-test-helpers';
import { exportAudit, verifyAuditExport, verifyAuditLog } from './audit-verify';
import { KeySigner, TrustStore } from './keys';
import { leafHash, MerkleTree } from './merkle';

const freshDir = tempDirs('ew-retain-');

const signer = KeySigner.generate();
const trust = new TrustStore([signer.publicKey]);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const records = chain(signer, 400);
/** The tree of every record, never pruned: what a pruned log must still agree with. */
const reference = new MerkleTree();
for (const r of records) reference.append(leafHash(r));

const DAY = 86_400_000;
let now = Date.now();
const clock = { now: () => now, monotonicNs: () => 0n };
const segs = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort();
/** Makes every segment file look last written `days` ago. */
function age(dir: string, days: number): void {
  const t = (now - days * DAY) / 1000;
  for (const n of segs(dir)) utimesSync(join(dir, n), t, t);
}

/** Appends records [from, to) with a checkpoint every 40, on ~2 KiB segments. */
async function fill(log: AuditLog, from: number, to: number): Promise<void> {
  expect(log.size).toBe(from);
  for (let i = from; i < to; i++) {
    log.appendRecord(records[i] as Uint8Array);
    if (log.size % 40 === 0) void log.appendCheckpoint(checkpointOf(signer, log.tree));
  }
  await log.flush();
}

const open = (dir: string, retainDays?: number) =>
  AuditLog.open(dir, { durability: 'none', segmentBytes: 2048, clock, ...(retainDays ? { retainDays } : {}) });

describe('audit log retention', () => {
  it('removes the segments older than the period, keeps the chain and the tree, and reopens from its base', async () => {
    const dir = freshDir();
    let log = await open(dir, 30);
    await fill(log, 0, 200);
    await log.close();
    const before = segs(dir);
    expect(before.length).toBeGreaterThan(8);
    age(dir, 31); // everything written so far is past the period
    log = await open(dir, 30);
    // On open: every sealed segment goes; the one being written stays.
    const kept = segs(dir);
    expect(kept.length).toBeLessThan(before.length);
    expect(kept.at(-1)).toBe(before.at(-1));
    const base = readBase(dir);
    if (!base) throw new Error('no base');
    expect(log.base).toBe(base.firstIndex);
    expect(base.firstIndex).toBeGreaterThan(0);
    expect(base.firstSegment).toBe(kept[0]);
    expect(hex(log.tree.root())).toBe(hex(reference.root(200)));
    // The resume point was saved again at once: a crash now still opens from it.
    const crashed = freshDir();
    cpSync(dir, crashed, { recursive: true });
    const reopened = await open(crashed);
    expect(reopened.resumed).toBe(200 - base.firstIndex);
    await reopened.close();
    // The chain goes on: appends and checkpoints after the removal are those of the whole history.
    await fill(log, 200, 300);
    expect(hex(log.tree.root())).toBe(hex(reference.root(300)));
    expect(log.tree.inclusionProof(250).map(hex)).toEqual(reference.inclusionProof(250, 300).map(hex));
    expect(() => log.tree.inclusionProof(base.firstIndex - 1)).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_PRUNED' }),
    );
    await log.close();

    for (const withResume of [true, false]) {
      const copy = freshDir();
      cpSync(dir, copy, { recursive: true });
      if (!withResume) unlinkSync(join(copy, RESUME_FILE));
      const again = await open(copy);
      expect(again.damage).toBeUndefined();
      expect(again.base).toBe(base.firstIndex);
      expect(again.size).toBe(300);
      expect(again.resumed).toBe(withResume ? 300 - base.firstIndex : 0);
      expect(hex(again.tree.root())).toBe(hex(reference.root(300)));
      await again.close();
    }
    const report = await verifyAuditLog(dir, { trust });
    expect(report).toMatchObject({ ok: true, size: 300, base: base.firstIndex });
    expect(report.rootHash).toBe(hex(reference.root(300)));
    // An auditor's export starts at the base and verifies offline.
    const exported = verifyAuditExport(await exportAudit(dir, signer.publicKey), { trust });
    expect(exported).toMatchObject({ ok: true, size: 300, base: base.firstIndex, rootHash: hex(reference.root(300)) });
    // An export whose base edge is not a tree of its first index does not decode as one.
    const m = edgewarden.v1.AuditExport.decode(await exportAudit(dir, signer.publicKey));
    for (const bad of [
      { baseEdge: m.baseEdge.slice(1) },
      { firstIndex: 2 ** 60 },
      { baseEdge: [new Uint8Array(31)] },
    ]) {
      const forged = edgewarden.v1.AuditExport.encode({ ...m, ...bad }).finish();
      expect(() => verifyAuditExport(forged, { trust })).toThrow(
        expect.objectContaining({ code: 'EW_PROVENANCE_MALFORMED' }),
      );
    }
    // A forged edge of the right shape: the first signed checkpoint after the base gives it away.
    const shifted = m.baseEdge.map((h: Uint8Array, k: number) => (k === 1 ? h.map((x) => x ^ 1) : h));
    const lied = verifyAuditExport(edgewarden.v1.AuditExport.encode({ ...m, baseEdge: shifted }).finish(), { trust });
    expect(lied).toMatchObject({ ok: false, damage: { code: 'EW_PROVENANCE_AUDIT_CHECKPOINT' } });
  });

  it('keeps what is younger than the period, removes at each seal what has aged past it', async () => {
    const dir = freshDir();
    const log = await open(dir, 10);
    await fill(log, 0, 100);
    age(dir, 5);
    await fill(log, 100, 160); // seals segments: nothing is 10 days old yet
    expect(log.base).toBe(0);
    expect(existsSync(join(dir, BASE_FILE))).toBe(false);
    now += 6 * DAY; // the first 100 records' segments are now 11 days old, the rest were written just now
    const old = segs(dir);
    await fill(log, 160, 260);
    expect(log.base).toBeGreaterThan(0);
    expect(log.base).toBeLessThanOrEqual(100);
    expect(segs(dir)[0]! > old[0]!).toBe(true);
    expect(hex(log.tree.root())).toBe(hex(reference.root(260)));
    await log.close();
    expect((await verifyAuditLog(dir, { trust })).ok).toBe(true);
  });

  it('a removal cut short by a crash (base saved, old files still there) is finished by the next open', async () => {
    const dir = freshDir();
    let log = await open(dir, 30);
    await fill(log, 0, 120);
    await log.close();
    const saved = new Map(segs(dir).map((n) => [n, readFileSync(join(dir, n))]));
    age(dir, 40);
    log = await open(dir, 30);
    const base = log.base;
    await log.close();
    // Put the removed files back, as if the process had died between the base's rename and the unlinks.
    for (const [n, b] of saved) if (!existsSync(join(dir, n))) writeFileSync(join(dir, n), b);
    log = await open(dir);
    expect(log.damage).toBeUndefined();
    expect(log.base).toBe(base);
    expect(segs(dir).every((n) => n >= (readBase(dir) as { firstSegment: string }).firstSegment)).toBe(true);
    await log.close();
  });

  it('without its base, or with a forged one, the removed records are damage at their index', async () => {
    const dir = freshDir();
    let log = await open(dir, 30);
    await fill(log, 0, 200);
    await log.close();
    age(dir, 31);
    log = await open(dir, 30);
    await fill(log, 200, 240); // a checkpoint after the base
    await log.close();
    const missing = freshDir();
    cpSync(dir, missing, { recursive: true });
    unlinkSync(join(missing, BASE_FILE));
    unlinkSync(join(missing, RESUME_FILE));
    const r1 = await verifyAuditLog(missing, { trust });
    expect(r1.ok).toBe(false);
    expect(r1.damage).toMatchObject({ index: 0, code: 'EW_PROVENANCE_AUDIT_CHAIN' });

    const forged = freshDir();
    cpSync(dir, forged, { recursive: true });
    unlinkSync(join(forged, RESUME_FILE));
    const b = readFileSync(join(forged, BASE_FILE));
    const real = readBase(forged) as { firstIndex: number };
    // A well-formed base with another edge: the next signed checkpoint's root gives it away.
    const found = readBase(forged) as AuditBase;
    writeBase(forged, { ...found, edge: found.edge.map((h, k) => (k === 0 ? h : h.map((x) => x ^ 1))) });
    expect(readFileSync(join(forged, BASE_FILE)).equals(b)).toBe(false);
    const r2 = await verifyAuditLog(forged, { trust });
    expect(r2.ok).toBe(false);
    expect(r2.damage).toMatchObject({ index: real.firstIndex, code: 'EW_PROVENANCE_AUDIT_CHECKPOINT' });
    // Edge hashes that cannot be a tree of the first index, or a base that does not read at all:
    // as good as none.
    writeBase(forged, { ...found, edge: found.edge.slice(1) });
    expect((await verifyAuditLog(forged, { trust })).damage).toMatchObject({
      index: 0,
      code: 'EW_PROVENANCE_AUDIT_CHAIN',
    });
    writeFileSync(join(forged, BASE_FILE), b.subarray(0, b.length - 1));
    expect((await verifyAuditLog(forged, { trust })).damage).toMatchObject({ code: 'EW_PROVENANCE_AUDIT_CHAIN' });
  });

  it('a segment written before the clock was set counts as written now, and is kept a whole period', async () => {
    const dir = freshDir();
    let log = await open(dir, 30);
    await fill(log, 0, 120);
    await log.close();
    const [first, second] = segs(dir) as [string, string];
    age(dir, 40);
    utimesSync(join(dir, first), 86_400, 86_400); // 1970-01-02: no real-time clock, no time sync yet
    log = await open(dir, 30);
    expect(log.base).toBe(0);
    expect(segs(dir).slice(0, 2)).toEqual([first, second]);
    await log.close();
    now += 31 * DAY;
    log = await open(dir, 30);
    expect(log.base).toBeGreaterThan(0);
    expect(segs(dir)).not.toContain(first);
    await log.close();
  });

  it('never removes anything from a damaged log', async () => {
    const dir = freshDir();
    let log = await open(dir);
    await fill(log, 0, 120);
    await log.close();
    const first = segs(dir)[1]!;
    const bytes = readFileSync(join(dir, first));
    bytes[10] = (bytes[10] ?? 0) ^ 0xff;
    writeFileSync(join(dir, first), bytes);
    age(dir, 100);
    const before = segs(dir);
    log = await open(dir, 30);
    expect(log.damage).toBeDefined();
    expect(log.base).toBe(0);
    await log.close();
    expect(segs(dir).slice(0, before.length)).toEqual(before);
    expect(existsSync(join(dir, BASE_FILE))).toBe(false);
  });

  it('refuses a retention that is not a positive number of days', async () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(AuditLog.open(freshDir(), { retainDays: bad })).rejects.toMatchObject({
        code: 'EW_PROVENANCE_AUDIT_IO',
      });
    }
  });
});
