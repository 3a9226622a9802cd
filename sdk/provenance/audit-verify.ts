import { stat } from 'node:fs/promises';
import { edgewarden } from '../__generated__/provenance.js';
import { EdgewardenError, isEdgewardenError } from '../errors';
import { type AuditDamage, scanAuditLog, type TornTail } from './audit-scan';
import { type CheckpointFields, decodeCheckpoint } from './checkpoint';
import { decodeEnvelope, type Envelope, PAYLOAD_TYPES, verifyEnvelope } from './dsse';
import { keyIdOf, TrustStore } from './keys';
import { leafHash, MerkleTree } from './merkle';
import { decodeRecord } from './record';

/** Outcome of checking an audit log or an auditor's export. */
export interface AuditReport {
  /** True when no damage was found (a torn tail is normal and does not clear `ok`). */
  ok: boolean;
  /** Records that verified (the tree size up to any damage), counted from record 0. */
  size: number;
  /** The first record kept: 0 unless retention removed older segments (their records are not checked). */
  base: number;
  /** Checkpoints that verified. */
  checkpoints: number;
  /** The first damage: the exact record index, a code and what is wrong. */
  damage?: AuditDamage;
  /** An incomplete last entry (a crash while writing), not yet dropped by an open. */
  tornTail?: TornTail;
  /** Recovery events in the log (torn tails dropped by earlier opens). */
  recoveries: number;
  /** Whether signatures were checked (a trust store, or the export's own key, was given). */
  signaturesChecked: boolean;
  /** Root hash (hex) of the verified tree. */
  rootHash: string;
}

/**
 * Verifies the audit log in `dir` read-only: every entry's CRC, the hash chain, full record decoding,
 * every checkpoint against the tree, and with `trust` every signature. Never writes.
 */
export async function verifyAuditLog(
  dir: string,
  opts: { trust?: TrustStore; onSegment?: (done: number, total: number) => void } = {},
): Promise<AuditReport> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
  } catch (cause) {
    throw new EdgewardenError('EW_PROVENANCE_AUDIT_IO', `no audit log at ${dir}`, { cause, details: { dir } });
  }
  const scan = await scanAuditLog(dir, {
    fullDecode: true,
    trust: opts.trust,
    ...(opts.onSegment ? { onSegment: opts.onSegment } : {}),
  });
  const report: AuditReport = {
    ok: !scan.damage,
    size: scan.tree.size,
    base: scan.base,
    checkpoints: scan.checkpoints.length,
    recoveries: scan.recoveries,
    signaturesChecked: opts.trust !== undefined,
    rootHash: Buffer.from(scan.tree.root()).toString('hex'),
  };
  if (scan.damage) report.damage = scan.damage;
  if (scan.torn) report.tornTail = scan.torn;
  return report;
}

/**
 * An auditor's export (proto `AuditExport`) of the log in `dir`: every record, the signed envelopes of
 * per-output records (aligned with records; an entry with an empty payloadType stands for none), every
 * checkpoint, and the device public key. Refuses a damaged log with the damage's code and index.
 */
export async function exportAudit(dir: string, publicKeyRaw: Uint8Array): Promise<Uint8Array> {
  if (!(publicKeyRaw instanceof Uint8Array) || publicKeyRaw.length !== 32) {
    throw new EdgewardenError('EW_PROVENANCE_KEY_FILE', 'the device public key is 32 raw bytes');
  }
  const trust = new TrustStore([publicKeyRaw]);
  const scan = await scanAuditLog(dir, { fullDecode: true, trust, collect: true });
  if (scan.damage) {
    throw new EdgewardenError(
      scan.damage.code,
      `audit log is damaged at record ${scan.damage.index}: ${scan.damage.message}`,
      {
        details: { ...scan.damage },
      },
    );
  }
  const signed = scan.signedRecords!;
  const anySigned = signed.some((s) => s !== undefined);
  return edgewarden.v1.AuditExport.encode({
    ...(scan.base > 0 ? { firstIndex: scan.base, baseEdge: scan.tree.edgeBytes(scan.base) } : {}),
    devicePublicKey: publicKeyRaw,
    records: scan.records!,
    signedRecords: anySigned
      ? signed.map((s) => (s ? decodeEnvelope(s) : { payload: new Uint8Array(0), payloadType: '', signatures: [] }))
      : [],
    checkpoints: scan.checkpoints.map((c) => c.envelope),
  }).finish();
}

/** Largest export accepted: 1 GiB. */
const MAX_EXPORT_BYTES = 1 << 30;

function envelopeOf(m: edgewarden.v1.IEnvelope): Envelope {
  return {
    payload: m.payload ?? new Uint8Array(0),
    payloadType: m.payloadType ?? '',
    signatures: (m.signatures ?? []).map((s) => ({
      keyid: s.keyid ?? new Uint8Array(0),
      sig: s.sig ?? new Uint8Array(0),
    })),
  };
}

/**
 * Verifies an auditor's export offline: the device key (trusted when `trust` is given), each record's
 * index, chain and signature, and each checkpoint's signature and root. Throws
 * `EW_PROVENANCE_MALFORMED` when the bytes are not an export at all; otherwise returns a report.
 */
