// The fleet dashboard: static files (plain browser JavaScript, uPlot from node_modules, nothing from
// a CDN) and POST /api/verify, which checks a result file against the collector's enrolled keys.
import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TensorMap } from '../engine/tensor';
import { tensorsFromJson } from '../engine/tensor-json';
import { EdgewardenError, isEdgewardenError } from '../errors';
import { bundleFromJson, type ProvenanceBundle } from '../provenance/bundle';
import { deviceIdOf } from '../provenance/keys';
import { decodeRecord, type RecordFields } from '../provenance/record';
import { verifyBundle } from '../provenance/verifier';

/** What POST /api/verify answers for a result file. */
export interface VerifyAnswer {
  ok: boolean;
  /** The failure code (`EW_PROVENANCE_*`) when not ok. */
  code?: string;
  message?: string;
  /** Device id the record names (null when the file does not decode that far). */
  device: string | null;
  model: string | null;
  /** `sha256:<hex>` */
  modelDigest: string | null;
  /** The record's signed time (Unix ms). */
  time: number | null;
  mode: 'per-output' | 'batched' | null;
  /** The record's leaf index in the device's audit log. */
  index?: number | null;
}

/** Options of {@link createDashboardHandler}. */
export interface DashboardOptions {
  /** Checks a parsed result file (`edgewarden run --out`); see {@link verifyResultFile}. */
  verify: (resultJson: unknown) => VerifyAnswer | Promise<VerifyAnswer>;
  /** Folder with index.html, app.js and app.css (default: the one shipped beside this module). */
  assetsDir?: string;
  /** Largest accepted result file in bytes (default 16 MiB). */
  maxBodyBytes?: number;
}

/** A request handler: true when it took the request (answered, or answering asynchronously). */
export type DashboardHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

