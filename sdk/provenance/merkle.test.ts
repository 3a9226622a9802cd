import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EMPTY_ROOT, leafHash, MerkleTree, nodeHash, verifyConsistency, verifyInclusion } from './merkle';

// Naive RFC 9162 §2.1.1 definitions, straight from the text, to check the incremental tree against.
const sha = (...parts: Uint8Array[]) => new Uint8Array(createHash('sha256').update(Buffer.concat(parts)).digest());
function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}
function mth(d: Uint8Array[]): Uint8Array {
  if (d.length === 0) return sha();
  if (d.length === 1) return sha(new Uint8Array([0]), d[0]!);
  const s = k(d.length);
  return sha(new Uint8Array([1]), mth(d.slice(0, s)), mth(d.slice(s)));
}
function path(m: number, d: Uint8Array[]): Uint8Array[] {
  if (d.length <= 1) return [];
  const s = k(d.length);
  return m < s ? [...path(m, d.slice(0, s)), mth(d.slice(s))] : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}
function subproof(m: number, d: Uint8Array[], b: boolean): Uint8Array[] {
  const n = d.length;
  if (m === n) return b ? [] : [mth(d)];
  const s = k(n);
  return m <= s
    ? [...subproof(m, d.slice(0, s), b), mth(d.slice(s))]
    : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))];
}

const data = Array.from({ length: 64 }, (_, i) => new Uint8Array([i, i * 7, 255 - i]));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const tree = new MerkleTree();
for (const d of data) tree.append(leafHash(d));

