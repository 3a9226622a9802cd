import { describe, expect, it } from 'vitest';
import { EdgewardenError, isEdgewardenError } from '../errors';
import { defaultFakeCompute, FakeBackend } from './fake-backend';

const x = (data: number[], dims = [1, 4]) => ({ type: 'float32' as const, dims, data: new Float32Array(data) });

describe('FakeBackend', () => {
  it('computes outputs deterministically from inputs and reports provider fake', async () => {
    const backend = new FakeBackend({
      inputs: [
        { name: 'a', dtype: 'float32', dims: ['n', 2] },
        { name: 'b', dtype: 'int64', dims: [] },
      ],
      outputs: [
        { name: 'p', dtype: 'float32', dims: ['n', 2] },
        { name: 'q', dtype: 'float32', dims: ['n', 2] },
      ],
    });
    expect(backend.availableProviders()).toEqual(['fake']);
    const s = await backend.load('/models/m.onnx', { executionProviders: ['cuda', 'cpu'] });
    expect(s.executionProvider).toBe('fake');
    expect(s.fallbackReasons).toEqual(['cuda: not available in FakeBackend']);
    const out = await s.run({
      a: { type: 'float32', dims: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      b: { type: 'int64', dims: [], data: BigInt64Array.from([10n]) },
    });
    expect([...(out.p!.data as Float32Array)]).toEqual([11, 12, 13, 14]);
    expect([...(out.q!.data as Float32Array)]).toEqual([22, 24, 26, 28]);
    expect(out.p!.dims).toEqual([2, 2]);
    expect(backend.runs).toBe(1);
    expect(backend.loads).toEqual([{ path: '/models/m.onnx', options: { executionProviders: ['cuda', 'cpu'] } }]);
  });

  it('validates inputs like the real adapter and never computes on bad ones', async () => {
    const backend = new FakeBackend();
    const s = await backend.load('m.onnx', {});
    const err = await s.run({ x: x([1, 2, 3], [1, 3]) }).catch((e: unknown) => e);
    expect(isEdgewardenError(err, 'EW_ENGINE_INPUT') && err.details.input).toBe('x');
    expect(backend.runs).toBe(0);
  });

  it('injects load and run failures', async () => {
    const boom = new EdgewardenError('EW_ENGINE_RUN', 'injected');
    const backend = new FakeBackend({ failRun: (_feeds, call) => (call === 1 ? boom : undefined) });
    backend.failNextLoad(new EdgewardenError('EW_ENGINE_MODEL_INVALID', 'injected load'));
    await expect(backend.load('m.onnx', {})).rejects.toMatchObject({ code: 'EW_ENGINE_MODEL_INVALID' });
    const s = await backend.load('m.onnx', {});
    await expect(s.run({ x: x([1, 2, 3, 4]) })).resolves.toBeDefined();
    await expect(s.run({ x: x([1, 2, 3, 4]) })).rejects.toBe(boom);
    backend.failNextRun(new Error('once'));
    await expect(s.run({ x: x([1, 2, 3, 4]) })).rejects.toThrow('once');
    await expect(s.run({ x: x([1, 2, 3, 4]) })).resolves.toBeDefined();
    expect(backend.runs).toBe(2);
    await s.release();
    await expect(s.run({ x: x([1, 2, 3, 4]) })).rejects.toMatchObject({ code: 'EW_ENGINE_RELEASED' });
    const failing = new FakeBackend({ failLoad: (p) => (p.endsWith('bad.onnx') ? new Error('nope') : undefined) });
    await expect(failing.load('bad.onnx', {})).rejects.toThrow('nope');
    await expect(failing.load('good.onnx', {})).resolves.toBeDefined();
  });

  it('the default computation handles strings and bigints and no inputs', () => {
    const out = defaultFakeCompute(
      {
        s: { type: 'string', dims: [2], data: ['abc', 'de'] },
        i: { type: 'int64', dims: [1], data: BigInt64Array.from([5n]) },
      },
      [{ name: 'y' }],
    );
    expect([...(out.y!.data as Float32Array)]).toEqual([8, 7]);
    expect(defaultFakeCompute({}, [{ name: 'y' }]).y).toEqual({
      type: 'float32',
      dims: [],
      data: new Float32Array([0]),
    });
  });
});