interface Asset {
  body: Buffer;
  type: string;
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Finds the dashboard's static files: beside this module in the source tree, or from the package
 * root when this module was bundled into `dist/` (tsup puts every module into a few chunks).
 */
export function findDashboardAssets(start = here): string {
  let dir = start;
  for (let i = 0; i < 5; i++) {
    for (const c of [
      join(dir, 'public', 'dashboard'),
      join(dir, 'sdk', 'fleet', 'public', 'dashboard'),
      join(dir, 'dist', 'public', 'dashboard'),
    ]) {
      if (existsSync(join(c, 'index.html'))) return c;
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new EdgewardenError(
    'EW_FLEET_OPTIONS',
    `the dashboard files (public/dashboard/index.html) are not found from ${start}`,
  );
}

function loadAssets(dir: string): Map<string, Asset> {
  const require = createRequire(import.meta.url);
  const uplot = dirname(require.resolve('uplot/package.json'));
  const files: [string, string, string][] = [
    ['/', join(dir, 'index.html'), 'text/html'],
    ['/assets/app.js', join(dir, 'app.js'), 'text/javascript'],
    ['/assets/app.css', join(dir, 'app.css'), 'text/css'],
    ['/assets/uPlot.iife.min.js', join(uplot, 'dist', 'uPlot.iife.min.js'), 'text/javascript'],
    ['/assets/uPlot.min.css', join(uplot, 'dist', 'uPlot.min.css'), 'text/css'],
  ];
  const out = new Map<string, Asset>();
  for (const [path, file, type] of files) {
    try {
      out.set(path, { body: readFileSync(file), type });
    } catch (cause) {
      throw new EdgewardenError('EW_FLEET_OPTIONS', `dashboard file ${file} cannot be read`, { cause });
    }
  }
  out.set('/index.html', out.get('/')!);
  return out;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * Serves the dashboard: `GET /` (index.html), `GET /assets/{app.js,app.css,uPlot.iife.min.js,uPlot.min.css}`
 * and `POST /api/verify` (body: a result file; answer: {@link VerifyAnswer}). Every other request is
 * left to the caller (returns false), so the handler can sit in front of the collector's API.
 *
 * @example
 * const dashboard = createDashboardHandler({ verify: collectorResultVerifier(collector) });
 * await startFleetHttp(collector, { extra: (req, res) => dashboard(req, res) });
 */
export function createDashboardHandler(opts: DashboardOptions): DashboardHandler {
  const assets = loadAssets(opts.assetsDir ?? findDashboardAssets());
  const maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/api/verify') {
      if (req.method !== 'POST') {
        sendJson(res, 405, { error: { code: 'EW_FLEET_OPTIONS', message: 'POST a result file to /api/verify' } });
        return true;
      }
      readBody(req, maxBody).then(
        async (body) => {
          if (body === undefined) {
            const message = `a result file is at most ${maxBody} bytes`;
            return sendJson(res, 413, { error: { code: 'EW_FLEET_OVERSIZED', message } });
          }
          let doc: unknown;
          try {
            doc = JSON.parse(body.toString('utf8'));
          } catch {
            return sendJson(res, 200, notAResult('the file is not JSON'));
          }
          sendJson(res, 200, await opts.verify(doc));
        },
        () => res.destroy(),
      );
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const asset = assets.get(path);
    if (!asset) return false;
    res.writeHead(200, {
      'content-type': `${asset.type}; charset=utf-8`,
      'content-length': asset.body.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
    return true;
  };
}

/** Reads a request body; undefined when it is larger than `max` (the rest is discarded). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const notAResult = (message: string): VerifyAnswer => ({
  ok: false,
  code: 'EW_PROVENANCE_MALFORMED',
  message: `${message}; drop a result file written by 'edgewarden run --out'`,
  device: null,
  model: null,
  modelDigest: null,
  time: null,
  mode: null,
});

/**
 * The JSON tensor form of result files back to plain arrays the verifier digests: non-finite floats
 * are written as "NaN"/"Infinity"/"-Infinity" and 64-bit integers beyond 2^53 as decimal strings.
 */
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/**
 * Verifies a parsed result file (`{ outputs, provenance }`, as `edgewarden run --out` writes it)
 * with the pure verifier, trusting the key that `keyFor` returns for the device the record names.
 * Never throws on hostile input: a file that is not a result file answers `EW_PROVENANCE_MALFORMED`,
 * an unknown device `EW_PROVENANCE_UNTRUSTED_KEY`.
 */
export async function verifyResultFile(
  doc: unknown,
  keyFor: (deviceKeyidHex: string) => KeyObject | Uint8Array | undefined | Promise<KeyObject | Uint8Array | undefined>,
): Promise<VerifyAnswer> {
  if (typeof doc !== 'object' || doc === null || !('provenance' in doc) || !('outputs' in doc)) {
    return notAResult('the file has no "outputs" and "provenance"');
  }
  const d = doc as { outputs: unknown; provenance: unknown };
  let bundle: ProvenanceBundle;
  let record: RecordFields;
  try {
    bundle = bundleFromJson(d.provenance);
    record = decodeRecord(bundle.record.payload);
  } catch (e) {
    if (!isEdgewardenError(e)) throw e;
    return { ...notAResult(e.message), code: e.code };
  }
  const about = {
    device: deviceIdOf(record.deviceKeyid),
    model: record.modelName,
    modelDigest: `sha256:${hex(record.modelDigest)}`,
    time: record.timeUnixMs,
    mode: bundle.mode,
    index: record.index,
  };
  let outputs: TensorMap;
  try {
    outputs = tensorsFromJson(d.outputs, 'outputs');
  } catch (e) {
    if (!isEdgewardenError(e)) throw e;
    return { ...about, ok: false, code: 'EW_PROVENANCE_MALFORMED', message: e.message };
  }
  const key = await keyFor(hex(record.deviceKeyid));
  if (!key) {
    return {
      ...about,
      ok: false,
      code: 'EW_PROVENANCE_UNTRUSTED_KEY',
      message: `device ${about.device} is not enrolled (and approved) with this collector`,
    };
  }
  try {
    const v = verifyBundle(bundle, outputs, { trust: [key] });
    return v.ok ? { ...about, ok: true } : { ...about, ok: false, code: v.code, message: v.message };
  } catch (e) {
    if (!isEdgewardenError(e)) throw e;
    return { ...about, ok: false, code: e.code, message: e.message };
  }
}

/** The subset of the collector that {@link collectorResultVerifier} needs. */
export interface EnrolledKeys {
  registry: {
    lookup(keyidHex: string): { deviceId: string; key: KeyObject; status: string } | undefined;
    ensure(deviceId: string): Promise<unknown>;
  };
}

/** `verify` for {@link createDashboardHandler}: result files are checked against the collector's approved device keys. */
export function collectorResultVerifier(collector: EnrolledKeys): (doc: unknown) => Promise<VerifyAnswer> {
  return (doc) =>
    verifyResultFile(doc, async (keyid) => {
      // A device enrolled by another collector sharing the store is loaded on first use.
      if (!collector.registry.lookup(keyid)) await collector.registry.ensure(keyid.slice(0, 32));
      const k = collector.registry.lookup(keyid);
      return k && k.status === 'approved' ? k.key : undefined;
    });
}
