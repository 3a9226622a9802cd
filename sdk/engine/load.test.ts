import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { FakeBackend } from '../testing/fake-backend';
import { currentBoardHints, registerBoardHints } from './board-hints';
import { loadModel } from './load';
import { computeModelDigest } from './model-digest';
import { chooseThreads, SMALL_MODEL_BYTES } from './threads';

const FIX = join(import.meta.dirname, 'fixtures');
const cleanups: (() => void)[] = [];
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
    expect(backend.loads[0]?.options).toEqual({ executionProviders: ['cpu'], intraOpThreads: 1 });
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
    expect(backend.loads[0]?.options).toEqual({ executionProviders: ['tensorrt', 'cuda', 'cpu'], intraOpThreads: 4 });
    expect(m.threads.source).toBe('board');
    expect(m.fallbackReasons).toEqual(['tensorrt: not available in FakeBackend', 'cuda: not available in FakeBackend']);
    await loadModel(backend, join(FIX, 'add.onnx'), {
      executionProviders: ['cpu'],
      intraOpThreads: 2,
      interOpThreads: 1,
    });
    expect(backend.loads[1]?.options).toEqual({ executionProviders: ['cpu'], intraOpThreads: 2, interOpThreads: 1 });
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
