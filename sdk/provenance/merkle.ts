import { hash } from 'node:crypto';
import { EdgewardenError } from '../errors';
import { sameBytes } from '../util/bytes';

// RFC 9162 §2.1 Merkle tree over SHA-256, with leaf and node domain separation.

const HASH_BYTES = 32;

// One-shot crypto.hash over a scratch buffer that holds the domain prefix and the input: no
// Buffer.concat per hash (the audit log hashes two of these per record, on open for every record).
let scratch = Buffer.alloc(1024);

function prefixed(prefix: number, a: Uint8Array, b?: Uint8Array): Buffer {
  const n = 1 + a.length + (b ? b.length : 0);
  if (n > scratch.length) scratch = Buffer.alloc(Math.max(n, scratch.length * 2));
  scratch[0] = prefix;
  scratch.set(a, 1);
  if (b) scratch.set(b, 1 + a.length);
  return hash('sha256', scratch.subarray(0, n), 'buffer');
}

/** Leaf hash of record bytes: SHA-256(0x00 ‖ bytes). */
export function leafHash(recordBytes: Uint8Array): Uint8Array {
  return new Uint8Array(prefixed(0x00, recordBytes));
}

/** Interior node hash: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return new Uint8Array(prefixed(0x01, left, right));
}

/** Root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Uint8Array = new Uint8Array(hash('sha256', new Uint8Array(0), 'buffer'));

/** Largest power of two strictly less than n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Exact power of two for any safe integer (the bit trick only works below 2^31). */
function isPow2(n: number): boolean {
  if (n <= 0) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/** A growable flat array of 32-byte hashes (one per complete subtree at one level). */
class HashLevel {
  buf = new Uint8Array(HASH_BYTES * 16);
  count = 0;

  push(h: Uint8Array): void {
    this.pushFrom(h, 0);
  }

  /** Appends the 32 bytes of `src` at `at` (copied byte by byte: no view is made). */
  pushFrom(src: Uint8Array, at: number): void {
    if ((this.count + 1) * HASH_BYTES > this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    const buf = this.buf;
    const o = this.count * HASH_BYTES;
    for (let j = 0; j < HASH_BYTES; j++) buf[o + j] = src[at + j] as number;
    this.count++;
  }

  get(i: number): Uint8Array {
    return this.buf.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
  }
}

function badSize(message: string): never {
  throw new EdgewardenError('EW_PROVENANCE_TREE_SIZE', message);
}

/**
 * An append-only RFC 9162 Merkle tree. It keeps the hash of every complete power-of-two subtree
 * (level k holds ⌊n/2^k⌋ hashes, about 2n hashes in all, in flat buffers), so `append` costs O(1)
 * amortized hashes and the root, inclusion and consistency proofs of any past size need O(log n)
 * hashes each.
 */
export class MerkleTree {
  private readonly levels: HashLevel[] = [new HashLevel()];

  /** Number of leaves. */
  get size(): number {
    return this.levels[0]!.count;
  }

  /** Appends a leaf hash (see {@link leafHash}); returns its index. */
  append(leaf: Uint8Array): number {
    if (leaf.length !== HASH_BYTES) badSize('a leaf hash is 32 bytes');
    const index = this.size;
    this.levels[0]!.push(leaf);
    let level = 0;
    let i = index;
    // Each completed pair at one level completes a node at the next.
    while (i % 2 === 1) {
      const lv = this.levels[level]!;
      const parent = nodeHash(lv.get(i - 1), lv.get(i));
      level++;
      if (this.levels.length === level) this.levels.push(new HashLevel());
      this.levels[level]!.push(parent);
      i = (i - 1) / 2;
    }
    return index;
  }

  /**
   * Appends a leaf whose parent hashes were computed elsewhere (the warden's worker keeps the same
   * tree's right edge, see {@link frontier}). `hashes` is the 32-byte leaf hash followed, bottom up,
   * by the hash of every node this leaf completes, one per trailing 1-bit of its index. Nothing is
   * hashed here. A length that does not match the index throws `EW_PROVENANCE_TREE_SIZE` and
   * leaves the tree unchanged.
   */
  appendHashed(hashes: Uint8Array): number {
    const index = this.size;
    let completes = 0;
    for (let i = index; i % 2 === 1; i = (i - 1) / 2) completes++;
    if (hashes.length !== (completes + 1) * HASH_BYTES) {
      badSize(
        `leaf ${index} completes ${completes} nodes: ${(completes + 1) * HASH_BYTES} bytes of hashes, got ${hashes.length}`,
      );
    }
    for (let k = 0; k <= completes; k++) {
      if (this.levels.length === k) this.levels.push(new HashLevel());
      this.levels[k]!.pushFrom(hashes, k * HASH_BYTES);
    }
    return index;
  }

  /** Each level's subtree hashes as one view (level k: ⌊size/2^k⌋ × 32 bytes); see {@link fromLevelBytes}. */
  levelBytes(): Uint8Array[] {
    return this.levels.map((l) => l.buf.subarray(0, l.count * HASH_BYTES));
  }

  /**
   * A tree restored from {@link levelBytes} (the bytes are copied). Nothing is hashed: the caller
   * vouches for the hashes (the audit log's resume point is checksummed, covers unchanged segment
   * bytes and is checked against its signed checkpoint). Throws `EW_PROVENANCE_TREE_SIZE` when the
   * level sizes cannot be those of one tree.
   */
  static fromLevelBytes(levels: readonly Uint8Array[]): MerkleTree {
    const base = levels[0];
    if (!base || base.length % HASH_BYTES !== 0) badSize('level 0 is not a whole number of 32-byte hashes');
    const n = base.length / HASH_BYTES;
    let expected = 1;
    for (let m = n; m > 1; m = Math.floor(m / 2)) expected++;
    if (levels.length !== expected) badSize(`a tree of ${n} leaves has ${expected} levels, got ${levels.length}`);
    const t = new MerkleTree();
    t.levels.length = 0;
    for (let k = 0; k < levels.length; k++) {
      const bytes = levels[k] as Uint8Array;
      const count = Math.floor(n / 2 ** k);
      if (bytes.length !== count * HASH_BYTES) {
        badSize(`level ${k} holds ${bytes.length} bytes, expected ${count * HASH_BYTES}`);
      }
      const l = new HashLevel();
      l.buf = new Uint8Array(Math.max(HASH_BYTES * 16, bytes.length + (bytes.length >>> 2)));
      l.buf.set(bytes);
      l.count = count;
      t.levels.push(l);
    }
    return t;
  }

  /**
   * The right edge of the tree: for each level k, the hash of the last complete subtree of 2^k
   * leaves when it still waits for its right sibling (bit k of the size is 1), else undefined. With
   * it, the nodes that later leaves complete can be computed without the rest of the tree.
   */
  frontier(): (Uint8Array | undefined)[] {
    const out: (Uint8Array | undefined)[] = [];
    for (let k = 0, n = this.size; n > 0; k++, n = Math.floor(n / 2)) {
      out.push(n % 2 === 1 ? this.levels[k]!.get(n - 1).slice() : undefined);
    }
    return out;
  }

  /** The leaf hash at `index`. */
  leaf(index: number): Uint8Array {
    this.checkIndex(index, this.size);
    return this.levels[0]!.get(index).slice();
  }

  /** MTH of leaves [start, start + n); start is always aligned to the left subtree sizes RFC 9162 produces. */
  private subtree(start: number, n: number): Uint8Array {
    if (isPow2(n)) {
      const level = Math.log2(n);
      return this.levels[level]!.get(start / n);
    }
    const k = splitPoint(n);
    return nodeHash(this.subtree(start, k), this.subtree(start + k, n - k));
  }

  /** Root hash (MTH) of the first `size` leaves; defaults to the whole tree. */
  root(size: number = this.size): Uint8Array {
    this.checkSize(size);
    if (size === 0) return EMPTY_ROOT.slice();
    return this.subtree(0, size).slice();
  }

  /** RFC 9162 §2.1.3.1 PATH(index, D[size]): the audit path of leaf `index` in the tree of `size` leaves. */
  inclusionProof(index: number, size: number = this.size): Uint8Array[] {
    this.checkSize(size);
    this.checkIndex(index, size);
    const out: Uint8Array[] = [];
    // Walk down from the root, collecting sibling subtrees; the proof lists them bottom-up.
    let start = 0;
    let n = size;
    let m = index;
    while (n > 1) {
      const k = splitPoint(n);
      if (m < k) {
        out.push(this.subtree(start + k, n - k).slice());
        n = k;
      } else {
        out.push(this.subtree(start, k).slice());
        start += k;
        m -= k;
        n -= k;
      }
    }
    return out.reverse();
  }

  /** RFC 9162 §2.1.4.1 PROOF(oldSize, D[newSize]): proves the first tree is a prefix of the second. */
  consistencyProof(oldSize: number, newSize: number = this.size): Uint8Array[] {
    this.checkSize(newSize);
    this.checkSize(oldSize);
    if (oldSize > newSize) badSize(`old size ${oldSize} is larger than new size ${newSize}`);
    if (oldSize === 0 || oldSize === newSize) return [];
    const out: Uint8Array[] = [];
    let start = 0;
    let m = oldSize;
    let n = newSize;
    let complete = true; // SUBPROOF's b flag
    while (m !== n) {
      const k = splitPoint(n);
      if (m <= k) {
        out.push(this.subtree(start + k, n - k).slice());
        n = k;
      } else {
        out.push(this.subtree(start, k).slice());
        start += k;
        m -= k;
        n -= k;
        complete = false;
      }
    }
    if (!complete) out.push(this.subtree(start, m).slice());
    return out.reverse();
  }

  private checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size) {
      badSize(`tree size ${size} is not between 0 and ${this.size}`);
    }
  }

  private checkIndex(index: number, size: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
      badSize(`leaf index ${index} is not below tree size ${size}`);
    }
  }
}

