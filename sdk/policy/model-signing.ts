import { createHash, verify as cryptoVerify } from 'node:crypto';
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { EdgewardenError } from '../errors';
import { type Envelope, envelopeFromJson, envelopeToJson, pae, signEnvelope } from '../provenance/dsse';
import { keyIdOf, toPublicKey } from '../provenance/keys';
import type { Signer } from '../provenance/signer';

/** The signature file's default name inside a model folder (as the OpenSSF `model_signing` tool writes it). */
export const MODEL_SIGNATURE_FILE = 'model.sig';
/** DSSE payloadType of an in-toto statement. */
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const INTOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/** Predicate type whose subjects are the model's files (one subject per file). */
export const MODEL_DIGESTS_PREDICATE = 'https://model_signing/Digests/v0.1';
/** Newer predicate type that lists the files under `predicate.resources`. */
export const MODEL_SIGNATURE_PREDICATE = 'https://model_signing/signature/v1.0';
const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/** A file of a model folder: path relative to the folder (POSIX separators) and SHA-256 hex. */
export interface ModelFile {
  readonly name: string;
  readonly sha256: string;
}

/** The verdict on a signed model folder. */
export type ModelSignatureVerdict =
  | { ok: true; publisherKeyIds: readonly string[]; files: readonly ModelFile[] }
  | {
      ok: false;
      code:
        | 'EW_POLICY_MODEL_SIGNATURE'
        | 'EW_POLICY_MODEL_FILE_CHANGED'
        | 'EW_POLICY_MODEL_FILE_EXTRA'
        | 'EW_POLICY_MODEL_FILE_MISSING';
      message: string;
      /** The files that differ, for the FILE codes. */
      files?: readonly string[];
    };

const IGNORED_DIRS = new Set(['.git']);

function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Hashes every regular file under `dir` (recursively, `.git` and the signature file excluded),
 * sorted by name. Synchronous: it runs once at model load.
 */
export function hashModelFolder(dir: string, signatureFile = MODEL_SIGNATURE_FILE): ModelFile[] {
  const out: ModelFile[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const name = rel ? posix.join(rel, e.name) : e.name;
      if (e.isDirectory()) {
        if (!IGNORED_DIRS.has(e.name)) walk(name);
      } else if (e.isFile() && name !== signatureFile) {
        out.push({ name, sha256: sha256File(join(dir, name)) });
      }
    }
  };
  walk('');
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The in-toto Statement v1 of a model folder: one subject per file with its SHA-256. */
export function modelStatement(files: readonly ModelFile[]): Record<string, unknown> {
  return {
    _type: INTOTO_STATEMENT_TYPE,
    subject: files.map((f) => ({
      name: f.name,
      digest: { sha256: f.sha256 },
      annotations: { actual_hash_algorithm: 'file-sha256' },
    })),
    predicateType: MODEL_DIGESTS_PREDICATE,
    predicate: {},
  };
}

/**
 * Signs a model folder as a publisher: hashes its files, signs the statement as DSSE and writes
 * `dir/model.sig` (a Sigstore-bundle-shaped JSON whose `dsseEnvelope` holds the signature).
 */
export async function signModelFolder(
  signer: Signer,
  dir: string,
  signatureFile = MODEL_SIGNATURE_FILE,
): Promise<Envelope> {
  const statement = modelStatement(hashModelFolder(dir, signatureFile));
  const env = await signEnvelope(signer, INTOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)));
  const bundle = {
    mediaType: BUNDLE_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint: Buffer.from(signer.keyId).toString('hex') } },
    dsseEnvelope: envelopeToJson(env),
  };
  writeFileSync(join(dir, signatureFile), `${JSON.stringify(bundle, null, 2)}\n`);
  return env;
}

const fail = (message: string): ModelSignatureVerdict => ({ ok: false, code: 'EW_POLICY_MODEL_SIGNATURE', message });

// Subject names must stay inside the folder.
const safeName = (n: unknown): n is string =>
  typeof n === 'string' &&
  n.length > 0 &&
  n.length <= 4096 &&
  !n.startsWith('/') &&
  !n.includes('\\') &&
  !n.includes('\0') &&
  posix.normalize(n) === n &&
  !n.split('/').includes('..');

