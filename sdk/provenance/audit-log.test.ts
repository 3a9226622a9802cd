import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { ENTRY_KIND, encodeFrame, readFrame, segmentName } from './audit-format';
import { AuditLog } from './audit-log';
import { chain, checkpointOf, recordBytes, snapshot } from './audit-test-helpers';
import { exportAudit, verifyAuditExport, verifyAuditLog } from './audit-verify';
import { encodeEnvelope, PAYLOAD_TYPES, signEnvelopeSync } from './dsse';
import { KeySigner, TrustStore } from './keys';
import { leafHash, MerkleTree } from './merkle';

const root = mkdtempSync(join(tmpdir(), 'ew-audit-'));
let seq = 0;
const freshDir = () => join(root, `log${seq++}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.useRealTimers());

const signer = KeySigner.generate();
const trust = new TrustStore([signer.publicKey]);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Byte offsets of every entry in a segment file. */
function entryOffsets(file: string): number[] {
  const buf = new Uint8Array(readFileSync(file));
  const out: number[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const r = readFrame(buf, pos);
    if (!r.ok) throw new Error(`bad frame at ${pos}`);
    out.push(pos);
    pos = r.next;
  }
  out.push(pos);
  return out;
}

/** A closed log of `n` records (checkpoints after records 3 and 7 when n > 8). */
async function buildLog(
  n: number,
  opts: { segmentBytes?: number; signed?: boolean } = {},
): Promise<{ dir: string; roots: string[] }> {
  const dir = freshDir();
  const log = await AuditLog.open(dir, { durability: 'none', segmentBytes: opts.segmentBytes });
  const roots: string[] = [];
  for (const r of chain(signer, n)) {
    const env = opts.signed ? encodeEnvelope(signEnvelopeSync(signer, PAYLOAD_TYPES.record, r)) : undefined;
    log.appendRecord(r, env);
    roots.push(hex(log.tree.root()));
    if (n > 8 && (log.size === 4 || log.size === 8)) await log.appendCheckpoint(checkpointOf(signer, log.tree));
  }
  await log.close();
  return { dir, roots };
}

describe('AuditLog basics', () => {
  it('appends, reopens with the same tree, chain and checkpoint, and verifies', async () => {
    const dir = freshDir();
    const log = await AuditLog.open(dir, { durability: 'always' });
    const records = chain(signer, 20);
    const results = records.map((r) => log.appendRecord(r));
    expect(results.map((r) => r.index)).toEqual([...Array(20).keys()]);
    // Appends made together share one write and one fsync.
    expect(new Set(results.map((r) => r.durable)).size).toBe(1);
    await Promise.all(results.map((r) => r.durable));
    const cp = checkpointOf(signer, log.tree);
    await log.appendCheckpoint(cp);
    const rootHex = hex(log.tree.root());
    await log.close();

    const again = await AuditLog.open(dir);
    expect(again.size).toBe(20);
    expect(hex(again.tree.root())).toBe(rootHex);
    expect(hex(again.lastLeafHash)).toBe(hex(leafHash(records[19]!)));
    expect(hex(encodeEnvelope(again.latestCheckpoint()!))).toBe(hex(encodeEnvelope(cp)));
    expect(again.damage).toBeUndefined();
    expect(again.recovery).toBeUndefined();
    again.appendRecord(recordBytes(signer, 20, again.lastLeafHash));
    await again.close();

    const report = await verifyAuditLog(dir, { trust });
    expect(report).toMatchObject({ ok: true, size: 21, checkpoints: 1, signaturesChecked: true });
  });

  it('reopens a log of signed records with the same tree; a signed entry of another payloadType is damage at its index', async () => {
    const { dir, roots } = await buildLog(12, { signed: true });
    const again = await AuditLog.open(dir);
    expect(again.size).toBe(12);
    expect(hex(again.tree.root())).toBe(roots[11]);
    expect(again.damage).toBeUndefined();
    await again.close();
    // Entry 5 rewritten (valid CRC) as an envelope of a checkpoint type around the same record bytes.
    const dir2 = freshDir();
    const log = await AuditLog.open(dir2, { durability: 'none' });
    const records = chain(signer, 6);
    for (const r of records.slice(0, 5))
      log.appendRecord(r, encodeEnvelope(signEnvelopeSync(signer, PAYLOAD_TYPES.record, r)));
    await log.close();
    // appendRecord refuses such an envelope, so the frame is written as it would lie on disk.
    const wrongType = encodeEnvelope(signEnvelopeSync(signer, PAYLOAD_TYPES.checkpoint, records[5]!));
    writeFileSync(join(dir2, segmentName(0)), encodeFrame(ENTRY_KIND.signedRecord, wrongType), { flag: 'a' });
    const tail = chain(signer, 7)[6]!;
    writeFileSync(join(dir2, segmentName(0)), encodeFrame(ENTRY_KIND.record, tail), { flag: 'a' });
    const reopened = await AuditLog.open(dir2);
    expect(reopened.damage).toMatchObject({ index: 5, code: 'EW_PROVENANCE_AUDIT_ENTRY' });
    expect(reopened.size).toBe(5);
    await reopened.close();
  });

  it('refuses a record out of chain, appends after close, and a checkpoint that does not match', async () => {
    const log = await AuditLog.open(freshDir(), { durability: 'none' });
    const records = chain(signer, 3);
    log.appendRecord(records[0]!);
    expect(() => log.appendRecord(records[2]!)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_AUDIT_CHAIN' }));
    expect(() => log.appendRecord(recordBytes(signer, 1, new Uint8Array(32)))).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_AUDIT_CHAIN' }),
    );
    const other = new MerkleTree();
    other.append(leafHash(records[1]!));
    expect(() => log.appendCheckpoint(checkpointOf(signer, other))).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_AUDIT_CHECKPOINT' }),
    );
    const signedOther = encodeEnvelope(signEnvelopeSync(signer, PAYLOAD_TYPES.record, records[0]!));
    expect(() => log.appendRecord(records[1]!, signedOther)).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_MALFORMED' }),
    );
    // A record of another device (a new key) does not belong in this log.
    const foreign = chain(KeySigner.generate(), 2)[1]!;
    expect(() => log.appendRecord(foreign)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_AUDIT_CHAIN' }));
    await log.close();
    expect(() => log.appendRecord(records[1]!)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_AUDIT_IO' }));
  });

  it('group durability resolves only when the group timer fires', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const log = await AuditLog.open(freshDir(), { durability: 'group', groupMs: 50 });
    let done = false;
    const r = log.appendRecord(chain(signer, 1)[0]!);
    void r.durable.then(() => {
      done = true;
    });
    await new Promise((res) => setImmediate(res));
    await new Promise((res) => setImmediate(res));
    expect(done).toBe(false);
    vi.advanceTimersByTime(50);
    await r.durable;
    expect(done).toBe(true);
    await log.close();
  });

  it('rolls segments at segmentBytes and reads them back in order', async () => {
    const { dir, roots } = await buildLog(40, { segmentBytes: 2000 });
    const segs = [...snapshot(dir).keys()];
    expect(segs.length).toBeGreaterThan(3);
    expect(segs[0]).toBe(segmentName(0));
    const log = await AuditLog.open(dir);
    expect(log.size).toBe(40);
    expect(hex(log.tree.root())).toBe(roots[39]);
    await log.close();
    const progress: [number, number][] = [];
    expect((await verifyAuditLog(dir, { trust, onSegment: (d, t) => progress.push([d, t]) })).ok).toBe(true);
    // One progress step per segment file, in order (what `audit verify` draws its bar from).
    expect(progress).toEqual(segs.map((_, i) => [i, segs.length]));
  });

  it('locks the log against a second writer and takes over a dead one', async () => {
    const dir = freshDir();
    const log = await AuditLog.open(dir);
    await expect(AuditLog.open(dir)).rejects.toMatchObject({ code: 'EW_PROVENANCE_AUDIT_LOCKED' });
    await log.close();
    writeFileSync(join(dir, 'LOCK'), String(process.ppid)); // a live process
    await expect(AuditLog.open(dir)).rejects.toMatchObject({ code: 'EW_PROVENANCE_AUDIT_LOCKED' });
    writeFileSync(join(dir, 'LOCK'), '999999999'); // no such process
    const again = await AuditLog.open(dir);
    await again.close();
  });
});

describe('AuditLog durability and verification with trust', () => {
  it('always: appends made while an fsync is in flight share the next fsync', async () => {
    const log = await AuditLog.open(freshDir(), { durability: 'always' });
    const records = chain(signer, 6);
    const first = log.appendRecord(records[0]!);
    await Promise.resolve(); // the first write and fsync start
    const later = records.slice(1).map((r) => log.appendRecord(r));
    expect(new Set(later.map((r) => r.durable)).size).toBe(1);
    expect(later[0]!.durable).not.toBe(first.durable);
    await Promise.all([first.durable, ...later.map((r) => r.durable)]);
    await log.close();
    expect(() => log.appendRecord(records[0]!)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_AUDIT_IO' }));
  });

  it('none: flush makes everything durable; close refuses appends made while it runs', async () => {
    const dir = freshDir();
    const log = await AuditLog.open(dir, { durability: 'none' });
    const records = chain(signer, 3);
    await log.appendRecord(records[0]!).durable;
    await log.flush();
    log.appendRecord(records[1]!);
    const closing = log.close();
    expect(() => log.appendRecord(records[2]!)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_AUDIT_IO' }));
    await closing;
    expect((await verifyAuditLog(dir)).size).toBe(2);
  });

  it('reports a checkpoint or signed record by an untrusted key, and a missing log', async () => {
    const other = KeySigner.generate();
    const dir = freshDir();
    const log = await AuditLog.open(dir, { durability: 'none' });
    const records = chain(signer, 3);
    log.appendRecord(records[0]!);
    log.appendRecord(records[1]!, encodeEnvelope(signEnvelopeSync(other, PAYLOAD_TYPES.record, records[1]!)));
    await log.close();
    expect((await verifyAuditLog(dir, { trust })).damage).toMatchObject({
      index: 1,
      code: 'EW_PROVENANCE_UNTRUSTED_KEY',
    });
    expect((await verifyAuditLog(dir)).ok).toBe(true); // without trust, signatures are not checked

    const dir2 = freshDir();
    const log2 = await AuditLog.open(dir2, { durability: 'none' });
    log2.appendRecord(records[0]!);
    log2.appendRecord(records[1]!);
    // Same device id in the payload, but signed by another key.
    const forged = signEnvelopeSync(other, PAYLOAD_TYPES.checkpoint, checkpointOf(signer, log2.tree).payload);
    await log2.appendCheckpoint(forged);
    await log2.close();
    expect((await verifyAuditLog(dir2, { trust })).damage).toMatchObject({
      index: 2,
      code: 'EW_PROVENANCE_AUDIT_CHECKPOINT',
    });
    await expect(verifyAuditLog(join(root, 'missing'))).rejects.toMatchObject({ code: 'EW_PROVENANCE_AUDIT_IO' });
  });
});

describe('torn tail recovery', () => {
  it('truncation at every byte offset of the last entry recovers all earlier entries', async () => {
    const { dir, roots } = await buildLog(6);
    const seg = join(dir, segmentName(0));
    const offsets = entryOffsets(seg);
    const lastStart = offsets.at(-2)!;
    const end = offsets.at(-1)!;
    const original = readFileSync(seg);
    for (let cut = lastStart; cut < end; cut++) {
      const d = freshDir();
      cpSync(dir, d, { recursive: true });
      truncateSync(join(d, segmentName(0)), cut);
      const log = await AuditLog.open(d, { durability: 'always' });
      expect(log.damage).toBeUndefined();
      expect(log.size).toBe(5);
      expect(hex(log.tree.root())).toBe(roots[4]);
      expect(log.recovery).toEqual(
        cut === lastStart ? undefined : expect.objectContaining({ offset: lastStart, droppedBytes: cut - lastStart }),
      );
      // Earlier bytes are untouched; the log goes on.
      expect(
        readFileSync(join(d, segmentName(0)))
          .subarray(0, lastStart)
          .equals(original.subarray(0, lastStart)),
      ).toBe(true);
      await log.appendRecord(recordBytes(signer, 5, log.lastLeafHash)).durable;
      await log.close();
      const report = await verifyAuditLog(d, { trust });
      expect(report).toMatchObject({ ok: true, size: 6, recoveries: cut === lastStart ? 0 : 1 });
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('truncation anywhere in a trailing checkpoint keeps every record and the earlier checkpoint', async () => {
    const dir = freshDir();
    const log = await AuditLog.open(dir, { durability: 'none' });
    for (const r of chain(signer, 5)) log.appendRecord(r);
    const first = checkpointOf(signer, log.tree, 3);
    await log.appendCheckpoint(first);
    await log.appendCheckpoint(checkpointOf(signer, log.tree));
    await log.close();
    const offsets = entryOffsets(join(dir, segmentName(0)));
    for (let cut = offsets.at(-2)! + 1; cut < offsets.at(-1)!; cut++) {
      const d = freshDir();
      cpSync(dir, d, { recursive: true });
      truncateSync(join(d, segmentName(0)), cut);
      const again = await AuditLog.open(d);
      expect(again.size).toBe(5);
      expect(again.recovery).toBeDefined();
      expect(hex(encodeEnvelope(again.latestCheckpoint()!))).toBe(hex(encodeEnvelope(first)));
      await again.close();
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('treats a bad CRC on the very last entry, or a zero-filled tail, as torn', async () => {
    const { dir } = await buildLog(5);
    const seg = join(dir, segmentName(0));
    const offsets = entryOffsets(seg);
    const buf = readFileSync(seg);
    buf[offsets.at(-1)! - 2]! ^= 0x10;
    writeFileSync(seg, buf);
    expect(await verifyAuditLog(dir)).toMatchObject({ ok: true, size: 4, tornTail: { offset: offsets.at(-2) } });
    const log = await AuditLog.open(dir);
    expect(log.size).toBe(4);
    expect(log.recovery?.reason).toBe('crc');
    await log.close();

    const { dir: d2 } = await buildLog(5);
    const seg2 = join(d2, segmentName(0));
    writeFileSync(seg2, Buffer.concat([readFileSync(seg2), Buffer.alloc(300)]));
    const log2 = await AuditLog.open(d2);
    expect(log2.size).toBe(5);
    expect(log2.recovery).toMatchObject({ droppedBytes: 300 });
    await log2.close();
  });
});

describe('damage before the tail is reported at its exact index and never truncated', () => {
  /** `size`: records before the damaged entry (differs from `index` only for a checkpoint mismatch). */
  async function expectDamage(dir: string, index: number, code: string, size = index): Promise<void> {
    const before = snapshot(dir);
    const report = await verifyAuditLog(dir, { trust });
    expect(report.ok).toBe(false);
    expect(report.damage).toMatchObject({ index, code });
    const log = await AuditLog.open(dir, { durability: 'none', deviceKeyid: signer.keyId });
    expect(log.damage).toMatchObject({ index, code });
    expect(log.size).toBe(size);
    // It keeps going in a new segment...
    await log.appendRecord(recordBytes(signer, log.size, log.lastLeafHash)).durable;
    await log.close();
    // ...and every byte that was there is still there.
    const after = snapshot(dir);
    for (const [name, bytes] of before) expect(after.get(name)).toBe(bytes);
    expect(after.size).toBe(before.size + 1);
  }

  it('a flipped byte in any entry before the last', async () => {
    const { dir } = await buildLog(12);
    const seg = join(dir, segmentName(0));
    const offsets = entryOffsets(seg);
    // Entries: r0..r3, cp, r4..r7, cp, r8..r11. Record index of each entry start:
    const recordIndexOf = [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9, 10, 11];
    for (let e = 0; e < offsets.length - 2; e++) {
      for (const within of [0, 3, 4, 5, 17]) {
        const at = Math.min(offsets[e]! + within, offsets[e + 1]! - 1);
        const d = freshDir();
        cpSync(dir, d, { recursive: true });
        const buf = readFileSync(join(d, segmentName(0)));
        buf[at]! ^= 0x04;
        writeFileSync(join(d, segmentName(0)), buf);
        await expectDamage(d, recordIndexOf[e]!, 'EW_PROVENANCE_AUDIT_CRC');
        rmSync(d, { recursive: true, force: true });
      }
    }
  });

  it('a deleted, a reordered and a spliced entry', async () => {
    const { dir } = await buildLog(7);
    const seg = join(dir, segmentName(0));
    const o = entryOffsets(seg);
    const buf = readFileSync(seg);
    const entry = (i: number) => buf.subarray(o[i]!, o[i + 1]!);
    const rebuild = (order: Buffer[]) => {
      const d = freshDir();
      cpSync(dir, d, { recursive: true });
      writeFileSync(join(d, segmentName(0)), Buffer.concat(order));
      return d;
    };
    const all = [...Array(7).keys()];
    for (const k of [0, 2, 5]) {
      await expectDamage(rebuild(all.filter((i) => i !== k).map(entry)), k, 'EW_PROVENANCE_AUDIT_CHAIN');
      const swapped = [...all];
      [swapped[k], swapped[k + 1]] = [swapped[k + 1]!, swapped[k]!];
      await expectDamage(rebuild(swapped.map(entry)), k, 'EW_PROVENANCE_AUDIT_CHAIN');
      // A duplicate of an earlier entry, and a record from another device's log, spliced in at k.
      if (k > 0) {
        const dup = [...all.slice(0, k).map(entry), entry(k - 1), ...all.slice(k).map(entry)];
        await expectDamage(rebuild(dup), k, 'EW_PROVENANCE_AUDIT_CHAIN');
      }
      const foreign = encodeFrame(ENTRY_KIND.record, chain(KeySigner.generate(), k + 1)[k]!);
      const spliced = [...all.slice(0, k).map(entry), Buffer.from(foreign), ...all.slice(k).map(entry)];
      await expectDamage(rebuild(spliced), k, 'EW_PROVENANCE_AUDIT_CHAIN');
    }
  });

  it('a rewritten history with valid CRCs and chain is caught by the signed checkpoint', async () => {
    const { dir } = await buildLog(12);
    const seg = join(dir, segmentName(0));
    const o = entryOffsets(seg);
    const buf = readFileSync(seg);
    // Rewrite records 5..7 (entries 6..8) with another label, re-chaining and re-framing them.
    const forged = chain(signer, 12, 'forged');
    const honest = chain(signer, 5);
    let prev = leafHash(honest[4]!);
    const parts: Buffer[] = [buf.subarray(0, o[6]!)];
    for (let i = 5; i < 8; i++) {
      const r = recordBytes(signer, i, prev, 'forged');
      prev = leafHash(r);
      parts.push(Buffer.from(encodeFrame(ENTRY_KIND.record, r)));
    }
    parts.push(buf.subarray(o[9]!, o[10]!)); // the honest checkpoint of size 8
    expect(forged.length).toBe(12);
    const d = freshDir();
    cpSync(dir, d, { recursive: true });
    writeFileSync(join(d, segmentName(0)), Buffer.concat(parts));
    // Records 4..7 lie between the checkpoints of sizes 4 and 8: the earliest that can be at fault is 4.
    await expectDamage(d, 4, 'EW_PROVENANCE_AUDIT_CHECKPOINT', 8);
  });

  it('damage in an earlier segment of a multi-segment log', async () => {
    const { dir } = await buildLog(40, { segmentBytes: 2000 });
    const seg1 = join(dir, segmentName(1));
    const firstIndexInSeg1 = (await (async () => {
      const d = freshDir();
      cpSync(dir, d, { recursive: true });
      rmSync(join(d, segmentName(1)));
      const r = await verifyAuditLog(d);
      rmSync(d, { recursive: true, force: true });
      return r.damage!.index;
    })()) as number;
    const o = entryOffsets(seg1);
    const buf = readFileSync(seg1);
    // Damage the third entry; its index counts the record entries before it in this segment.
    let index = firstIndexInSeg1;
    for (let e = 0; e < 2; e++) if (buf[o[e]! + 4] !== ENTRY_KIND.checkpoint) index++;
    buf[o[2]! + 9]! ^= 1;
    writeFileSync(seg1, buf);
    await expectDamage(dir, index, 'EW_PROVENANCE_AUDIT_CRC');
  });
});

describe('audit export', () => {
  it('exports and verifies offline, and reports tampering in the export at its index', async () => {
    const { dir } = await buildLog(12, { signed: true });
    const bytes = await exportAudit(dir, signer.publicKey);
    expect(verifyAuditExport(bytes, { trust })).toMatchObject({ ok: true, size: 12, checkpoints: 2 });
    expect(verifyAuditExport(bytes, { trust: new TrustStore([KeySigner.generate().publicKey]) }).damage?.code).toBe(
      'EW_PROVENANCE_UNTRUSTED_KEY',
    );
    // Flip a byte deep inside record 6's bytes in the export: its chain or signature breaks at 6 or 7.
    const { edgewarden } = await import('../__generated__/provenance.js');
    const m = edgewarden.v1.AuditExport.decode(bytes);
    m.records = m.records.filter((_, i) => i !== 6);
    m.signedRecords = m.signedRecords.filter((_, i) => i !== 6);
    const deleted = verifyAuditExport(edgewarden.v1.AuditExport.encode(m).finish());
    expect(deleted.damage).toMatchObject({ index: 6, code: 'EW_PROVENANCE_AUDIT_CHAIN' });
    expect(() => verifyAuditExport(new Uint8Array([0x0a, 0xff, 0xff]))).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_MALFORMED' }),
    );
  });

  it('refuses to export a damaged log, naming the index', async () => {
    const { dir } = await buildLog(6);
    const seg = join(dir, segmentName(0));
    const o = entryOffsets(seg);
    const buf = readFileSync(seg);
    buf[o[2]! + 6]! ^= 0xff;
    writeFileSync(seg, buf);
    await expect(exportAudit(dir, signer.publicKey)).rejects.toMatchObject({
      code: 'EW_PROVENANCE_AUDIT_CRC',
      details: { index: 2 },
    });
  });
});
