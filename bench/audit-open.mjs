#!/usr/bin/env node
// Audit-log open benchmark: prints JSON. Builds a log of N chained records (a checkpoint every
// 1,000), then times `AuditLog.open` in fresh processes, alternating: from the resume point that
// `close()` saved, and scanning from the first byte (the same log with its RESUME file set aside).
// The full scan is the baseline; `ratio` is its median time over the resume point's.
//   npm run build && node bench/audit-open.mjs [--records N] [--runs R]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const records = opt('--records', 100_000);
const runs = opt('--runs', 5);
const entry = pathToFileURL(join(root, 'dist', 'warden', 'index.js')).href;
const { AuditLog, KeySigner, encodeRecord, signCheckpointSync } = await import(entry);

const work = mkdtempSync(join(tmpdir(), 'ew-bench-open-'));
try {
  const resumed = join(work, 'resumed');
  const signer = KeySigner.generate();
  const log = await AuditLog.open(resumed, { durability: 'none' });
  const zero = new Uint8Array(32);
  for (let i = 0; i < records; i++) {
    const bytes = encodeRecord({
      version: 1,
      deviceKeyid: signer.keyId,
      index: i,
      timeUnixMs: 1_700_000_000_000 + i,
      bootId: zero.subarray(0, 16),
      monotonicNs: i,
      clockSynced: true,
      modelDigest: zero,
      modelName: 'bench',
      policyDigest: new Uint8Array(0),
      decision: { outcome: 'allowed', ruleId: '', authority: '' },
      inputDigest: createHash('sha256').update(`in${i}`).digest(),
      outputDigest: createHash('sha256').update(`out${i}`).digest(),
      executionProvider: 'cpu',
      runtimeVersion: 'bench',
      sdkVersion: 'bench',
      prevLeafHash: log.lastLeafHash,
      labels: {},
      salted: false,
    });
    log.appendRecord(bytes);
    if ((i + 1) % 1000 === 0) {
      await log.appendCheckpoint(
        signCheckpointSync(signer, {
          deviceKeyid: signer.keyId,
          treeSize: log.size,
          rootHash: log.tree.root(),
          timeUnixMs: 1,
          bootId: zero.subarray(0, 16),
        }),
      );
    }
  }
  const t0 = performance.now();
  await log.close();
  const closeMs = performance.now() - t0;
  const full = join(work, 'full');
  cpSync(resumed, full, { recursive: true });
  unlinkSync(join(full, 'RESUME'));

  // One open in a fresh process; it prints its time and how many records it restored.
  const child = `const { AuditLog } = await import(${JSON.stringify(entry)});
const t0 = performance.now(); const log = await AuditLog.open(process.argv[1]); const ms = performance.now() - t0;
console.log(JSON.stringify({ ms, size: log.size, resumed: log.resumed }));
// Leave the directory as it was: no close (which would save a resume point in the baseline's copy).
process.exit(0);`;
  const openOnce = (dir) => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', child, dir], { encoding: 'utf8' });
    rmSync(join(dir, 'LOCK'), { force: true });
    return JSON.parse(out.trim().split('\n').pop());
  };
  const times = { resumed: [], full: [] };
  for (let r = 0; r < runs; r++) {
    for (const [side, dir] of r % 2
      ? [
          ['full', full],
          ['resumed', resumed],
        ]
      : [
          ['resumed', resumed],
          ['full', full],
        ]) {
      const res = openOnce(dir);
      if (res.size !== records) throw new Error(`${side} open found ${res.size} records, expected ${records}`);
      if ((side === 'resumed') !== (res.resumed === records)) throw new Error(`${side} open resumed ${res.resumed}`);
      times[side].push(res.ms);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const ms = (x) => Math.round(x * 10) / 10;
  const seg = statSync(join(resumed, '000000000000.seg')).size;
  console.log(
    JSON.stringify(
      {
        machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
        records,
        runs,
        segmentBytes: seg,
        resumeBytes: statSync(join(resumed, 'RESUME')).size,
        fullScanOpenMs: ms(median(times.full)),
        resumedOpenMs: ms(median(times.resumed)),
        ratio: Math.round((median(times.full) / median(times.resumed)) * 100) / 100,
        closeWritingResumeMs: ms(closeMs),
      },
      null,
      2,
    ),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