/** Reads the listed files from a statement (subjects, or `predicate.resources` of v1.0). */
function listedFiles(statement: unknown): Map<string, string> | string {
  if (typeof statement !== 'object' || statement === null) return 'statement is not an object';
  const s = statement as Record<string, unknown>;
  if (s._type !== INTOTO_STATEMENT_TYPE) return `statement _type ${JSON.stringify(s._type)}`;
  const out = new Map<string, string>();
  const add = (name: unknown, hex: unknown): string | undefined => {
    if (!safeName(name)) return `file name ${JSON.stringify(name)} is not a relative path inside the folder`;
    if (typeof hex !== 'string' || !/^[0-9a-f]{64}$/.test(hex)) return `file ${name} has no sha256 digest`;
    if (out.has(name)) return `file ${name} listed twice`;
    out.set(name, hex);
    return undefined;
  };
  if (s.predicateType === MODEL_SIGNATURE_PREDICATE) {
    const res = (s.predicate as { resources?: unknown } | undefined)?.resources;
    if (!Array.isArray(res)) return 'predicate.resources is not a list';
    for (const r of res as { name?: unknown; algorithm?: unknown; digest?: unknown }[]) {
      if (r?.algorithm !== 'sha256') return `file ${String(r?.name)}: algorithm ${String(r?.algorithm)} unsupported`;
      const why = add(r.name, r.digest);
      if (why) return why;
    }
    return out;
  }
  if (s.predicateType !== MODEL_DIGESTS_PREDICATE) return `predicateType ${JSON.stringify(s.predicateType)}`;
  if (!Array.isArray(s.subject)) return 'subject is not a list';
  for (const sub of s.subject as { name?: unknown; digest?: { sha256?: unknown } }[]) {
    const why = add(sub?.name, sub?.digest?.sha256);
    if (why) return why;
  }
  return out;
}

/**
 * Verifies a model folder's OpenSSF model-signing signature against trusted publisher keys, then
 * compares every file: a changed, extra or missing file fails with the code that names which
 * (`details` in `files`). Synchronous.
 */
export function verifyModelFolder(
  dir: string,
  publishers: readonly Uint8Array[],
  signatureFile = MODEL_SIGNATURE_FILE,
): ModelSignatureVerdict {
  let env: Envelope;
  try {
    const text = readFileSync(join(dir, signatureFile), 'utf8');
    if (text.length > 64 << 20) return fail('signature file too large');
    const json = JSON.parse(text) as Record<string, unknown>;
    env = envelopeFromJson(json && typeof json === 'object' && 'dsseEnvelope' in json ? json.dsseEnvelope : json);
  } catch (err) {
    return fail(`cannot read ${signatureFile}: ${(err as Error).message}`);
  }
  if (env.payloadType !== INTOTO_PAYLOAD_TYPE) return fail(`payloadType ${env.payloadType}`);
  const keys = publishers.map((p) => ({ id: Buffer.from(keyIdOf(p)), key: toPublicKey(p) }));
  const msg = pae(env.payloadType, env.payload);
  const good = new Set<string>();
  for (const s of env.signatures) {
    if (s.sig.length !== 64) continue;
    // The OpenSSF tool may leave keyid empty: then try every trusted publisher.
    const candidates = s.keyid.length > 0 ? keys.filter((k) => k.id.equals(s.keyid)) : keys;
    for (const k of candidates) if (cryptoVerify(null, msg, k.key, s.sig)) good.add(k.id.toString('hex'));
  }
  if (good.size === 0) return fail('no valid signature by a trusted model publisher');
  let statement: unknown;
  try {
    statement = JSON.parse(Buffer.from(env.payload).toString('utf8'));
  } catch {
    return fail('statement is not JSON');
  }
  const listed = listedFiles(statement);
  if (typeof listed === 'string') return fail(listed);
  let actual: ModelFile[];
  try {
    actual = hashModelFolder(dir, signatureFile);
  } catch (err) {
    return fail(`cannot read model folder: ${(err as Error).message}`);
  }
  const present = new Map(actual.map((f) => [f.name, f.sha256]));
  const changed = actual.filter((f) => listed.has(f.name) && listed.get(f.name) !== f.sha256).map((f) => f.name);
  const missing = [...listed.keys()].filter((n) => !present.has(n)).sort();
  const extra = actual.filter((f) => !listed.has(f.name)).map((f) => f.name);
  if (changed.length > 0) {
    return {
      ok: false,
      code: 'EW_POLICY_MODEL_FILE_CHANGED',
      message: `changed after signing: ${changed.join(', ')}`,
      files: changed,
    };
  }
  if (missing.length > 0) {
    return {
      ok: false,
      code: 'EW_POLICY_MODEL_FILE_MISSING',
      message: `missing: ${missing.join(', ')}`,
      files: missing,
    };
  }
  if (extra.length > 0) {
    return { ok: false, code: 'EW_POLICY_MODEL_FILE_EXTRA', message: `not signed: ${extra.join(', ')}`, files: extra };
  }
  return { ok: true, publisherKeyIds: [...good].sort(), files: actual };
}

/** Like {@link verifyModelFolder} but throws the failure as an EdgewardenError. */
export function assertModelFolder(dir: string, publishers: readonly Uint8Array[], signatureFile?: string): ModelFile[] {
  const v = verifyModelFolder(dir, publishers, signatureFile);
  if (!v.ok) throw new EdgewardenError(v.code, v.message, { details: { dir, files: v.files ?? [] } });
  return [...v.files];
}
