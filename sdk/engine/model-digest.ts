import { createHash } from 'node:crypto';
import { type BigIntStats, createReadStream, readFileSync, statSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { EdgewardenError } from '../errors';
import { type ModelScan, scanOnnxModel } from './onnx-scan';

/** Options of {@link computeModelDigest}. */
export interface ModelDigestOptions {
  /** Called as bytes are hashed (model file first, then external data), e.g. for a CLI progress bar. */
  readonly onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

/** The digest of a model and the files it covers. */
export interface ModelDigest {
  /** SHA-256 over the model file bytes, then each external-data file's bytes in name order. */
  readonly digest: Uint8Array;
  /** Absolute paths of the hashed files, in hashing order: the model file first. */
  readonly files: string[];
  /** Total bytes hashed (model plus external data). */
  readonly bytes: number;
  /** What the model scan found (external-data references, declared inputs). */
  readonly scan: ModelScan;
}

function notFound(path: string, what: string, err: unknown): EdgewardenError {
  return new EdgewardenError('EW_ENGINE_MODEL_NOT_FOUND', `${what} ${path} cannot be read: ${(err as Error).message}`, {
    cause: err,
    details: { file: path },
  });
}

function refuse(location: string, why: string): EdgewardenError {
  return new EdgewardenError('EW_ENGINE_EXTERNAL_DATA', `external-data location ${JSON.stringify(location)} ${why}`, {
    details: { location },
  });
}

const inside = (root: string, p: string): boolean => {
  const rel = relative(root, p);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
};

/**
 * Resolves an external-data location against the model's folder, refusing anything that could make
 * the runtime read outside it: absolute paths (POSIX or Windows-style), NUL bytes, `..` segments,
 * and symlinks whose target lies outside the folder.
 */
async function resolveLocation(modelDir: string, realModelDir: string, location: string): Promise<string> {
  if (location === '' || location.includes('\0')) throw refuse(location, 'is empty or contains NUL');
  if (isAbsolute(location) || location.startsWith('\\') || /^[A-Za-z]:/.test(location)) {
    throw refuse(location, 'is absolute; it must be relative to the model folder');
  }
  // '..' as a segment under either separator: the model may have been written on Windows.
  if (location.split(/[\\/]/).includes('..')) throw refuse(location, 'contains ".." and escapes the model folder');
  const full = resolve(modelDir, location);
  if (!inside(modelDir, full)) throw refuse(location, 'escapes the model folder');
  let real: string;
  try {
    real = await realpath(full);
  } catch (err) {
    throw notFound(full, 'external-data file', err);
  }
  if (!inside(realModelDir, real)) throw refuse(location, `resolves outside the model folder (${real})`);
  const st = await stat(real);
  if (!st.isFile()) throw refuse(location, 'is not a regular file');
  return full;
}

const utf8Order = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** A model file read and checked, before any runtime opens it. */
export interface InspectedModel {
  /** Absolute path of the model file. */
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly scan: ModelScan;
  /** Absolute paths of its external-data files, each once, in UTF-8 order of their names in the folder. */
  readonly externalFiles: readonly string[];
  /** The model file's identity when it was read (see {@link modelFilesChanged}). */
  readonly stamp: string;
}

// Models up to this size are read synchronously: one read(2) instead of the promise API's chunked
// round trips through the thread pool (a few ms of cold start), and the event loop waits at most a
// few ms. Larger files are read asynchronously.
const SYNC_READ_MAX = 16 << 20;

/** The last model scanned, so that loading (digest, then runtime) does not read and scan it twice. */
let lastScan: { key: string; scan: ModelScan } | undefined;
/** Scans of model bytes read here, so that a runtime given those bytes does not parse them again. */
const scannedBytes = new WeakMap<Uint8Array, ModelScan>();

const identity = (path: string, st: BigIntStats): string =>
  `${path}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

/** A file's identity now: path, device, inode, size, mtime and ctime; '' when it cannot be read. */
function stampOf(path: string): string {
  try {
    return identity(path, statSync(path, { bigint: true }));
  } catch {
    return '';
  }
}

/**
 * The first of `files` whose identity is no longer the one in `stamps` (same order): replaced,
 * rewritten or removed since it was hashed. Undefined when none changed. A rewrite in place that
 * keeps size and falls within one tick of the filesystem's clock keeps its identity.
 */
export function modelFilesChanged(files: readonly string[], stamps: readonly string[]): string | undefined {
  return files.find((f, i) => stampOf(f) !== stamps[i]);
}

/** What the model scan finds in these bytes (the scan done when they were read, if they were read here). */
export function scanModelBytes(bytes: Uint8Array): ModelScan {
  return scannedBytes.get(bytes) ?? scanOnnxModel(bytes);
}

function statModel(path: string): BigIntStats {
  try {
    const st = statSync(path, { bigint: true });
    if (!st.isFile()) throw new Error('not a regular file');
    return st;
  } catch (err) {
    throw notFound(path, 'model file', err);
  }
}

async function readModel(path: string, st: BigIntStats): Promise<Buffer> {
  try {
    return st.size <= BigInt(SYNC_READ_MAX) ? readFileSync(path) : await readFile(path);
  } catch (err) {
    throw notFound(path, 'model file', err);
  }
}

async function externalFilesOf(path: string, scan: ModelScan): Promise<string[]> {
  if (scan.externalData.length === 0) return [];
  const dir = dirname(path);
  const realDir = await realpath(dir);
  const byLocation = new Map<string, string>();
  for (const ref of scan.externalData) {
    if (!byLocation.has(ref.location)) byLocation.set(ref.location, await resolveLocation(dir, realDir, ref.location));
  }
  // Two spellings of one file ('w.bin', './w.bin') count once, ordered by their normalised name.
  return [...new Set(byLocation.values())].sort((a, b) => utf8Order(relative(dir, a), relative(dir, b)));
}

/**
 * Reads a model file, scans it, and resolves and checks every external-data location, refusing any
 * that could make a runtime read outside the model's folder. Nothing is hashed.
 *
 * @throws EdgewardenError `EW_ENGINE_MODEL_NOT_FOUND`, `EW_ENGINE_MODEL_INVALID`, `EW_ENGINE_EXTERNAL_DATA`
 */
export async function inspectModelFile(modelPath: string): Promise<InspectedModel> {
  const path = resolve(modelPath);
  const st = statModel(path);
  const bytes = await readModel(path, st);
  const scan = scanOnnxModel(bytes);
  scannedBytes.set(bytes, scan);
  const stamp = identity(path, st);
  // Remembered only when the file did not change while it was read.
  if (bytes.length === Number(st.size)) lastScan = { key: stamp, scan };
  return { path, bytes, scan, externalFiles: await externalFilesOf(path, scan), stamp };
}

/**
 * {@link inspectModelFile} without the bytes: what a runtime adapter checks before opening a model.
 * The scan of a file just inspected (same path, device, inode, size, mtime and ctime) is reused
 * rather than read and parsed again; external-data locations are always checked anew.
 *
 * @throws EdgewardenError `EW_ENGINE_MODEL_NOT_FOUND`, `EW_ENGINE_MODEL_INVALID`, `EW_ENGINE_EXTERNAL_DATA`
 */
export async function checkModelFile(modelPath: string): Promise<Omit<InspectedModel, 'bytes'>> {
  const path = resolve(modelPath);
  const st = statModel(path);
  const stamp = identity(path, st);
  const cached = lastScan?.key === stamp ? lastScan.scan : undefined;
  const scan = cached ?? scanOnnxModel(await readModel(path, st));
  return { path, scan, externalFiles: await externalFilesOf(path, scan), stamp };
}

/** {@link ModelDigest} with what loading needs besides: the model bytes and each file's identity. */
export interface ModelDigestForLoad extends ModelDigest {
  /** The model file's bytes, as hashed. */
  readonly modelBytes: Uint8Array;
  /** Identity of each of `files` when it was hashed (see {@link modelFilesChanged}). */
  readonly stamps: readonly string[];
}

/**
 * Computes a model's digest: SHA-256 over the model file bytes followed by the bytes of each of its
 * external-data files, in UTF-8 order of their names relative to the model folder, each file once.
 * External-data locations are checked (see {@link inspectModelFile}) before anything reads them.
 *
 * @throws EdgewardenError `EW_ENGINE_MODEL_NOT_FOUND` (model or external-data file missing),
 *   `EW_ENGINE_MODEL_INVALID` (not an ONNX model), `EW_ENGINE_EXTERNAL_DATA` (location escapes the folder)
 */
export async function computeModelDigest(modelPath: string, options: ModelDigestOptions = {}): Promise<ModelDigest> {
  const { digest, files, bytes, scan } = await digestModelFiles(modelPath, options);
  return { digest, files, bytes, scan };
}

/**
 * {@link computeModelDigest}, also returning the model bytes and the files' identities, so that a
 * loader can give the runtime exactly what it hashed and notice external data replaced meanwhile.
 */
export async function digestModelFiles(
  modelPath: string,
  options: ModelDigestOptions = {},
): Promise<ModelDigestForLoad> {
  const { path, bytes, scan, externalFiles, stamp } = await inspectModelFile(modelPath);
  // One stat per external file gives its size and its identity, taken before it is read: a change
  // while it is read shows as a changed identity later.
  const stats = externalFiles.map((full) => {
    try {
      return statSync(full, { bigint: true });
    } catch (err) {
      throw notFound(full, 'external-data file', err);
    }
  });
  const stamps = [stamp, ...externalFiles.map((full, i) => identity(full, stats[i] as BigIntStats))];
  const total = bytes.length + stats.reduce((a, st) => a + Number(st.size), 0);
  const hash = createHash('sha256');
  hash.update(bytes);
  let done = bytes.length;
  options.onProgress?.(done, total);
  for (const full of externalFiles) {
    try {
      for await (const chunk of createReadStream(full, { highWaterMark: 1 << 20 })) {
        hash.update(chunk as Buffer);
        done += (chunk as Buffer).length;
        options.onProgress?.(done, total);
      }
    } catch (err) {
      throw notFound(full, 'external-data file', err);
    }
  }
  return {
    digest: new Uint8Array(hash.digest()),
    files: [path, ...externalFiles],
    bytes: total,
    scan,
    modelBytes: bytes,
    stamps,
  };
}