describe('MerkleTree (RFC 9162)', () => {
  it('hashes leaves and nodes with domain separation', () => {
    expect(hex(leafHash(data[0]!))).toBe(hex(sha(new Uint8Array([0]), data[0]!)));
    expect(hex(nodeHash(data[0]!, data[1]!))).toBe(hex(sha(new Uint8Array([1]), data[0]!, data[1]!)));
    expect(hex(new MerkleTree().root())).toBe(hex(EMPTY_ROOT));
    expect(hex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('appendHashed with nodes computed from the frontier builds the same tree as append', () => {
    // Another party keeps only the right edge (as the warden's worker does) and computes the nodes.
    for (const start of [0, 1, 5, 32, 37]) {
      const t = new MerkleTree();
      for (const d of data.slice(0, start)) t.append(leafHash(d));
      const edge = t.frontier();
      for (let i = start; i < 64; i++) {
        let cur = leafHash(data[i]!);
        const parents: Uint8Array[] = [];
        let level = 0;
        for (let j = i; j % 2 === 1; j = (j - 1) / 2) {
          cur = nodeHash(edge[level]!, cur);
          parents.push(cur);
          level++;
        }
        edge[level] = cur;
        expect(t.appendHashed(new Uint8Array(Buffer.concat([leafHash(data[i]!), ...parents])))).toBe(i);
      }
      for (let n = 0; n <= 64; n++) expect(hex(t.root(n))).toBe(hex(tree.root(n)));
      expect(t.inclusionProof(start % 64, 64).map(hex)).toEqual(tree.inclusionProof(start % 64, 64).map(hex));
    }
  });

  it('appendHashed refuses a node count that does not match the index and leaves the tree unchanged', () => {
    const t = new MerkleTree();
    t.append(leafHash(data[0]!)); // the next leaf (index 1) completes exactly one node
    expect(() => t.appendHashed(leafHash(data[1]!))).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_TREE_SIZE' }),
    );
    expect(() => t.appendHashed(new Uint8Array(96))).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_TREE_SIZE' }),
    );
    expect(t.size).toBe(1);
    expect(t.frontier().map((h) => (h ? hex(h) : null))).toEqual([hex(leafHash(data[0]!))]);
  });

  it('fromLevelBytes restores the tree of levelBytes: same roots, frontier and proofs; impossible sizes refused', () => {
    for (const n of [0, 1, 2, 3, 7, 8, 33]) {
      const t = new MerkleTree();
      for (let i = 0; i < n; i++) t.append(leafHash(new Uint8Array([i, 7])));
      const r = MerkleTree.fromLevelBytes(t.levelBytes().map((l) => l.slice()));
      expect(r.size).toBe(n);
      expect(Buffer.from(r.root()).equals(Buffer.from(t.root()))).toBe(true);
      expect(r.frontier()).toEqual(t.frontier());
      if (n > 0) expect(r.inclusionProof(n - 1)).toEqual(t.inclusionProof(n - 1));
      r.append(leafHash(new Uint8Array([1])));
      t.append(leafHash(new Uint8Array([1])));
      expect(Buffer.from(r.root()).equals(Buffer.from(t.root()))).toBe(true);
    }
    const code = expect.objectContaining({ code: 'EW_PROVENANCE_TREE_SIZE' });
    expect(() => MerkleTree.fromLevelBytes([new Uint8Array(33)])).toThrow(code);
    expect(() => MerkleTree.fromLevelBytes([new Uint8Array(64)])).toThrow(code);
    expect(() => MerkleTree.fromLevelBytes([new Uint8Array(96), new Uint8Array(64)])).toThrow(code);
    expect(() => MerkleTree.fromLevelBytes([])).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_TREE_SIZE' }));
  });

  it('matches the naive MTH for every size 0..64, also as a past size', () => {
    for (let n = 0; n <= 64; n++) expect(hex(tree.root(n))).toBe(hex(mth(data.slice(0, n))));
  });

  it('gives and verifies inclusion proofs for every index of every size 1..64', () => {
    for (let n = 1; n <= 64; n++) {
      const root = tree.root(n);
      for (let m = 0; m < n; m++) {
        const proof = tree.inclusionProof(m, n);
        expect(proof.map(hex)).toEqual(path(m, data.slice(0, n)).map(hex));
        const leaf = leafHash(data[m]!);
        expect(verifyInclusion(leaf, m, n, proof, root)).toBe(true);
        // Wrong leaf, index, size or root: rejected.
        expect(verifyInclusion(leafHash(data[(m + 1) % 64]!), m, n, proof, root)).toBe(false);
        if (n > 1) expect(verifyInclusion(leaf, (m + 1) % n, n, proof, root)).toBe(false);
        expect(verifyInclusion(leaf, m, n + 1, proof, tree.root(n + 1 <= 64 ? n + 1 : n))).toBe(false);
        expect(verifyInclusion(leaf, m, n, proof, tree.root(n - 1 || 1))).toBe(n === 1);
        if (proof.length > 0) {
          expect(verifyInclusion(leaf, m, n, proof.slice(1), root)).toBe(false);
          expect(verifyInclusion(leaf, m, n, [...proof, proof[0]!], root)).toBe(false);
        }
      }
    }
  });

  it('gives and verifies consistency proofs for every pair of sizes up to 40', () => {
    for (let n = 1; n <= 40; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = tree.consistencyProof(m, n);
        expect(proof.map(hex)).toEqual((m === n ? [] : subproof(m, data.slice(0, n), true)).map(hex));
        expect(verifyConsistency(m, n, tree.root(m), tree.root(n), proof)).toBe(true);
        if (m < n) {
          // A different old root, new root, or a proof for other sizes fails.
          expect(verifyConsistency(m, n, tree.root(m - 1), tree.root(n), proof)).toBe(false);
          expect(verifyConsistency(m, n, tree.root(m), tree.root(n - 1), proof)).toBe(false);
          if (n < 40) expect(verifyConsistency(m, n + 1, tree.root(m), tree.root(n + 1), proof)).toBe(false);
          expect(verifyConsistency(m, n, tree.root(m), tree.root(n), proof.slice(0, -1))).toBe(false);
        }
      }
      expect(verifyConsistency(0, n, EMPTY_ROOT, tree.root(n), [])).toBe(true);
    }
  });

  it('rejects out-of-range sizes and hostile proofs without throwing', () => {
    expect(() => tree.root(65)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_TREE_SIZE' }));
    expect(() => tree.inclusionProof(5, 5)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_TREE_SIZE' }));
    expect(() => tree.consistencyProof(6, 5)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_TREE_SIZE' }));
    const leaf = leafHash(data[0]!);
    expect(verifyInclusion(leaf, -1, 4, [], tree.root(4))).toBe(false);
    expect(verifyInclusion(leaf, 0, 2 ** 60, [], tree.root(4))).toBe(false);
    expect(verifyInclusion(leaf, 0, 4, [new Uint8Array(31)] as Uint8Array[], tree.root(4))).toBe(false);
    expect(verifyInclusion(leaf, 0, 4, 'x' as unknown as Uint8Array[], tree.root(4))).toBe(false);
    expect(verifyConsistency(5, 4, tree.root(4), tree.root(4), [])).toBe(false);
    expect(verifyConsistency(3, 4, tree.root(3), tree.root(4), [])).toBe(false);
    expect(verifyConsistency(4, 4, tree.root(4), tree.root(3), [])).toBe(false);
  });

  it('appends many leaves quickly and keeps proofs of old sizes valid', () => {
    const big = new MerkleTree();
    const leaves: Uint8Array[] = [];
    for (let i = 0; i < 20_000; i++) {
      const l = leafHash(new Uint8Array([i & 0xff, i >> 8]));
      leaves.push(l);
      big.append(l);
    }
    for (const [m, n] of [
      [0, 1],
      [12_345, 16_384],
      [19_999, 20_000],
      [4_095, 4_097],
    ] as const) {
      expect(verifyInclusion(leaves[m]!, m, n, big.inclusionProof(m, n), big.root(n))).toBe(true);
    }
    expect(verifyConsistency(777, 20_000, big.root(777), big.root(), big.consistencyProof(777))).toBe(true);
  });

  it('a pruned tree gives the same roots, proofs and frontier for every size and leaf from its base on', () => {
    const pruned = 'EW_PROVENANCE_PRUNED';
    for (const base of [1, 2, 5, 8, 13, 31, 32, 33, 47, 63, 64]) {
      const t = new MerkleTree();
      for (let i = 0; i < 40 && i < base; i++) t.append(leafHash(data[i]!));
      for (let i = 40; i < base; i++) t.append(leafHash(data[i]!));
      t.prune(base);
      expect(t.base).toBe(base);
      for (let i = base; i < 64; i++) t.append(leafHash(data[i]!));
      for (let n = base; n <= 64; n++) {
        expect(hex(t.root(n))).toBe(hex(tree.root(n)));
        for (let m = base; m < n; m++)
          expect(t.inclusionProof(m, n).map(hex)).toEqual(tree.inclusionProof(m, n).map(hex));
        for (let o = Math.max(base, 1); o < n; o++) {
          expect(t.consistencyProof(o, n).map(hex)).toEqual(tree.consistencyProof(o, n).map(hex));
        }
      }
      expect(t.frontier()).toEqual(tree.frontier());
      expect(hex(t.leaf(base - 1))).toBe(hex(leafHash(data[base - 1]!)));
      // What needs the dropped leaves is refused with its own code, never answered wrongly.
      if (base > 1) {
        expect(() => t.root(base - 1)).toThrow(expect.objectContaining({ code: pruned }));
        expect(() => t.inclusionProof(base - 1, 64)).toThrow(expect.objectContaining({ code: pruned }));
        expect(() => t.consistencyProof(base - 1, 64)).toThrow(expect.objectContaining({ code: pruned }));
        expect(() => t.leaf(base - 2)).toThrow(expect.objectContaining({ code: pruned }));
      }
    }
  });

  it('pruning keeps O(log n) hashes of the dropped leaves, and its levels restore with their base', () => {
    const t = new MerkleTree();
    for (let i = 0; i < 5000; i++) t.append(leafHash(new Uint8Array([i & 255, i >> 8])));
    const full = t.levelBytes().reduce((a, l) => a + l.length, 0);
    t.prune(4000);
    const kept = t.levelBytes().reduce((a, l) => a + l.length, 0);
    expect(kept).toBeLessThan(full / 4);
    const r = MerkleTree.fromLevelBytes(
      t.levelBytes().map((l) => l.slice()),
      t.base,
    );
    expect(r.base).toBe(4000);
    expect(hex(r.root())).toBe(hex(t.root()));
    expect(r.inclusionProof(4321).map(hex)).toEqual(t.inclusionProof(4321).map(hex));
    // The edge alone (what the audit log's BASE file keeps) is a tree of `base` leaves to build on.
    const edge = MerkleTree.fromLevelBytes(t.edgeBytes(4000), 4000);
    expect(edge.size).toBe(4000);
    expect(hex(edge.root())).toBe(hex(t.root(4000)));
    for (let i = 4000; i < 5000; i++) edge.append(leafHash(new Uint8Array([i & 255, i >> 8])));
    expect(hex(edge.root())).toBe(hex(t.root()));
    // Backwards or past the end: refused.
    expect(() => t.prune(3999)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_TREE_SIZE' }));
    expect(() => t.prune(5001)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_TREE_SIZE' }));
    expect(() => MerkleTree.fromLevelBytes(t.levelBytes(), 3000)).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_TREE_SIZE' }),
    );
  });

  describe('spilled below a level', () => {
    const N = 300;
    const leaves = Array.from({ length: N }, (_, i) => leafHash(new Uint8Array([i & 255, i >> 8, 9])));
    const full = new MerkleTree();
    for (const l of leaves) full.append(l);
    let reads = 0;
    const source = (from: number, count: number) => {
      reads++;
      return new Uint8Array(Buffer.concat(leaves.slice(from, from + count)));
    };
    const same = (t: MerkleTree, base: number, n: number) => {
      for (let size = Math.max(base, 1); size <= n; size += 7) {
        expect(hex(t.root(size))).toBe(hex(full.root(size)));
        for (let m = base; m < size; m += 5)
          expect(t.inclusionProof(m, size).map(hex)).toEqual(full.inclusionProof(m, size).map(hex));
        for (let o = Math.max(base, 1); o < size; o += 11) {
          expect(t.consistencyProof(o, size).map(hex)).toEqual(full.consistencyProof(o, size).map(hex));
        }
      }
      expect(hex(t.root(n))).toBe(hex(full.root(n)));
    };

    it('gives the roots and proofs of the whole tree, reading back only complete blocks, with 1-2 bytes a leaf', () => {
      for (const L of [1, 3, 6]) {
        const t = new MerkleTree();
        t.spill(L, source);
        for (let i = 0; i < N; i++) {
          // A leaf at an even index completes no node: appendHashed takes it alone.
          if (i % 2) t.append(leaves[i]!);
          else t.appendHashed(leaves[i]!);
        }
        expect(t.size).toBe(N);
        same(t, 0, N);
        expect(t.frontier()).toEqual(full.frontier());
        expect(hex(t.leaf(17))).toBe(hex(leaves[17]!));
      }
      const t = new MerkleTree();
      for (const l of leaves) t.append(l);
      t.spill(6, source);
      const kept = t.levelBytes().reduce((a, l) => a + l.length, 0);
      expect(kept).toBeLessThan(N * 2 + 64 * 2 * 32);
      reads = 0;
      same(t, 0, N);
      expect(reads).toBeGreaterThan(0);
    });

    it('restores from its levels with its size, and goes on the same', () => {
      const t = new MerkleTree();
      t.spill(4, source);
      for (let i = 0; i < 200; i++) t.append(leaves[i]!);
      const r = MerkleTree.fromLevelBytes(
        t.levelBytes().map((l) => l.slice()),
        0,
        { levels: 4, size: 200, source, edge: [] },
      );
      for (let i = 200; i < N; i++) r.append(leaves[i]!);
      same(r, 0, N);
    });

    it('pruned, aligned or not: everything from the base on, and the base edge survives a restore', () => {
      for (const base of [1, 63, 64, 65, 100, 128, 129, 250]) {
        const t = new MerkleTree();
        t.spill(6, source);
        for (let i = 0; i < base; i++) t.append(leaves[i]!);
        t.prune(base);
        const edge = t.edgeBytes(base);
        for (let i = base; i < 260; i++) t.append(leaves[i]!);
        // The source no longer has what is before the base (retention deleted those segments).
        const kept = (from: number, count: number) => {
          expect(from).toBeGreaterThanOrEqual(base);
          return source(from, count);
        };
        const r = MerkleTree.fromLevelBytes(
          t.levelBytes().map((l) => l.slice()),
          base,
          { levels: 6, size: 260, source: kept, edge },
        );
        for (let i = 260; i < N; i++) r.append(leaves[i]!);
        same(r, base, N);
        expect(hex(r.leaf(base - 1))).toBe(hex(leaves[base - 1]!));
        // A BASE file's edge alone, spilled, is a tree to build on as well.
        const e = MerkleTree.fromLevelBytes(edge, base);
        e.spill(6, kept);
        for (let i = base; i < N; i++) e.append(leaves[i]!);
        same(e, base, N);
      }
    });

    it('refuses leaves read back that do not hash to the block it keeps', () => {
      const t = new MerkleTree();
      const lying = (from: number, count: number) => {
        const b = source(from, count);
        b[5] = (b[5] ?? 0) ^ 1;
        return b;
      };
      t.spill(2, lying);
      for (const l of leaves) t.append(l);
      expect(hex(t.root())).toBe(hex(full.root(N))); // the right edge is in memory
      // An older block is read back (past 64 blocks of 4, the oldest 32 leave memory): the lie is caught.
      expect(() => t.inclusionProof(2, N)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_AUDIT_CHAIN' }));
      const short = new MerkleTree();
      short.spill(2, () => new Uint8Array(7));
      for (const l of leaves) short.append(l);
      expect(() => short.inclusionProof(1, N)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_AUDIT_IO' }));
    });
  });
});
