// Shared by the audit log tests: records with a valid chain, and file snapshots.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { signCheckpointSync } from './checkpoint';
import type { Envelope } from './dsse';
import type { KeySigner } from './keys';
import { leafHash, type MerkleTree } from './merkle';
import { encodeRecord } from './record';

/** Record bytes for `index` chained to `prev`. */
export function recordBytes(signer: KeySigner, index: number, prev: Uint8Array, label = 'x'): Uint8Array {
  return encodeRecord({
    version: 1,
    deviceKeyid: signer.keyId,
    index,
    timeUnixMs: 1_700_000_000_000 + index,
    bootId: new Uint8Array(16).fill(3),
    monotonicNs: index * 1000,
    clockSynced: true,
    modelDigest: new Uint8Array(32).fill(1),
    modelName: 'model',
    policyDigest: new Uint8Array(0),
    decision: { outcome: 'allowed', ruleId: '', authority: '' },
    inputDigest: createHash('sha256').update(`in${index}`).digest(),
    outputDigest: createHash('sha256').update(`out${index}`).digest(),
    executionProvider: 'cpu',
    runtimeVersion: '1.30.0',
    sdkVersion: '0.1.0',
    prevLeafHash: prev,
    labels: { l: label },
    salted: false,
  });
}

/** `n` chained record payloads starting at index 0. */
export function chain(signer: KeySigner, n: number, label = 'x'): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < n; i++) {
    const r = recordBytes(signer, i, prev, label);
    out.push(r);
    prev = leafHash(r);
  }
  return out;
}

export function checkpointOf(signer: KeySigner, tree: MerkleTree, size = tree.size): Envelope {
  return signCheckpointSync(signer, {
    deviceKeyid: signer.keyId,
    treeSize: size,
    rootHash: tree.root(size),
    timeUnixMs: 1,
    bootId: new Uint8Array(0),
  });
}

/** Name → bytes of every segment file in `dir`. */
export function snapshot(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort()) {
    m.set(f, readFileSync(join(dir, f)).toString('hex'));
  }
  return m;
}

/** A temporary root removed after the file's tests; each call of the result names a new directory in it. */
export function tempDirs(prefix: string): () => string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  let seq = 0;
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  return () => join(root, `log${seq++}`);
}
