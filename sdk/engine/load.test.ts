import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { FakeBackend } from '../testing/fake-backend';
import type { InferenceBackend } from './backend';
import { currentBoardHints, registerBoardHints } from './board-hints';
import { loadModel } from './load';
import { computeModelDigest } from './model-digest';
import { OnnxRuntimeBackend } from './onnx-backend';
import { chooseThreads, SMALL_MODEL_BYTES } from './threads';

const FIX = join(import.meta.dirname, 'fixtures');
const cleanups: (() => void)[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'ew-load-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The real runtime, with `before()` run when loadModel has hashed the model and asks it to open. */
function runtimeAfter(before: () => void): InferenceBackend {
  const real = new OnnxRuntimeBackend();
  return {
    name: real.name,
    get runtimeVersion() {
      return real.runtimeVersion;
    },
    availableProviders: () => real.availableProviders(),
    load(path, options) {
      before();
      return real.load(path, options);
    },
  };
}

/** Replaces `path` with `content` the way updates do: a new file renamed over it. */
function replaceFile(path: string, content: Uint8Array): void {
  writeFileSync(`${path}.new`, content);
  renameSync(`${path}.new`, path);
}
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('loadModel', () => {
  it('names the model after its file, digests it, and reports what runs it', async () => {
    const backend = new FakeBackend();
    const m = await loadModel(backend, join(FIX, 'external.onnx'));
    const d = await computeModelDigest(join(FIX, 'external.onnx'));
    expect(m.name).toBe('external');
    expect(m.digest).toEqual(d.digest);
    expect(m.files).toEqual([join(FIX, 'external.onnx'), join(FIX, 'external.bin')]);
    expect(m.executionProvider).toBe('fake');
    expect(m.fallbackReasons).toEqual([]);
    expect(backend.loads[0]?.options).toEqual({
      executionProviders: ['cpu'],
      intraOpThreads: 1,
      modelBytes: readFileSync(join(FIX, 'external.onnx')),
    });
    expect(m.threads).toEqual({ intraOpThreads: 1, interOpThreads: undefined, source: 'rule' });
    const named = await loadModel(backend, join(FIX, 'add.onnx'), { name: 'adder' });
    expect(named.name).toBe('adder');
  });

  it('refuses escaping external data before the backend is asked to load anything', async () => {
    const backend = new FakeBackend();
    const err = await loadModel(backend, join(FIX, 'escape.onnx')).catch((e: unknown) => e);
    expect(isEdgewardenError(err, 'EW_ENGINE_EXTERNAL_DATA')).toBe(true);
    expect(backend.loads).toEqual([]);
  });

  it('rejects bad inputs before the backend runs', async () => {
    const backend = new FakeBackend();
    const m = await loadModel(backend, join(FIX, 'add.onnx'));
    const err = await m.run({ x: { dtype: 'int32', dims: [1, 4], data: [1, 2, 3, 4] } }).catch((e: unknown) => e);
    expect(isEdgewardenError(err, 'EW_ENGINE_INPUT') && err.details.input).toBe('x');
    expect(backend.runs).toBe(0);
    const out = await m.run({ x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } });
    expect([...(out.y!.data as Float32Array)]).toEqual([1, 2, 3, 4]);
    expect(backend.runs).toBe(1);
  });

  it('takes providers and threads from board hints unless options say otherwise', async () => {
    cleanups.push(
      registerBoardHints(() => ({
        source: 'jetson-test',
        executionProviders: ['tensorrt', 'cuda', 'cpu'],
        intraOpThreads: 4,
      })),
    );
    const backend = new FakeBackend();
    const m = await loadModel(backend, join(FIX, 'add.onnx'));
    expect(backend.loads[0]?.options).toMatchObject({
      executionProviders: ['tensorrt', 'cuda', 'cpu'],
      intraOpThreads: 4,
    });
    expect(m.threads.source).toBe('board');
    expect(m.fallbackReasons).toEqual(['tensorrt: not available in FakeBackend', 'cuda: not available in FakeBackend']);
    await loadModel(backend, join(FIX, 'add.onnx'), {
      executionProviders: ['cpu'],
      intraOpThreads: 2,
      interOpThreads: 1,
    });
    expect(backend.loads[1]?.options).toMatchObject({
      executionProviders: ['cpu'],
      intraOpThreads: 2,
      interOpThreads: 1,
    });
  });

  it('runs the bytes it hashed, even when the file is replaced before the runtime opens it', async () => {
    const path = join(tmp, 'swapped.onnx');
    copyFileSync(join(FIX, 'add.onnx'), path);
    const hashed = await computeModelDigest(path);
    const m = await loadModel(
      runtimeAfter(() => replaceFile(path, readFileSync(join(FIX, 'scalar.onnx')))),
      path,
    );
    // add.onnx (inputs a and b), not scalar.onnx that now lies at the path.
    expect(m.digest).toEqual(hashed.digest);
    expect(m.inputs.map((i) => i.name)).toEqual(['a', 'b']);
    const out = await m.run({
      a: { dtype: 'float32', dims: [1, 3], data: [1, 2, 3] },
      b: { dtype: 'float32', dims: [1, 3], data: [10, 20, 30] },
    });
    expect([...(out.sum!.data as Float32Array)]).toEqual([11, 22, 33]);
    await m.release();
  });

  it('refuses a model whose external data is replaced while it loads (EW_ENGINE_MODEL_CHANGED)', async () => {
    const dir = mkdtempSync(join(tmp, 'ext-'));
    copyFileSync(join(FIX, 'external.onnx'), join(dir, 'm.onnx'));
    copyFileSync(join(FIX, 'external.bin'), join(dir, 'external.bin'));
    const weights = readFileSync(join(dir, 'external.bin'));
    const other = new Uint8Array(weights.length).fill(7);
    const err = await loadModel(
      runtimeAfter(() => replaceFile(join(dir, 'external.bin'), other)),
      join(dir, 'm.onnx'),
    ).catch((e: unknown) => e);
    expect(isEdgewardenError(err, 'EW_ENGINE_MODEL_CHANGED')).toBe(true);
    expect(isEdgewardenError(err) && err.details.file).toBe(join(dir, 'external.bin'));
    // Unchanged, it loads.
    const m = await loadModel(new OnnxRuntimeBackend(), join(dir, 'm.onnx'));
    expect(m.files).toEqual([join(dir, 'm.onnx'), join(dir, 'external.bin')]);
    await m.release();
  });
});

