import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../sdk/provenance/audit-log';
import { verifyAuditLog } from '../sdk/provenance/audit-verify';
import { TrustStore, writeKeyPair } from '../sdk/provenance/keys';
import { ensureBuilt, ROOT } from './cli-build';

// The child imports the built package (createWarden from dist/index.js), or $EW_KILL_MODULE.
const MODULE = process.env.EW_KILL_MODULE ?? join(ROOT, 'dist', 'index.js');
const MODEL = join(ROOT, 'sdk', 'engine', 'fixtures', 'add.onnx');
const KILLS = 21;

let home: string;
let trust: TrustStore;
let child: ChildProcess | undefined;

beforeAll(async () => {
  if (!process.env.EW_KILL_MODULE) ensureBuilt();
  home = await mkdtemp(join(tmpdir(), 'ew-kill-'));
  trust = new TrustStore([(await writeKeyPair(join(home, 'keys'), 'device')).publicKey]);
}, 240_000);

afterAll(async () => {
  child?.kill('SIGKILL');
  await rm(home, { recursive: true, force: true });
});

/** Starts a child, kills it with SIGKILL `delayMs` after it is ready; returns the leaf hashes whose bundles resolved. */
function runAndKill(mode: string, delayMs: number): Promise<Set<string>> {
  return new Promise((resolve, reject) => {
    const resolved = new Set<string>();
    const c = spawn(process.execPath, [join(ROOT, 'test', 'kill-child.mjs')], {
      env: { ...process.env, EW_MODULE: pathToFileURL(MODULE).href, EW_HOME: home, EW_MODE: mode, EW_MODEL: MODEL },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    let buf = '';
    let err = '';
    let killed = false;
    const guard = setTimeout(() => {
      c.kill('SIGKILL');
      reject(new Error(`child never became ready: ${err}`));
    }, 20_000);
    c.stderr?.on('data', (d) => {
      err += d;
    });
    c.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready' && !killed) {
          killed = true;
          clearTimeout(guard);
          setTimeout(() => c.kill('SIGKILL'), delayMs);
        } else if (/^[0-9a-f]{64}$/.test(line)) resolved.add(line);
        nl = buf.indexOf('\n');
      }
    });
    c.on('exit', (code, signal) => {
      clearTimeout(guard);
      child = undefined;
      if (signal === 'SIGKILL' && killed) resolve(resolved);
      else reject(new Error(`child exited with ${code ?? signal} before the kill: ${err}`));
    });
  });
}

describe('SIGKILL during signed inference (durability always)', () => {
  it(`no record whose bundle resolved is lost, and the chain verifies, across ${KILLS} kills`, async () => {
    let totalResolved = 0;
    for (let k = 0; k < KILLS; k++) {
      const mode = k % 2 === 0 ? 'batched' : 'per-output';
      // Random moments: from right after start-up to well into steady inference.
      const resolved = await runAndKill(mode, Math.floor(Math.random() * 400));
      totalResolved += resolved.size;
      const log = await AuditLog.open(join(home, 'audit'), { durability: 'always' });
      try {
        expect(log.damage, `kill ${k}`).toBeUndefined();
        const leaves = new Set<string>();
        for (let i = 0; i < log.size; i++) leaves.add(Buffer.from(log.tree.leaf(i)).toString('hex'));
        for (const leaf of resolved)
          expect(leaves.has(leaf), `kill ${k} (${mode}): resolved record ${leaf} lost`).toBe(true);
      } finally {
        await log.close();
      }
      const report = await verifyAuditLog(join(home, 'audit'), { trust });
      expect(report.ok, `kill ${k}: ${JSON.stringify(report.damage)}`).toBe(true);
    }
    // The kills must have landed while bundles were resolving, not only before the first one.
    expect(totalResolved).toBeGreaterThan(KILLS);
  }, 120_000);
});
