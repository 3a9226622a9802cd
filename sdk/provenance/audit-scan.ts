import { createHash, type Hash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgewardenError, isEdgewardenError } from '../errors';
import { sameBytes } from '../util/bytes';
import { type AuditBase, readBase } from './audit-base';
import { ENTRY_KIND, readFrame, SEGMENT_RE, segmentNumber, validFrameAfter } from './audit-format';
import { LeafReader, SPILL_LEVELS } from './audit-leaves';
import type { ResumePoint } from './audit-resume';
import { type CheckpointFields, decodeCheckpoint } from './checkpoint';
import type { ProvenanceCode } from './codes';
import { decodeEnvelope, type Envelope, envelopePayloadOfType, PAYLOAD_TYPES, verifyEnvelope } from './dsse';
import type { TrustStore } from './keys';
import { leafHash, MerkleTree } from './merkle';
import { decodeRecord, readChainFields } from './record';

/**
 * The first damage found before the tail. `index` is the leaf index of the record at fault (for a
 * checkpoint or other non-record entry: the number of records before it); the log is never altered.
 */
export interface AuditDamage {
  index: number;
  code: ProvenanceCode;
  message: string;
  /** Segment file name and byte offset of the entry at fault. */
  segment?: string;
  offset?: number;
}

/** A torn tail: an incomplete or unreadable last entry that a crash can leave behind. */
export interface TornTail {
  segment: string;
  offset: number;
  droppedBytes: number;
  reason: string;
}

/** A segment file's first `bytes` bytes and their SHA-256 (see audit-resume.ts). */
export interface SegmentDigest {
  name: string;
  /** Index of the first record in the segment (the tree's size where it starts). */
  first: number;
  bytes: number;
  sha256: Uint8Array;
}

/** A checkpoint found in the log, with where it sits. */
export interface ScannedCheckpoint {
  envelope: Envelope;
  fields: CheckpointFields;
}

export interface ScanOptions {
  /** Fully decode every record (verification), not just its chain fields (open). */
  fullDecode?: boolean;
  /** Check signatures of signed records and checkpoints against these keys. */
  trust?: TrustStore;
  /** Keep record bytes and signed envelopes (export). */
  collect?: boolean;
  /** The device whose log this is: a record naming another device is damage. */
  deviceKeyid?: Uint8Array;
  /** Called before each segment is read, with how many are done (for a progress bar). */
  onSegment?: (done: number, total: number) => void;
  /**
   * Read the directory and segments synchronously (opening a log at start-up: no trips through the
   * thread pool, which a booting worker makes slow). Verification and export read asynchronously.
   */
  readSync?: boolean;
  /**
   * Start from this resume point: its covered bytes are only hashed and compared, not parsed. When
   * they differ (or the segments are not the ones it covers), the scan starts over from the first
   * byte, as if there were no resume point.
   */
  resume?: ResumePoint;
  /** Keep a SHA-256 of every segment's good bytes (`sealed`, `activeHash`), for the next resume point. */
  segmentDigests?: boolean;
}

export interface ScanResult {
  /** Segment file names in order (from the base's first segment, when retention removed older ones). */
  segments: string[];
  /**
   * Segments older than the base's first segment: left by a removal that a crash interrupted (the
   * base was written, the files not yet deleted). Not read; opening the log deletes them.
   */
  staleSegments: string[];
  /** The first kept record (0 unless retention removed older segments; see audit-base.ts). */
  base: number;
  /** Spilled below {@link SPILL_LEVELS}: older blocks are read back through `leaves`. */
  tree: MerkleTree;
  /** Where each block of records starts in the segments (the tree's source). */
  leaves: LeafReader;
  lastLeafHash: Uint8Array;
  checkpoints: ScannedCheckpoint[];
  recoveries: number;
  damage?: AuditDamage;
  torn?: TornTail;
  /** Byte length of the last segment up to the end of its last good entry. */
  lastSegmentGoodBytes: number;
  /** Index of the first record of the last segment (the tree's size where it starts). */
  lastSegmentFirst: number;
  records?: Uint8Array[];
  signedRecords?: (Uint8Array | undefined)[];
  deviceKeyid?: Uint8Array;
  /** Records restored from the resume point instead of parsed (0: scanned from the first byte). */
  resumed: number;
  /** With `segmentDigests`: every segment but the last, whole. */
  sealed?: SegmentDigest[];
  /** With `segmentDigests`: the running SHA-256 of the last segment's good bytes. */
  activeHash?: Hash;
}

const EMPTY = new Uint8Array(0);
const RECORD_TYPE = new Uint8Array(Buffer.from(PAYLOAD_TYPES.record, 'utf8'));

// Buffer#slice shares memory; everything kept from a segment buffer is copied with new Uint8Array(x).