const validHashes = (proof: readonly Uint8Array[]) =>
  Array.isArray(proof) && proof.every((p) => p instanceof Uint8Array && p.length === HASH_BYTES);
const lsb = (x: number) => x % 2 === 1;
const half = (x: number) => Math.floor(x / 2);

/**
 * Verifies an inclusion proof as RFC 9162 §2.1.3.2 describes: recomputes the root from the leaf hash
 * and the audit path and compares it with `root`. Never throws.
 */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (!(leaf instanceof Uint8Array) || leaf.length !== HASH_BYTES || !validHashes(proof)) return false;
  if (!(root instanceof Uint8Array) || proof.length > 64) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && sameBytes(r, root);
}

/**
 * Verifies a consistency proof as RFC 9162 §2.1.4.2 describes: the tree of `oldSize` leaves with
 * root `oldRoot` is a prefix of the tree of `newSize` leaves with root `newRoot`. Equal sizes need
 * an empty proof and equal roots; the empty tree is a prefix of every tree. Never throws.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || oldSize > newSize)
    return false;
  if (!(oldRoot instanceof Uint8Array) || !(newRoot instanceof Uint8Array) || !validHashes(proof)) return false;
  if (proof.length > 128) return false;
  if (oldSize === 0) return proof.length === 0;
  if (oldSize === newSize) return proof.length === 0 && sameBytes(oldRoot, newRoot);
  if (proof.length === 0) return false;
  const path = isPow2(oldSize) ? [oldRoot, ...proof] : [...proof];
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (lsb(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && sameBytes(fr, oldRoot) && sameBytes(sr, newRoot);
}
