import { cpSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from './audit-log';
import { RESUME_FILE } from './audit-resume';
import { chain, checkpointOf, tempDirs } from './audit-test-helpers';
import { encodeEnvelope, PAYLOAD_TYPES, signEnvelopeSync } from './dsse';
import { KeySigner } from './keys';
import { leafHash, MerkleTree } from './merkle';

// The audit log's tree keeps its lower levels only for the last block of 64 records and reads older
// blocks back from the segment files when a proof needs them (MerkleTree.spill, audit-leaves.ts).

const freshDir = tempDirs('ew-spill-');
const signer = KeySigner.generate();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const N = 700;
/** Past 64 complete blocks (4,096 records) the tree's oldest 32 leave memory and are read back. */
const MANY = 4200;
const records = chain(signer, MANY);
const reference = new MerkleTree();
for (const r of records) reference.append(leafHash(r));
const kept = (t: MerkleTree) => t.levelBytes().reduce((a, l) => a + l.length, 0);

/** Appends records [from, to): signed (per-output) on odd indices, with a checkpoint every 100. */
async function fill(log: AuditLog, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const r = records[i] as Uint8Array;
    if (i % 2) log.appendRecord(r, encodeEnvelope(signEnvelopeSync(signer, PAYLOAD_TYPES.record, r)));
    else log.appendRecord(r);
    if (log.size % 100 === 0) void log.appendCheckpoint(checkpointOf(signer, log.tree));
  }
  await log.flush();
}

const sameProofs = (log: AuditLog, size: number) => {
  for (const m of [0, 1, 63, 64, 65, 200, 333, size - 1]) {
    expect(log.tree.inclusionProof(m, size).map(hex)).toEqual(reference.inclusionProof(m, size).map(hex));
  }
  for (const o of [1, 64, 99, 450]) {
    expect(log.tree.consistencyProof(o, size).map(hex)).toEqual(reference.consistencyProof(o, size).map(hex));
  }
  expect(hex(log.tree.root())).toBe(hex(reference.root(size)));
};

describe('audit log tree spilled to the segments', () => {
  it('proves old records by reading them back, across segments, reopens, and keeps ~1 byte a record', async () => {
    const dir = freshDir();
    let log = await AuditLog.open(dir, { durability: 'group', segmentBytes: 8192 });
    await fill(log, 0, 500);
    expect(readdirSync(dir).filter((n) => n.endsWith('.seg')).length).toBeGreaterThan(10);
    sameProofs(log, 500);
    expect(kept(log.tree)).toBeLessThan(500 * 2 + 127 * 32);
    await log.close();
    for (const withResume of [true, false]) {
      const copy = freshDir();
      cpSync(dir, copy, { recursive: true });
      if (!withResume) unlinkSync(join(copy, RESUME_FILE));
      log = await AuditLog.open(copy, { durability: 'group', segmentBytes: 8192 });
      expect(log.resumed).toBe(withResume ? 500 : 0);
      expect(log.damage).toBeUndefined();
      await fill(log, 500, N);
      sameProofs(log, N);
      await log.close();
    }
  });

  it('a segment changed under an open log never yields a wrong proof', async () => {
    const dir = freshDir();
    const log = await AuditLog.open(dir, { durability: 'none', segmentBytes: 8192 });
    await fill(log, 0, MANY);
    const first = readdirSync(dir).filter((n) => n.endsWith('.seg'))[0] as string;
    const bytes = readFileSync(join(dir, first));
    bytes[40] = (bytes[40] ?? 0) ^ 0x10;
    writeFileSync(join(dir, first), bytes);
    expect(() => log.tree.inclusionProof(2, MANY)).toThrow(
      expect.objectContaining({ code: expect.stringMatching(/^EW_PROVENANCE_AUDIT_(IO|CHAIN)$/) }),
    );
    // Records elsewhere still prove.
    expect(log.tree.inclusionProof(4190, MANY).map(hex)).toEqual(reference.inclusionProof(4190, MANY).map(hex));
    await log.close();
  });
});
