import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tensorsToJson } from '../engine/tensor-json';
import { bundleToJson } from '../provenance/bundle';
import { KeySigner } from '../provenance/keys';
import { createWarden } from '../warden/create';
import { Collector } from './collector';
import { collectorResultVerifier, createDashboardHandler, type VerifyAnswer } from './dashboard';
import { SqliteStore } from './sqlite-store';

const ADD = join(import.meta.dirname, '../engine/fixtures/add.onnx');

type ResultDoc = { outputs: Record<string, { data: unknown[] }>; provenance: Record<string, unknown> };

/** A result file as `edgewarden run --out` writes it, from a real warden. */
async function resultFile(signer: KeySigner, home: string, mode: 'batched' | 'per-output'): Promise<ResultDoc> {
  const warden = await createWarden({ home, signer, mode, durability: 'none', checkpointMs: 10 });
  try {
    const m = await warden.load(ADD);
    const x = { dtype: 'float32' as const, dims: [1, 3], data: new Float32Array([1, 2, 3]) };
    const { outputs, provenance } = await m.infer(Object.fromEntries(m.inputs.map((i) => [i.name, x])));
    return JSON.parse(
      JSON.stringify({ outputs: tensorsToJson(outputs), provenance: bundleToJson(await provenance) }),
    ) as ResultDoc;
  } finally {
    await warden.close();
  }
}

describe('dashboard handler', () => {
  let dir: string;
  let store: SqliteStore;
  let collector: Collector;
  let server: Server;
  let base: string;
  const enrolled = KeySigner.generate();
  const pending = KeySigner.generate();
  const stranger = KeySigner.generate();
  const docs: Record<string, ResultDoc> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ew-dashboard-'));
    store = new SqliteStore(':memory:');
    collector = await Collector.start({ store, tickMs: 0 });
    await collector.registry.enroll({ deviceId: enrolled.deviceId, publicKey: enrolled.publicKey, status: 'approved' });
    await collector.registry.enroll({ deviceId: pending.deviceId, publicKey: pending.publicKey, status: 'pending' });
    const handler = createDashboardHandler({ verify: collectorResultVerifier(collector), maxBodyBytes: 64 * 1024 });
    server = createServer((req, res) => {
      if (handler(req, res)) return;
      res.writeHead(404).end('fallthrough');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    docs.batched = await resultFile(enrolled, join(dir, 'a'), 'batched');
    docs.perOutput = await resultFile(enrolled, join(dir, 'b'), 'per-output');
    docs.pending = await resultFile(pending, join(dir, 'c'), 'per-output');
    docs.stranger = await resultFile(stranger, join(dir, 'd'), 'per-output');
  });

  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await collector?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const verify = async (body: string): Promise<VerifyAnswer> => {
    const res = await fetch(`${base}/api/verify`, { method: 'POST', body });
    expect(res.status).toBe(200);
    return (await res.json()) as VerifyAnswer;
  };

  it('serves the page and its assets from the package and node_modules, and leaves other paths alone', async () => {
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('<script src="/assets/app.js">');
    for (const [path, type, text] of [
      ['/assets/app.js', 'text/javascript', 'EventSource'],
      ['/assets/app.css', 'text/css', '.pill'],
      ['/assets/uPlot.iife.min.js', 'text/javascript', 'uPlot'],
      ['/assets/uPlot.min.css', 'text/css', '.uplot'],
    ] as const) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toBe(`${type}; charset=utf-8`);
      expect(await res.text()).toContain(text);
    }
    const head = await fetch(`${base}/assets/app.js`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    for (const path of ['/api/devices', '/assets/../package.json', '/assets/nope.js', '/metrics']) {
      const res = await fetch(base + path);
      expect([path, res.status, await res.text()]).toEqual([path, 404, 'fallthrough']);
    }
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${base}/api/verify`)).status).toBe(405);
  });

  it('verifies result files of enrolled devices in both provenance modes', async () => {
    for (const [doc, mode] of [
      [docs.batched!, 'batched'],
      [docs.perOutput!, 'per-output'],
    ] as const) {
      const v = await verify(JSON.stringify(doc));
      expect(v).toMatchObject({ ok: true, device: enrolled.deviceId, model: 'add', mode, index: 0 });
      expect(v.modelDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(Math.abs(Date.now() - v.time!)).toBeLessThan(60_000);
    }
  });

  it('answers the failure code of a tampered, unknown or unapproved result, with what the file claims', async () => {
    const tampered = structuredClone(docs.perOutput!);
    (tampered.outputs[Object.keys(tampered.outputs)[0]!]!.data as number[])[0] = 99;
    expect(await verify(JSON.stringify(tampered))).toMatchObject({
      ok: false,
      code: 'EW_PROVENANCE_OUTPUT_DIGEST',
      device: enrolled.deviceId,
      model: 'add',
    });

    const forged = structuredClone(docs.perOutput!);
    const env = forged.provenance.envelope as { signatures: { sig: string }[] };
    const sig = Buffer.from(env.signatures[0]!.sig, 'base64');
    sig[0]! ^= 1;
    env.signatures[0]!.sig = sig.toString('base64');
    expect((await verify(JSON.stringify(forged))).code).toBe('EW_PROVENANCE_SIGNATURE');

    const badProof = structuredClone(docs.batched!);
    const inclusion = badProof.provenance.inclusion as { treeSize: number; leafIndex: number };
    inclusion.leafIndex = inclusion.treeSize + 5;
    expect((await verify(JSON.stringify(badProof))).ok).toBe(false);

    for (const doc of [docs.stranger!, docs.pending!]) {
      expect(await verify(JSON.stringify(doc))).toMatchObject({ ok: false, code: 'EW_PROVENANCE_UNTRUSTED_KEY' });
    }
  });

  it('never crashes on hostile bodies: not JSON, not a result file, wrong shapes, oversized', async () => {
    for (const body of [
      'not json',
      '',
      'null',
      '[]',
      '42',
      '{"outputs":{}}',
      '{"outputs":{},"provenance":null}',
      '{"outputs":[],"provenance":{"mode":"per-output","envelope":{}}}',
      JSON.stringify({ ...docs.perOutput!, outputs: { output: { dtype: 'float32', dims: [1e9], data: [] } } }),
      JSON.stringify({ ...docs.perOutput!, outputs: { output: { dtype: 'nope', dims: [1], data: [1] } } }),
      JSON.stringify({ ...docs.perOutput!, outputs: { output: null } }),
      JSON.stringify({ ...docs.perOutput!, outputs: { __proto__: { dtype: 'float32', dims: [1], data: [1] } } }),
      JSON.stringify({ ...docs.perOutput!, provenance: { ...docs.perOutput!.provenance, mode: 'both' } }),
    ]) {
      const v = await verify(body);
      expect(v.ok, body.slice(0, 80)).toBe(false);
      expect(v.code, body.slice(0, 80)).toMatch(/^EW_PROVENANCE_[A-Z_]+$/);
    }
    const big = await fetch(`${base}/api/verify`, { method: 'POST', body: 'x'.repeat(70 * 1024) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('EW_FLEET_OVERSIZED');
  });
});
