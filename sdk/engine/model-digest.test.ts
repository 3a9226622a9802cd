import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { buildModel, externalMatmulModel, externalWeights } from './fixtures/make-fixtures.mjs';
import { computeModelDigest } from './model-digest';
import { scanOnnxModel } from './onnx-scan';

const FIX = join(import.meta.dirname, 'fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'ew-digest-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A fresh folder `root/<n>/models` holding `files`; returns the models folder. */
function folder(files: Record<string, Uint8Array | string>): string {
  const dir = join(tmp, String(n++), 'models');
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  }
  return dir;
}

async function failure(p: Promise<unknown>): Promise<{ code: string; details: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    if (isEdgewardenError(err)) return { code: err.code, details: { ...err.details } };
    throw err;
  }
  throw new Error('expected a failure');
}

const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

describe('computeModelDigest', () => {
  it('is SHA-256 of the model file when it has no external data', async () => {
    const path = join(FIX, 'add.onnx');
    const d = await computeModelDigest(path);
    expect(d.digest).toEqual(sha(readFileSync(path)));
    expect(d.files).toEqual([path]);
  });

  it('covers external-data files after the model, in name order, each once, with progress', async () => {
    // Two initializers in b.bin and a.bin (a third reference spells a.bin differently).
    const model = buildModel({
      name: 'two',
      node: [],
      initializer: ['b.bin', 'a.bin', './a.bin'].map((location, i) => ({
        name: `w${i}`,
        dims: [2],
        dataType: 1,
        dataLocation: 1,
        externalData: [{ key: 'location', value: location }],
      })),
    });
    const a = new Uint8Array(3_000_000).fill(7);
    const b = new Uint8Array([1, 2, 3]);
    const dir = folder({ 'm.onnx': model, 'a.bin': a, 'b.bin': b });
    const progress: [number, number][] = [];
    const d = await computeModelDigest(join(dir, 'm.onnx'), {
      onProgress: (done, total) => progress.push([done, total]),
    });
    expect(d.digest).toEqual(sha(model, a, b));
    expect(d.files).toEqual([join(dir, 'm.onnx'), join(dir, 'a.bin'), join(dir, 'b.bin')]);
    const total = model.length + a.length + b.length;
    expect(d.bytes).toBe(total);
    expect(progress.length).toBeGreaterThan(2); // streamed in chunks, not in one read
    expect(progress.at(-1)).toEqual([total, total]);
    for (let i = 1; i < progress.length; i++) expect(progress[i]![0]).toBeGreaterThanOrEqual(progress[i - 1]![0]);
  });

  it('finds external data in subgraphs and Constant attributes too', () => {
    const ext = (location: string) => ({
      name: location,
      dataType: 1,
      dataLocation: 1,
      externalData: [{ key: 'location', value: location }],
    });
    const model = buildModel({
      name: 'outer',
      initializer: [ext('main.bin')],
      node: [
        { opType: 'Constant', output: ['c'], attribute: [{ name: 'value', type: 4, t: ext('const.bin') }] },
        {
          opType: 'If',
          input: ['cond'],
          output: ['o'],
          attribute: [{ name: 'then_branch', type: 5, g: { name: 'then', initializer: [ext('sub.bin')] } }],
        },
      ],
    });
    expect(new Set(scanOnnxModel(model).externalData.map((r) => r.location))).toEqual(
      new Set(['main.bin', 'const.bin', 'sub.bin']),
    );
  });

  it('refuses locations that escape the model folder, before anything reads them', async () => {
    const cases: Record<string, string> = {
      '../escape.bin': 'parent',
      '/etc/passwd': 'absolute',
      'C:\\weights.bin': 'windows drive',
      '\\\\server\\share\\w.bin': 'UNC',
      'sub/../../escape.bin': 'nested parent',
      'sub\\..\\..\\escape.bin': 'windows parent',
      '': 'empty',
      'w\u0000.bin': 'NUL',
    };
    for (const location of Object.keys(cases)) {
      const dir = folder({ 'm.onnx': externalMatmulModel(location) });
      writeFileSync(join(dir, '..', 'escape.bin'), externalWeights());
      const f = await failure(computeModelDigest(join(dir, 'm.onnx')));
      expect(f.code, cases[location]).toBe('EW_ENGINE_EXTERNAL_DATA');
      expect(f.details.location).toBe(location);
    }
  });

  it('refuses the committed hostile fixture', async () => {
    expect((await failure(computeModelDigest(join(FIX, 'escape.onnx')))).code).toBe('EW_ENGINE_EXTERNAL_DATA');
  });

  it('refuses a symlink that resolves outside the folder and accepts one inside', async () => {
    const dir = folder({ 'm.onnx': externalMatmulModel('w.bin'), 'real/w.bin': externalWeights() });
    writeFileSync(join(dir, '..', 'outside.bin'), externalWeights());
    symlinkSync(join(dir, '..', 'outside.bin'), join(dir, 'w.bin'));
    expect((await failure(computeModelDigest(join(dir, 'm.onnx')))).code).toBe('EW_ENGINE_EXTERNAL_DATA');

    const ok = folder({ 'm.onnx': externalMatmulModel('w.bin'), 'real/w.bin': externalWeights() });
    symlinkSync(join(ok, 'real', 'w.bin'), join(ok, 'w.bin'));
    const d = await computeModelDigest(join(ok, 'm.onnx'));
    expect(d.digest).toEqual(sha(externalMatmulModel('w.bin'), externalWeights()));
  });

  it('a missing model or external-data file is EW_ENGINE_MODEL_NOT_FOUND', async () => {
    expect((await failure(computeModelDigest(join(tmp, 'absent.onnx')))).code).toBe('EW_ENGINE_MODEL_NOT_FOUND');
    expect((await failure(computeModelDigest(tmp))).code).toBe('EW_ENGINE_MODEL_NOT_FOUND');
    const dir = folder({ 'm.onnx': externalMatmulModel('gone.bin') });
    const f = await failure(computeModelDigest(join(dir, 'm.onnx')));
    expect(f).toMatchObject({ code: 'EW_ENGINE_MODEL_NOT_FOUND', details: { file: join(dir, 'gone.bin') } });
  });

  it('bytes that are not a model are EW_ENGINE_MODEL_INVALID', async () => {
    for (const bytes of ['plain text, not protobuf', new Uint8Array([0x3a, 0xff, 0xff, 0xff, 0x0f]), '']) {
      const dir = folder({ 'm.onnx': bytes });
      expect((await failure(computeModelDigest(join(dir, 'm.onnx')))).code).toBe('EW_ENGINE_MODEL_INVALID');
    }
    // An external tensor with no location entry.
    const noLoc = buildModel({ name: 'g', initializer: [{ name: 'w', dataType: 1, dataLocation: 1 }] });
    const dir = folder({ 'm.onnx': noLoc });
    expect((await failure(computeModelDigest(join(dir, 'm.onnx')))).code).toBe('EW_ENGINE_MODEL_INVALID');
  });

  it('an ORT-format (flatbuffer) model has no external data', () => {
    const ort = new Uint8Array(64);
    ort.set(Buffer.from('ORTM'), 4);
    expect(scanOnnxModel(ort)).toEqual({ externalData: [], inputs: [] });
  });

  it('hostile bytes never crash the scanner: a result or EW_ENGINE_MODEL_INVALID', () => {
    const seed = externalMatmulModel('w.bin');
    const mutate = fc.tuple(fc.integer({ min: 0, max: seed.length - 1 }), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 256 }),
          fc.array(mutate, { minLength: 1, maxLength: 8 }).map((edits) => {
            const b = Uint8Array.from(seed);
            for (const [i, v] of edits) b[i] = v;
            return b;
          }),
        ),
        (bytes) => {
          try {
            const scan = scanOnnxModel(bytes);
            expect(Array.isArray(scan.externalData)).toBe(true);
          } catch (err) {
            expect(isEdgewardenError(err, 'EW_ENGINE_MODEL_INVALID')).toBe(true);
          }
        },
      ),
      { numRuns: 2000 },
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('deeply nested subgraphs are refused or scanned, never a crash', () => {
    // GraphProto.node(1) → NodeProto.attribute(5) → AttributeProto.g(6) → GraphProto ..., 20,000 deep.
    const header = (field: number, len: number) => {
      const out = [(field << 3) | 2];
      do {
        out.push((len & 0x7f) | (len >= 0x80 ? 0x80 : 0));
        len >>>= 7;
      } while (len > 0);
      return out;
    };
    // Built inside out as a list of length-delimited headers (no payload at the bottom).
    const headers: number[][] = [];
    let len = 0;
    for (let i = 0; i < 20_000; i++) {
      for (const field of [6, 5, 1]) {
        const h = header(field, len);
        headers.push(h);
        len += h.length;
      }
    }
    headers.push(header(7, len));
    const model = Uint8Array.from(headers.reverse().flat());
    try {
      scanOnnxModel(model);
    } catch (err) {
      expect(isEdgewardenError(err, 'EW_ENGINE_MODEL_INVALID')).toBe(true);
    }
  });
});
