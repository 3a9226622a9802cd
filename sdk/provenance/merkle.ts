import { hash } from 'node:crypto';
import { EdgewardenError } from '../errors';
import { sameBytes } from '../util/bytes';

// RFC 9162 §2.1 Merkle tree over SHA-256, with leaf and node domain separation.

const HASH_BYTES = 32;
/** A level buffer this small is reused when all its hashes are dropped. */
const SMALL_LEVEL_BYTES = 4096;
/**
 * Complete blocks whose lower hashes a spilled tree still holds in its levels: between 32 and 64,
 * the latest (128-256 KiB at 6 levels). 32 cover the 2,048 latest records, so the proofs of a
 * checkpoint's records (1,000 by default) read nothing back.
 */
const WINDOW_BLOCKS = 32;
/** Blocks read back through a {@link LeafSource} that a spilled tree keeps, the latest used. */
const BLOCK_CACHE = 8;

/** Reads back `count` consecutive leaf hashes from leaf `from` on, as `count` × 32 bytes. */
export type LeafSource = (from: number, count: number) => Uint8Array;

/** The lower levels of one block of leaves, read back: level k holds 2^(spill-k) hashes. */
interface Block {
  levels: Uint8Array[];
  known: Uint8Array[];
}

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

/**
 * A growable flat array of 32-byte hashes (one per complete subtree at one level). Hashes below
 * `first` were dropped by {@link MerkleTree.prune}; `count` still counts them.
 */
class HashLevel {
  buf = new Uint8Array(HASH_BYTES * 16);
  count = 0;
  first = 0;

  push(h: Uint8Array): void {
    this.pushFrom(h, 0);
  }

  /** Appends the 32 bytes of `src` at `at` (copied byte by byte: no view is made). */
  pushFrom(src: Uint8Array, at: number): void {
    const o = (this.count - this.first) * HASH_BYTES;
    if (o + HASH_BYTES > this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    const buf = this.buf;
    for (let j = 0; j < HASH_BYTES; j++) buf[o + j] = src[at + j] as number;
    this.count++;
  }

  get(i: number): Uint8Array {
    // Never a view of the wrong bytes: a negative offset would count from the end.
    if (i < this.first) pruned(Number.NaN, `subtree hash ${i} of a level`);
    const o = (i - this.first) * HASH_BYTES;
    return this.buf.subarray(o, o + HASH_BYTES);
  }

  /** The kept hashes as one view. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, (this.count - this.first) * HASH_BYTES);
  }

  /** Drops the hashes before index `i` (into a buffer of the kept size: the memory is released). */
  dropBefore(i: number): void {
    if (i <= this.first) return;
    if (i === this.count && this.buf.length <= SMALL_LEVEL_BYTES) {
      this.first = i; // everything goes: the small buffer is reused
      return;
    }
    const kept = this.buf.subarray((i - this.first) * HASH_BYTES, (this.count - this.first) * HASH_BYTES);
    const next = new Uint8Array(Math.max(HASH_BYTES * 16, kept.length + (kept.length >>> 2)));
    next.set(kept);
    this.buf = next;
    this.first = i;
  }
}

/**
 * The first hash a tree pruned to `base` keeps at `level`: the last complete subtree before the
 * base (it or the subtrees after it are all that roots and proofs of sizes from `base` on need).
 */
function firstKept(level: number, base: number): number {
  return Math.max(0, Math.floor(base / 2 ** level) - 1);
}

function hashAt(level: Uint8Array, j: number): Uint8Array {
  return level.subarray(j * HASH_BYTES, (j + 1) * HASH_BYTES);
}

function badSize(message: string): never {
  throw new EdgewardenError('EW_PROVENANCE_TREE_SIZE', message);
}

function pruned(base: number, what: string): never {
  const before = Number.isNaN(base) ? 'older records' : `records before ${base}`;
  throw new EdgewardenError('EW_PROVENANCE_PRUNED', `${what}: ${before} were removed by the audit log's retention`, {
    details: { base },
  });
}

/**
 * An append-only RFC 9162 Merkle tree. It keeps the hash of every complete power-of-two subtree
 * (level k holds ⌊n/2^k⌋ hashes, about 2n hashes in all, in flat buffers), so `append` costs O(1)
 * amortized hashes and the root, inclusion and consistency proofs of any past size need O(log n)
 * hashes each. {@link prune} drops what only older sizes and leaves need (audit-log retention);
 * {@link spill} keeps the lower levels of older blocks out of memory (the audit log reads them back).
 */
export class MerkleTree {
  private readonly levels: HashLevel[] = [new HashLevel()];
  #base = 0;
  /** Levels below this keep only the recent blocks of 2^spill leaves (0: keep all). */
  #spill = 0;
  #source: LeafSource | undefined;
  /** With a base and spill: the compact-range hash of each lower level (kept out of the levels). */
  #edge: (Uint8Array | undefined)[] = [];
  #blocks = new Map<number, Block>();