/** Segment file names of `dir`, in order. */
export async function listSegments(dir: string, readSync = false): Promise<string[]> {
  let names: string[];
  try {
    names = readSync ? readdirSync(dir) : await readdir(dir);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new EdgewardenError('EW_PROVENANCE_AUDIT_IO', `cannot read audit directory ${dir}`, { cause });
  }
  return names.filter((n) => SEGMENT_RE.test(n)).sort();
}

/**
 * Reads every segment of an audit log, rebuilding the Merkle tree and checking each entry's CRC, the
 * hash chain (index and prev_leaf_hash) and every checkpoint against the tree. Stops at the first
 * damage. A bad entry at the very end of the last segment, with no valid entry after it, is a torn
 * tail, reported separately. Reads only; never writes.
 */
export async function scanAuditLog(dir: string, opts: ScanOptions = {}): Promise<ScanResult> {
  const all = await listSegments(dir, opts.readSync);
  const base = usableBase(readBase(dir));
  const segments = base ? all.filter((n) => n >= base.firstSegment) : all;
  const stale = base ? all.filter((n) => n < base.firstSegment) : [];
  const resume = opts.resume;
  if (resume && resumeApplies(resume, segments, opts.deviceKeyid, base)) {
    const res = await scanSegments(dir, segments, opts, resume, base);
    if (res) return { ...res, staleSegments: stale };
  }
  // No resume point, or its covered bytes changed: from the first byte (never undefined then).
  const res = (await scanSegments(dir, segments, opts, undefined, base)) as ScanResult;
  return { ...res, staleSegments: stale };
}

/**
 * Whether a resume point can apply to these segments (every covered one still there, in order, same
 * device, saved over the same base).
 */
function resumeApplies(
  r: ResumePoint,
  segments: string[],
  device: Uint8Array | undefined,
  base: AuditBase | undefined,
): boolean {
  if (r.tree.base !== (base?.firstIndex ?? 0)) return false;
  if (r.segments.length > segments.length) return false;
  for (let i = 0; i < r.segments.length; i++) if (r.segments[i]!.name !== segments[i]) return false;
  return !(device && r.deviceKeyid && !sameBytes(device, r.deviceKeyid));
}

/**
 * The base, when it is one: an unreadable file, or edge hashes that do not make a tree of its first
 * index, are as good as none (the missing records then read as damage, as they should).
 */
function usableBase(found: AuditBase | undefined): AuditBase | undefined {
  if (!found) return undefined;
  try {
    startState(found);
    return found;
  } catch {
    return undefined;
  }
}

/** The tree, chain end and counters a scan starts from: the base's, or those of an empty log. */
function startState(base: AuditBase | undefined): Pick<ScanResult, 'tree' | 'lastLeafHash' | 'recoveries' | 'base'> {
  if (!base) return { tree: new MerkleTree(), lastLeafHash: EMPTY, recoveries: 0, base: 0 };
  const tree = MerkleTree.fromLevelBytes(base.edge, base.firstIndex);
  // Recovery events are counted in the kept segments only.
  return { tree, lastLeafHash: tree.leaf(base.firstIndex - 1), recoveries: 0, base: base.firstIndex };
}