export function verifyAuditExport(bytes: Uint8Array, opts: { trust?: TrustStore } = {}): AuditReport {
  if (!(bytes instanceof Uint8Array) || bytes.length > MAX_EXPORT_BYTES) {
    throw new EdgewardenError('EW_PROVENANCE_MALFORMED', 'audit export: not bytes or too large');
  }
  let m: edgewarden.v1.AuditExport;
  try {
    m = edgewarden.v1.AuditExport.decode(bytes);
  } catch (cause) {
    throw new EdgewardenError('EW_PROVENANCE_MALFORMED', 'audit export does not decode', { cause });
  }
  const pub = m.devicePublicKey;
  if (pub?.length !== 32) throw new EdgewardenError('EW_PROVENANCE_MALFORMED', 'audit export has no device key');
  const keyid = keyIdOf(pub);
  let own: TrustStore;
  try {
    own = new TrustStore([pub]);
  } catch (cause) {
    throw new EdgewardenError('EW_PROVENANCE_MALFORMED', 'audit export device key is not Ed25519', { cause });
  }
  const base = Number(m.firstIndex ?? 0);
  if (!Number.isSafeInteger(base) || base < 0)
    throw new EdgewardenError('EW_PROVENANCE_MALFORMED', 'audit export: bad first index');
  let tree: MerkleTree;
  try {
    // The base edge is not signed: the export's checkpoints after it vouch for it (their roots).
    tree = base > 0 ? MerkleTree.fromLevelBytes(m.baseEdge ?? [], base) : new MerkleTree();
  } catch (cause) {
    throw new EdgewardenError(
      'EW_PROVENANCE_MALFORMED',
      'audit export: the base edge is not a tree of its first index',
      {
        cause,
      },
    );
  }
  const report = (damage?: AuditDamage, checkpoints = 0): AuditReport => {
    const r: AuditReport = {
      ok: !damage,
      size: tree.size,
      base,
      checkpoints,
      recoveries: 0,
      signaturesChecked: true,
      rootHash: Buffer.from(tree.root()).toString('hex'),
    };
    if (damage) r.damage = damage;
    return r;
  };
  if (opts.trust && !opts.trust.get(keyid)) {
    return report({
      index: 0,
      code: 'EW_PROVENANCE_UNTRUSTED_KEY',
      message: 'the export is signed by an untrusted device key',
    });
  }
  const records = m.records ?? [];
  const signed = m.signedRecords ?? [];
  if (signed.length !== 0 && signed.length !== records.length) {
    throw new EdgewardenError('EW_PROVENANCE_MALFORMED', 'audit export: signed records do not align with records');
  }
  let prev: Uint8Array = base > 0 ? tree.leaf(base - 1) : new Uint8Array(0);
  for (let j = 0; j < records.length; j++) {
    const i = base + j;
    const bytesI = records[j]!;
    let rec: ReturnType<typeof decodeRecord>;
    try {
      rec = decodeRecord(bytesI);
    } catch (e) {
      return report({
        index: i,
        code: 'EW_PROVENANCE_AUDIT_ENTRY',
        message: `record ${i}: ${isEdgewardenError(e) ? e.message : 'bad'}`,
      });
    }
    if (rec.index !== i || Buffer.compare(rec.prevLeafHash, prev) !== 0) {
      return report({
        index: i,
        code: 'EW_PROVENANCE_AUDIT_CHAIN',
        message: rec.index !== i ? `expected record ${i}, found record ${rec.index}` : `record ${i} does not chain`,
      });
    }
    if (Buffer.compare(rec.deviceKeyid, keyid) !== 0) {
      return report({ index: i, code: 'EW_PROVENANCE_UNTRUSTED_KEY', message: `record ${i} names another device` });
    }
    const s = signed[j];
    if (s?.payloadType) {
      const env = envelopeOf(s);
      if (Buffer.compare(env.payload, bytesI) !== 0) {
        return report({ index: i, code: 'EW_PROVENANCE_AUDIT_ENTRY', message: `signed record ${i} wraps other bytes` });
      }
      const v = verifyEnvelope(env, own, PAYLOAD_TYPES.record);
      if (!v.ok) return report({ index: i, code: v.code, message: `signed record ${i}: ${v.message}` });
    }
    prev = leafHash(bytesI);
    tree.append(prev);
  }
  const cps: CheckpointFields[] = [];
  for (const c of m.checkpoints ?? []) {
    const env = envelopeOf(c);
    const v = verifyEnvelope(env, own, PAYLOAD_TYPES.checkpoint);
    if (!v.ok) return report({ index: 0, code: 'EW_PROVENANCE_AUDIT_CHECKPOINT', message: `checkpoint: ${v.message}` });
    let f: CheckpointFields;
    try {
      f = decodeCheckpoint(env.payload);
    } catch {
      return report({ index: 0, code: 'EW_PROVENANCE_AUDIT_CHECKPOINT', message: 'checkpoint does not decode' });
    }
    if (Buffer.compare(f.deviceKeyid, keyid) !== 0) {
      return report({ index: 0, code: 'EW_PROVENANCE_AUDIT_CHECKPOINT', message: 'checkpoint names another device' });
    }
    cps.push(f);
  }
  cps.sort((a, b) => a.treeSize - b.treeSize);
  let from = base;
  for (const f of cps) {
    // Signed before retention removed the records it covers: its root cannot be recomputed.
    if (f.treeSize < base) continue;
    if (f.treeSize > tree.size) {
      return report(
        {
          index: tree.size,
          code: 'EW_PROVENANCE_AUDIT_CHECKPOINT',
          message: `checkpoint covers ${f.treeSize} records, export has ${tree.size}`,
        },
        cps.indexOf(f),
      );
    }
    if (Buffer.compare(tree.root(f.treeSize), f.rootHash) !== 0) {
      return report(
        {
          index: from,
          code: 'EW_PROVENANCE_AUDIT_CHECKPOINT',
          message: `records ${from}..${f.treeSize - 1} do not match the signed checkpoint of size ${f.treeSize}`,
        },
        cps.indexOf(f),
      );
    }
    from = f.treeSize;
  }
  return report(undefined, cps.length);
}