describe('board hints registry', () => {
  it('the latest provider with an answer wins; a throwing one is skipped; unregister works', () => {
    expect(currentBoardHints()).toBeUndefined();
    const a = registerBoardHints(() => ({ source: 'a' }));
    const b = registerBoardHints(() => undefined);
    const c = registerBoardHints(() => {
      throw new Error('probe failed');
    });
    expect(currentBoardHints()?.source).toBe('a');
    const d = registerBoardHints(() => ({ source: 'd' }));
    expect(currentBoardHints()?.source).toBe('d');
    for (const un of [d, c, b, a]) un();
    expect(currentBoardHints()).toBeUndefined();
  });
});

describe('chooseThreads', () => {
  const big = SMALL_MODEL_BYTES * 4;
  it('options, then board hints, then the measured rule, then the runtime default', () => {
    expect(chooseThreads({ intraOpThreads: 3, modelBytes: big, cores: 8, hints: { intraOpThreads: 2 } })).toEqual({
      intraOpThreads: 3,
      interOpThreads: undefined,
      source: 'options',
    });
    expect(chooseThreads({ modelBytes: big, cores: 8, hints: { intraOpThreads: 2, interOpThreads: 1 } })).toEqual({
      intraOpThreads: 2,
      interOpThreads: 1,
      source: 'board',
    });
    expect(chooseThreads({ modelBytes: 1000, cores: 8 }).intraOpThreads).toBe(1);
    expect(chooseThreads({ modelBytes: big, cores: 2 }).intraOpThreads).toBe(1);
    expect(chooseThreads({ modelBytes: big, cores: 8 })).toEqual({
      intraOpThreads: undefined,
      interOpThreads: undefined,
      source: 'runtime-default',
    });
  });
});