/** The scan itself; with `resume`, undefined when a covered segment is shorter or its bytes differ. */
async function scanSegments(
  dir: string,
  segments: string[],
  opts: ScanOptions,
  resume: ResumePoint | undefined,
  base: AuditBase | undefined,
): Promise<ScanResult | undefined> {
  const start = resume
    ? { tree: resume.tree, lastLeafHash: resume.lastLeafHash, recoveries: resume.recoveries, base: resume.tree.base }
    : startState(base);
  const leaves = resume ? resume.leaves : new LeafReader(dir);
  if (!resume) {
    start.tree.spill(SPILL_LEVELS, leaves.read);
    // The base's block is read from the first kept segment's start.
    if (base) leaves.rebase(base.firstIndex, segmentNumber(base.firstSegment));
  }
  const res: ScanResult = {
    segments,
    staleSegments: [],
    ...start,
    leaves,
    checkpoints: resume?.latest ? [resume.latest] : [],
    lastSegmentGoodBytes: 0,
    lastSegmentFirst: start.tree.size,
    resumed: resume ? resume.tree.size - resume.tree.base : 0,
  };
  const tree = res.tree;
  if (opts.deviceKeyid) res.deviceKeyid = opts.deviceKeyid;
  else if (resume?.deviceKeyid) res.deviceKeyid = resume.deviceKeyid;
  else if (base?.deviceKeyid && res.base > 0) res.deviceKeyid = base.deviceKeyid;
  if (opts.segmentDigests) res.sealed = [];
  if (opts.collect) {
    res.records = [];
    res.signedRecords = [];
  }
  for (let s = 0; s < segments.length; s++) {
    opts.onSegment?.(s, segments.length);
    const name = segments[s]!;
    const segNo = segmentNumber(name);
    let buf: Uint8Array;
    try {
      buf = opts.readSync ? readFileSync(join(dir, name)) : await readFile(join(dir, name));
    } catch (cause) {
      throw new EdgewardenError('EW_PROVENANCE_AUDIT_IO', `cannot read ${join(dir, name)}`, { cause });
    }
    const last = s === segments.length - 1;
    const first = covered0(resume, s) ?? tree.size;
    if (last) res.lastSegmentFirst = first;
    let pos = 0;
    const digest = opts.segmentDigests || resume ? createHash('sha256') : undefined;
    const covered = resume?.segments[s];
    if (covered && digest) {
      if (buf.length < covered.bytes) return undefined;
      digest.update(buf.subarray(0, covered.bytes));
      if (!sameBytes(digest.copy().digest(), covered.sha256)) return undefined;
      pos = covered.bytes;
    }
    const from = pos;
    while (pos < buf.length) {
      const fr = readFrame(buf, pos);
      if (!fr.ok) {
        if (last && !validFrameAfter(buf, pos)) {
          res.torn = { segment: name, offset: pos, droppedBytes: buf.length - pos, reason: fr.why };
        } else {
          res.damage = {
            index: tree.size,
            code: 'EW_PROVENANCE_AUDIT_CRC',
            message: `entry after record ${tree.size - 1} in ${name} at byte ${pos}: ${fr.why === 'crc' ? 'CRC mismatch' : `bad frame (${fr.why})`}`,
            segment: name,
            offset: pos,
          };
        }
        break;
      }
      const damage = applyEntry(res, fr.body, opts, segNo, pos);
      if (damage) {
        res.damage = { ...damage, segment: name, offset: pos };
        break;
      }
      pos = fr.next;
    }
    if (last) res.lastSegmentGoodBytes = res.torn ? res.torn.offset : pos;
    if (res.damage) break;
    if (digest && opts.segmentDigests) {
      digest.update(buf.subarray(from, last ? res.lastSegmentGoodBytes : pos));
      if (last) res.activeHash = digest;
      else res.sealed!.push({ name, first, bytes: pos, sha256: digest.digest() });
    }
  }
  return res;
}

/** The first record index of covered segment `s`, as the resume point saved it. */
function covered0(resume: ResumePoint | undefined, s: number): number | undefined {
  return resume?.segments[s]?.first;
}

type Damage = Omit<AuditDamage, 'segment' | 'offset'>;

function applyEntry(
  res: ScanResult,
  body: Uint8Array,
  opts: ScanOptions,
  segNo: number,
  pos: number,
): Damage | undefined {
  const kind = body[0];
  const content = body.subarray(1);
  const index = res.tree.size;
  switch (kind) {
    case ENTRY_KIND.record:
    case ENTRY_KIND.signedRecord: {
      let record = content;
      let envelope: Envelope | undefined;
      if (kind === ENTRY_KIND.signedRecord && !opts.fullDecode) {
        // Opening a log checks the chain only: the payload is read in place (~20 µs less per
        // record in a process that has just started than a full decode).
        const payload = envelopePayloadOfType(content, RECORD_TYPE);
        if (!payload) {
          return {
            index,
            code: 'EW_PROVENANCE_AUDIT_ENTRY',
            message: `signed record ${index} does not decode or has a wrong payloadType`,
          };
        }
        record = payload;
      } else if (kind === ENTRY_KIND.signedRecord) {
        try {
          envelope = decodeEnvelope(content);
        } catch {
          return { index, code: 'EW_PROVENANCE_AUDIT_ENTRY', message: `signed record ${index} does not decode` };
        }
        if (envelope.payloadType !== PAYLOAD_TYPES.record) {
          return {
            index,
            code: 'EW_PROVENANCE_AUDIT_ENTRY',
            message: `signed record ${index} has a wrong payloadType`,
          };
        }
        record = envelope.payload;
      }
      const chain = readChainFields(record);
      if (!chain) return { index, code: 'EW_PROVENANCE_AUDIT_ENTRY', message: `record ${index} does not decode` };
      if (chain.index !== index || !sameBytes(chain.prevLeafHash, res.lastLeafHash)) {
        return {
          index,
          code: 'EW_PROVENANCE_AUDIT_CHAIN',
          message:
            chain.index !== index
              ? `expected record ${index}, found record ${chain.index} (deleted, reordered or spliced entry)`
              : `record ${index} does not chain to the record before it`,
        };
      }
      // Every record names the same device: the expected one, or else the first record's.
      res.deviceKeyid ??= new Uint8Array(chain.deviceKeyid);
      if (!sameBytes(chain.deviceKeyid, res.deviceKeyid) || (opts.trust && !opts.trust.get(chain.deviceKeyid))) {
        return {
          index,
          code: 'EW_PROVENANCE_AUDIT_CHAIN',
          message: `record ${index} names device ${Buffer.from(chain.deviceKeyid).toString('hex').slice(0, 32)}, not this log's (spliced entry)`,
        };
      }
      if (opts.fullDecode) {
        const d = checkRecord(record, envelope, index, opts.trust);
        if (d) return d;
      }
      const leaf = leafHash(record);
      res.leaves.note(index, segNo, pos);
      res.tree.append(leaf);
      res.lastLeafHash = leaf;
      if (res.records) {
        res.records.push(new Uint8Array(record));
        res.signedRecords!.push(kind === ENTRY_KIND.signedRecord ? new Uint8Array(content) : undefined);
      }
      return undefined;
    }
    case ENTRY_KIND.checkpoint:
      return applyCheckpoint(res, content, opts.trust);
    case ENTRY_KIND.recovery:
      res.recoveries++;
      return undefined;
    default:
      return {
        index,
        code: 'EW_PROVENANCE_AUDIT_ENTRY',
        message: `entry after record ${index - 1} has unknown kind ${kind}`,
      };
  }
}