  /** Number of leaves. */
  get size(): number {
    return this.levels[0]!.count;
  }

  /**
   * The first leaf this tree can still prove (0 unless {@link prune}d): roots, inclusion proofs
   * and consistency proofs need sizes and indices from here on, else `EW_PROVENANCE_PRUNED`.
   */
  get base(): number {
    return this.#base;
  }

  /** The spill level (see {@link spill}); 0 when every level is kept whole. */
  get spilled(): number {
    return this.#spill;
  }

  /**
   * Keeps the hashes of the levels below `levels` only for the incomplete block of 2^`levels`
   * leaves and the 32 to 64 latest complete ones. When a root or proof needs a hash inside an older
   * block, the block's leaf hashes are read back through `source` and its hashes recomputed and
   * checked against the block's own hash, which is kept (a source that returns other leaves fails
   * with `EW_PROVENANCE_AUDIT_CHAIN`). With 6 levels, memory per leaf falls from about 64 bytes to
   * about 1.
   */
  spill(levels: number, source: LeafSource): void {
    if (!Number.isSafeInteger(levels) || levels < 1 || levels > 16) badSize(`spill level ${levels} is not 1..16`);
    if (this.#spill !== 0 && this.#spill !== levels) badSize(`this tree already spills below level ${this.#spill}`);
    if (this.#base > 0 && this.#spill === 0) this.#edge = this.lowEdge(levels, this.#base);
    this.#spill = levels;
    this.#source = source;
    const complete = Math.floor(this.size / 2 ** levels);
    for (let k = 0; k < levels && k < this.levels.length; k++) {
      this.levels[k]!.dropBefore(complete * 2 ** (levels - k));
    }
  }

  /** The compact-range hash of each level below `levels` for a base (undefined where it has none). */
  private lowEdge(levels: number, base: number): (Uint8Array | undefined)[] {
    const out: (Uint8Array | undefined)[] = [];
    for (let k = 0; k < levels; k++) {
      out.push(Math.floor(base / 2 ** k) >= 1 ? this.node(k, firstKept(k, base)).slice() : undefined);
    }
    return out;
  }

  /** The hash of node `i` at level `k`, from memory, the edge, or a block read back. */
  private node(k: number, i: number): Uint8Array {
    const lv = this.levels[k]!;
    if (i >= lv.first || k >= this.#spill) return lv.get(i);
    if (this.#base > 0 && i === firstKept(k, this.#base)) {
      const e = this.#edge[k];
      if (e) return e;
    }
    const per = 2 ** (this.#spill - k);
    const b = Math.floor(i / per);
    const block = this.block(b);
    const j = i - b * per;
    if (!block.known[k]![j]) pruned(this.#base, `subtree hash ${i} at level ${k}`);
    return block.levels[k]!.subarray(j * HASH_BYTES, (j + 1) * HASH_BYTES);
  }

  /** The lower levels of complete block `b`, read back through the source (or from the cache). */
  private block(b: number): Block {
    const hit = this.#blocks.get(b);
    if (hit) {
      this.#blocks.delete(b);
      this.#blocks.set(b, hit);
      return hit;
    }
    const L = this.#spill;
    const width = 2 ** L;
    const start = b * width;
    const end = start + width;
    const from = Math.max(start, this.#base);
    if (end > this.size) badSize(`block ${b} is not complete`);
    if (from >= end || !this.#source) pruned(this.#base, `leaves ${start}..${end - 1}`);
    const leaves = this.#source(from, end - from);
    if (!(leaves instanceof Uint8Array) || leaves.length !== (end - from) * HASH_BYTES) {
      throw new EdgewardenError('EW_PROVENANCE_AUDIT_IO', `leaves ${from}..${end - 1} could not be read back`);
    }
    const block: Block = { levels: [], known: [] };
    for (let k = 0; k < L; k++) {
      const n = width >> k;
      const bytes = new Uint8Array(n * HASH_BYTES);
      const known = new Uint8Array(n);
      if (k === 0) {
        bytes.set(leaves, (from - start) * HASH_BYTES);
        known.fill(1, from - start);
      } else {
        const below = block.levels[k - 1]!;
        const kb = block.known[k - 1]!;
        for (let j = 0; j < n; j++) {
          if (!kb[2 * j] || !kb[2 * j + 1]) continue;
          bytes.set(nodeHash(hashAt(below, 2 * j), hashAt(below, 2 * j + 1)), j * HASH_BYTES);
          known[j] = 1;
        }
      }
      // Before the base only the compact range is known: it seeds the nodes that straddle the base.
      const e = this.#base > 0 ? this.#edge[k] : undefined;
      const ei = e ? firstKept(k, this.#base) - b * n : -1;
      if (e && ei >= 0 && ei < n) {
        bytes.set(e, ei * HASH_BYTES);
        known[ei] = 1;
      }
      block.levels.push(bytes);
      block.known.push(known);
    }
    const top = block.levels[L - 1]!;
    const kt = block.known[L - 1]!;
    const root = kt[0] && kt[1] ? nodeHash(hashAt(top, 0), hashAt(top, 1)) : undefined;
    if (!root || !sameBytes(root, this.levels[L]!.get(b))) {
      throw new EdgewardenError(
        'EW_PROVENANCE_AUDIT_CHAIN',
        `the records read back for leaves ${from}..${end - 1} do not hash to the tree: the log changed under it`,
      );
    }
    this.remember(b, block);
    return block;
  }

  private remember(b: number, block: Block): void {
    this.#blocks.set(b, block);
    if (this.#blocks.size > BLOCK_CACHE) this.#blocks.delete(this.#blocks.keys().next().value as number);
  }

  /**
   * After the leaf that completes a block: once the lower levels hold 64 complete blocks, the oldest
   * 32 leave memory (one copy of the rest per 2,048 records, no allocation per block).
   */
  private spillCompleted(): void {
    const L = this.#spill;
    const width = 2 ** L;
    const complete = this.size / width;
    if (complete * width - this.levels[0]!.first < 2 * WINDOW_BLOCKS * width) return;
    for (let k = 0; k < L; k++) this.levels[k]!.dropBefore((complete - WINDOW_BLOCKS) * 2 ** (L - k));
  }

  /**
   * Forgets the leaves before `base` and every subtree hash that only they need: at most one hash
   * per level is kept of them (the compact range of RFC 9162 §2.1.2's first `base` leaves), so the
   * root of every size from `base` on, and the proofs of every later leaf, are unchanged. Memory then
   * grows with the leaves kept, not with the whole history.
   */
  prune(base: number): void {
    if (!Number.isSafeInteger(base) || base < this.#base || base > this.size) {
      badSize(`prune point ${base} is not between ${this.#base} and ${this.size}`);
    }
    if (this.#spill > 0) this.#edge = this.lowEdge(this.#spill, base);
    for (let k = 0; k < this.levels.length; k++) this.levels[k]!.dropBefore(firstKept(k, base));
    this.#base = base;
    this.#blocks.clear();
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
      const parent = nodeHash(this.node(level, i - 1), this.node(level, i));
      level++;
      if (this.levels.length === level) this.levels.push(new HashLevel());
      this.levels[level]!.push(parent);
      i = (i - 1) / 2;
    }
    if (this.#spill > 0 && this.size % 2 ** this.#spill === 0) this.spillCompleted();
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
    if (this.#spill > 0 && this.size % 2 ** this.#spill === 0) this.spillCompleted();
    return index;
  }

  /**
   * Each level's kept subtree hashes as one view (level k: from the first kept one, see
   * {@link prune}, to ⌊size/2^k⌋; all of them when the tree was never pruned); see {@link fromLevelBytes}.
   */
  levelBytes(): Uint8Array[] {
    const L = this.#spill;
    const blockStart = L > 0 ? Math.floor(this.size / 2 ** L) : 0;
    return this.levels.map((l, k) => {
      if (k >= L) return l.bytes();
      // Spilled: only the last incomplete block's (the window of recent blocks is not saved).
      const from = Math.max(l.first, blockStart * 2 ** (L - k));
      return l.bytes().subarray((from - l.first) * HASH_BYTES);
    });
  }

  /**
   * What a tree of the first `size` leaves, pruned to `size`, holds ({@link levelBytes} of it): one
   * hash per level, the compact range that later leaves build on. `size` must be kept (≥ base).
   */
  edgeBytes(size: number): Uint8Array[] {
    this.checkSize(size);
    const out: Uint8Array[] = [];
    for (let k = 0; Math.floor(size / 2 ** k) >= 1; k++) {
      out.push(this.node(k, Math.floor(size / 2 ** k) - 1).slice());
    }
    return out;
  }

  /**
   * A tree restored from {@link levelBytes} (the bytes are copied). Nothing is hashed: the caller
   * vouches for the hashes (the audit log's resume point is checksummed, covers unchanged segment
   * bytes and is checked against its signed checkpoint). `base` is the tree's {@link base} when it
   * was saved. Throws `EW_PROVENANCE_TREE_SIZE` when the level sizes cannot be those of one tree.
   */
  static fromLevelBytes(
    levels: readonly Uint8Array[],
    base = 0,
    spilled?: { levels: number; size: number; source: LeafSource; edge: readonly Uint8Array[] },
  ): MerkleTree {
    const level0 = levels[0];
    if (!level0 || level0.length % HASH_BYTES !== 0) badSize('level 0 is not a whole number of 32-byte hashes');
    if (!Number.isSafeInteger(base) || base < 0) badSize(`tree base ${base} is not a leaf index`);
    const L = spilled?.levels ?? 0;
    if (!Number.isSafeInteger(L) || L < 0 || L > 16) badSize(`spill level ${L} is not 0..16`);
    // Spilled, level 0 holds only the last incomplete block: the size is given, and checked below.
    const n = spilled && L > 0 ? spilled.size : level0.length / HASH_BYTES + firstKept(0, base);
    if (!Number.isSafeInteger(n)) badSize(`tree size ${n} is not a safe integer`);
    if (n < base) badSize(`a tree of ${n} leaves cannot start at leaf ${base}`);
    let expected = 1;
    for (let m = n; m > 1; m = Math.floor(m / 2)) expected++;
    if (levels.length !== expected) badSize(`a tree of ${n} leaves has ${expected} levels, got ${levels.length}`);
    const t = new MerkleTree();
    t.levels.length = 0;
    for (let k = 0; k < levels.length; k++) {
      const bytes = levels[k] as Uint8Array;
      const count = Math.floor(n / 2 ** k);
      const spillFirst = k < L ? Math.floor(n / 2 ** L) * 2 ** (L - k) : 0;
      const first = Math.min(count, Math.max(firstKept(k, base), spillFirst));
      if (bytes.length !== (count - first) * HASH_BYTES) {
        badSize(`level ${k} holds ${bytes.length} bytes, expected ${(count - first) * HASH_BYTES}`);
      }
      const l = new HashLevel();
      l.buf = new Uint8Array(Math.max(HASH_BYTES * 16, bytes.length + (bytes.length >>> 2)));
      l.buf.set(bytes);
      l.count = count;
      l.first = first;
      t.levels.push(l);
    }
    t.#base = base;
    if (spilled && L > 0) {
      if (base > 0) {
        const edge = spilled.edge;
        for (let k = 0; k < L; k++) {
          const e = Math.floor(base / 2 ** k) >= 1 ? edge[k] : undefined;
          if (Math.floor(base / 2 ** k) >= 1 && !(e instanceof Uint8Array && e.length === HASH_BYTES)) {
            badSize(`the edge of base ${base} has no 32-byte hash at level ${k}`);
          }
          t.#edge.push(e);
        }
      }
      t.#spill = L;
      t.#source = spilled.source;
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
      out.push(n % 2 === 1 ? this.node(k, n - 1).slice() : undefined);
    }
    return out;
  }

  /** The leaf hash at `index`. */
  leaf(index: number): Uint8Array {
    this.checkIndex(index, this.size);
    // The leaf just before the base is kept: the next record chains to it.
    if (index < this.#base - 1) pruned(this.#base, `leaf ${index}`);
    return this.node(0, index).slice();
  }

  /** MTH of leaves [start, start + n); start is always aligned to the left subtree sizes RFC 9162 produces. */
  private subtree(start: number, n: number): Uint8Array {
    if (isPow2(n)) {
      return this.node(Math.log2(n), start / n);
    }
    const k = splitPoint(n);
    return nodeHash(this.subtree(start, k), this.subtree(start + k, n - k));
  }

  /** Root hash (MTH) of the first `size` leaves; defaults to the whole tree. */
  root(size: number = this.size): Uint8Array {
    this.checkSize(size);
    if (size === 0) return EMPTY_ROOT.slice();
    if (size < this.#base) pruned(this.#base, `root of size ${size}`);
    return this.subtree(0, size).slice();
  }

  /** RFC 9162 §2.1.3.1 PATH(index, D[size]): the audit path of leaf `index` in the tree of `size` leaves. */
  inclusionProof(index: number, size: number = this.size): Uint8Array[] {
    this.checkSize(size);
    this.checkIndex(index, size);
    if (index < this.#base) pruned(this.#base, `inclusion proof of leaf ${index}`);
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
    if (oldSize < this.#base) pruned(this.#base, `consistency proof from size ${oldSize}`);
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
