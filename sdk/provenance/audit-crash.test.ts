import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from './audit-log';
import { verifyAuditLog } from './audit-verify';
import { KeySigner } from './keys';

// A child process appends records with durability `always` and prints each index whose `durable`
// resolved; the parent kills it with SIGKILL at random moments. Every reported record must survive,
// the chain must verify, and the next writer must pick up after any torn tail, with or without a
// resume point saved by an earlier clean close.

const root = join(process.cwd(), 'node_modules', '.cache', 'edgewarden-test');
const bundle = join(root, `provenance-${process.pid}.mjs`);
const work = mkdtempSync(join(tmpdir(), 'ew-crash-'));
const keyPem = KeySigner.generate().privateKeyPem(); // one device across all runs

const CHILD = `
const [bundlePath, dir] = process.argv.slice(1);
const api = await import(bundlePath);
const { createPrivateKey } = await import('node:crypto');
const signer = new api.KeySigner(createPrivateKey(process.env.EW_TEST_KEY));
const retain = process.env.EW_TEST_RETAIN_DAYS;
// With retention: small segments, each older than the period soon after it is sealed, so that
// removals (base written, files deleted) happen all the time and the kills land inside some.
const log = await api.AuditLog.open(dir, retain
  ? { durability: 'always', segmentBytes: 4096, retainDays: Number(retain) }
  : { durability: 'always' });
const zero = new Uint8Array(32);
process.stdout.write('open ' + log.size + '\\n');
for (;;) {
  const batch = 1 + Math.floor(Math.random() * 8);
  const pending = [];
  for (let j = 0; j < batch; j++) {
    const bytes = api.encodeRecord({
      version: 1, deviceKeyid: signer.keyId, index: log.size, timeUnixMs: Date.now(), bootId: zero.subarray(0, 16),
      monotonicNs: 1, clockSynced: true, modelDigest: zero, modelName: 'crash', policyDigest: zero,
      decision: { outcome: 'allowed', ruleId: '', authority: '' }, inputDigest: zero, outputDigest: zero,
      executionProvider: 'cpu', runtimeVersion: '1', sdkVersion: '0', prevLeafHash: log.lastLeafHash,
      labels: { pad: 'x'.repeat(Math.floor(Math.random() * 200)) }, salted: false,
    });
    const r = log.appendRecord(bytes);
    pending.push(r.durable.then(() => r.index));
  }
  const done = await Promise.all(pending);
  process.stdout.write('durable ' + Math.max(...done) + '\\n');
}
`;

beforeAll(async () => {
  mkdirSync(root, { recursive: true });
  await build({
    entryPoints: [join(process.cwd(), 'sdk', 'provenance', 'index.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    packages: 'external',
    logLevel: 'warning',
  });
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(bundle, { force: true });
});

/** Runs the child until it has reported `target` more durable records (or the deadline), then SIGKILLs it. */
function runAndKill(dir: string, afterLines: number, retainDays?: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', CHILD, bundle, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        EW_TEST_KEY: keyPem,
        ...(retainDays ? { EW_TEST_RETAIN_DAYS: String(retainDays) } : {}),
      },
    });
    let maxDurable = -1;
    let lines = 0;
    let buf = '';
    let stderr = '';
    const deadline = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('durable ')) {
          maxDurable = Math.max(maxDurable, Number(line.slice(8)));
          if (++lines === afterLines) child.kill('SIGKILL');
        }
        nl = buf.indexOf('\n');
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(deadline);
      if (signal !== 'SIGKILL') reject(new Error(`child exited on its own: ${stderr}`));
      else resolve(maxDurable);
    });
  });
}

describe('audit log under SIGKILL (durability always)', () => {
  it('never loses a record whose durable promise resolved, across 20 kills', async () => {
    const dir = join(work, 'log');
    let mustHave = -1;
    for (let round = 0; round < 20; round++) {
      const reported = await runAndKill(dir, 1 + Math.floor(Math.random() * 40));
      mustHave = Math.max(mustHave, reported);
      const report = await verifyAuditLog(dir);
      expect(report.damage).toBeUndefined();
      expect(report.ok).toBe(true);
      expect(report.size).toBeGreaterThanOrEqual(mustHave + 1);
      // Now and then a clean open and close saves a resume point: the kills after it hit a log that
      // its next writer opens from there, parsing only what came after.
      if (round % 5 === 4) {
        const clean = await AuditLog.open(dir);
        expect(clean.damage).toBeUndefined();
        await clean.close();
      }
    }
    const log = await AuditLog.open(dir);
    expect(log.resumed).toBe(log.size);
    expect(log.damage).toBeUndefined();
    expect(log.size).toBeGreaterThanOrEqual(mustHave + 1);
    await log.close();
    const final = await verifyAuditLog(dir);
    expect(final).toMatchObject({ ok: true });
    expect(final.tornTail).toBeUndefined();
  });

  it('with retention removing segments as it goes: every durable record it keeps survives, the chain verifies', async () => {
    const dir = join(work, 'retained');
    // 20 ms: a sealed segment is past the period by the next roll or the next open.
    const retainDays = 20 / 86_400_000;
    let mustHave = -1;
    const bases = new Set<number>();
    for (let round = 0; round < 20; round++) {
      const reported = await runAndKill(dir, 1 + Math.floor(Math.random() * 60), retainDays);
      mustHave = Math.max(mustHave, reported);
      const report = await verifyAuditLog(dir);
      expect(report.damage).toBeUndefined();
      expect(report.size).toBeGreaterThanOrEqual(mustHave + 1);
      expect(report.base).toBeLessThanOrEqual(report.size);
      bases.add(report.base);
    }
    // The killed writers themselves moved the base, again and again.
    expect(bases.size).toBeGreaterThan(5);
    const log = await AuditLog.open(dir, { retainDays });
    expect(log.damage).toBeUndefined();
    expect(log.base).toBeGreaterThan(0);
    expect(log.size).toBeGreaterThanOrEqual(mustHave + 1);
    await log.close();
  });
});