function checkRecord(
  record: Uint8Array,
  envelope: Envelope | undefined,
  index: number,
  trust: TrustStore | undefined,
): Damage | undefined {
  try {
    decodeRecord(record);
  } catch (e) {
    return {
      index,
      code: 'EW_PROVENANCE_AUDIT_ENTRY',
      message: `record ${index}: ${isEdgewardenError(e) ? e.message : 'bad'}`,
    };
  }
  if (envelope && trust) {
    const v = verifyEnvelope(envelope, trust, PAYLOAD_TYPES.record);
    if (!v.ok) return { index, code: v.code, message: `signed record ${index}: ${v.message}` };
  }
  return undefined;
}

function applyCheckpoint(res: ScanResult, content: Uint8Array, trust: TrustStore | undefined): Damage | undefined {
  const size = res.tree.size;
  let envelope: Envelope;
  let fields: CheckpointFields;
  try {
    envelope = decodeEnvelope(content);
    if (envelope.payloadType !== PAYLOAD_TYPES.checkpoint) throw new Error('payloadType');
    fields = decodeCheckpoint(envelope.payload);
  } catch {
    return {
      index: size,
      code: 'EW_PROVENANCE_AUDIT_ENTRY',
      message: `checkpoint after record ${size - 1} does not decode`,
    };
  }
  if (trust) {
    const v = verifyEnvelope(envelope, trust, PAYLOAD_TYPES.checkpoint);
    if (!v.ok) {
      return {
        index: size,
        code: 'EW_PROVENANCE_AUDIT_CHECKPOINT',
        message: `checkpoint of size ${fields.treeSize}: ${v.message}`,
      };
    }
  }
  res.deviceKeyid ??= fields.deviceKeyid;
  if (!sameBytes(fields.deviceKeyid, res.deviceKeyid)) {
    return { index: size, code: 'EW_PROVENANCE_AUDIT_CHECKPOINT', message: 'checkpoint names another device' };
  }
  if (fields.treeSize < res.tree.base) {
    // Signed before the records it covers were removed by retention: its root cannot be recomputed.
    // The base is vouched for by the later checkpoints, whose roots are.
    return undefined;
  }
  if (fields.treeSize > size) {
    return {
      index: size,
      code: 'EW_PROVENANCE_AUDIT_CHECKPOINT',
      message: `checkpoint covers ${fields.treeSize} records but only ${size} precede it: records from ${size} are missing`,
    };
  }
  if (!sameBytes(res.tree.root(fields.treeSize), fields.rootHash)) {
    // The root only says that something in the range changed; the first record after the last
    // matching checkpoint is the earliest that can be at fault.
    let from = res.tree.base;
    for (const c of res.checkpoints) if (c.fields.treeSize <= fields.treeSize) from = Math.max(from, c.fields.treeSize);
    return {
      index: from,
      code: 'EW_PROVENANCE_AUDIT_CHECKPOINT',
      message: `records ${from}..${fields.treeSize - 1} do not match the signed checkpoint of size ${fields.treeSize}`,
    };
  }
  // Copies: the decoded envelope's bytes are views into the whole segment file's buffer.
  const own: Envelope = {
    payload: new Uint8Array(envelope.payload),
    payloadType: envelope.payloadType,
    signatures: envelope.signatures.map((x) => ({ keyid: new Uint8Array(x.keyid), sig: new Uint8Array(x.sig) })),
  };
  res.checkpoints.push({ envelope: own, fields });
  return undefined;
}
