import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { isEdgewardenError } from '../errors';
import type { OrtModuleLike, OrtSessionLike } from './onnx-backend';
import { OnnxRuntimeBackend } from './onnx-backend';

const FIX = join(import.meta.dirname, 'fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'ew-ort-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return isEdgewardenError(err) ? err.code : `untyped: ${String(err)}`;
  }
  return undefined;
}

describe('OnnxRuntimeBackend on the real runtime', () => {
  const backend = new OnnxRuntimeBackend();

  it('reports the runtime version of the installed onnxruntime-node and cpu', () => {
    const pkg = JSON.parse(readFileSync(join('node_modules', 'onnxruntime-node', 'package.json'), 'utf8'));
    expect(backend.runtimeVersion).toBe(pkg.version);
    expect(backend.availableProviders()).toContain('cpu');
    // This x64 build ships no CUDA/TensorRT provider libraries (the install flag skips them).
    if (process.arch === 'x64') expect(backend.availableProviders()).toEqual(['cpu']);
  });

  it('reads metadata and runs a two-input model', async () => {
    const s = await backend.load(join(FIX, 'add.onnx'), {});
    expect(s.inputs).toEqual([
      { name: 'a', dtype: 'float32', dims: ['n', 3] },
      { name: 'b', dtype: 'float32', dims: ['n', 3] },
    ]);
    expect(s.outputs).toEqual([{ name: 'sum', dtype: 'float32', dims: ['n', 3] }]);
    expect(s.executionProvider).toBe('cpu');
    expect(s.fallbackReasons).toEqual([]);
    const out = await s.run({
      a: { type: 'float32', dims: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      b: { type: 'float32', dims: [2, 3], data: new Float32Array([10, 20, 30, 40, 50, 60]) },
    });
    expect(out.sum!.dims).toEqual([2, 3]);
    expect([...(out.sum!.data as Float32Array)]).toEqual([11, 22, 33, 44, 55, 66]);
    await s.release();
    expect(await codeOf(s.run({}))).toBe('EW_ENGINE_RELEASED');
  });

  it('takes an int64 scalar (rank 0) and tells it apart from an input with no declared shape', async () => {
    const s = await backend.load(join(FIX, 'scalar.onnx'), {});
    expect(s.inputs).toEqual([
      { name: 'x', dtype: 'float32', dims: [2, 2] },
      { name: 'k', dtype: 'int64', dims: [] },
      { name: 'u', dtype: 'float32' },
    ]);
    const out = await s.run({
      x: { type: 'float32', dims: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      k: { type: 'int64', dims: [], data: BigInt64Array.from([3n]) },
      u: { type: 'float32', dims: [5], data: new Float32Array([9, 8, 7, 6, 5]) },
    });
    expect([...(out.y!.data as Float32Array)]).toEqual([3, 6, 9, 12]);
    expect([...(out.v!.data as Float32Array)]).toEqual([9, 8, 7, 6, 5]);
    const err = await s
      .run({
        x: { type: 'float32', dims: [2, 2], data: new Float32Array(4) },
        k: { type: 'int64', dims: [1], data: BigInt64Array.from([3n]) },
        u: { type: 'float32', dims: [1], data: new Float32Array(1) },
      })
      .catch((e: unknown) => e);
    expect(isEdgewardenError(err, 'EW_ENGINE_INPUT') && err.details.input).toBe('k');
    await s.release();
  });

  it('runs a model whose weights live in an external-data file', async () => {
    const s = await backend.load(join(FIX, 'external.onnx'), {});
    const out = await s.run({ x: { type: 'float32', dims: [1, 4], data: new Float32Array([1, 1, 1, 1]) } });
    expect([...(out.y!.data as Float32Array)]).toEqual([16, 20]);
    await s.release();
  });

  it('falls back from tensorrt and cuda to cpu, keeping both reasons', async () => {
    const s = await backend.load(join(FIX, 'add.onnx'), { executionProviders: ['tensorrt', 'cuda'] });
    expect(s.executionProvider).toBe('cpu');
    if (process.arch === 'x64') {
      expect(s.fallbackReasons).toHaveLength(2);
      expect(s.fallbackReasons[0]).toMatch(/^tensorrt: /);
      expect(s.fallbackReasons[1]).toMatch(/^cuda: /);
    }
    await s.release();
  });

  it('refuses a missing file and a corrupt file with typed errors', async () => {
    expect(await codeOf(backend.load(join(tmp, 'nope.onnx'), {}))).toBe('EW_ENGINE_MODEL_NOT_FOUND');
    const corrupt = join(tmp, 'corrupt.onnx');
    writeFileSync(corrupt, 'this is not a protobuf at all \u0000\u00ff');
    expect(await codeOf(backend.load(corrupt, {}))).toBe('EW_ENGINE_MODEL_INVALID');
    const truncated = join(tmp, 'truncated.onnx');
    writeFileSync(truncated, readFileSync(join(FIX, 'add.onnx')).subarray(0, 60));
    expect(await codeOf(backend.load(truncated, {}))).toBe('EW_ENGINE_MODEL_INVALID');
  });

  it('refuses bad thread counts', async () => {
    copyFileSync(join(FIX, 'add.onnx'), join(tmp, 'add.onnx'));
    expect(await codeOf(backend.load(join(tmp, 'add.onnx'), { intraOpThreads: -1 }))).toBe('EW_ENGINE_OPTIONS');
    expect(await codeOf(backend.load(join(tmp, 'add.onnx'), { interOpThreads: 1.5 }))).toBe('EW_ENGINE_OPTIONS');
  });
});

/** A scripted stand-in for onnxruntime-node that records what it is asked. */
function fakeOrt(opts: { failProviders?: Record<string, string>; runError?: Error; bundled?: string[] } = {}) {
  class Tensor {
    constructor(
      readonly type: string,
      readonly data: unknown,
      readonly dims: readonly number[],
    ) {}
  }
  const creates: Record<string, unknown>[] = [];
  const opened: (string | Uint8Array)[] = [];
  const run = vi.fn(async (feeds: Record<string, unknown>): Promise<Record<string, unknown>> => {
    if (opts.runError) throw opts.runError;
    return { y: (feeds.x as Tensor) ?? new Tensor('float32', new Float32Array(0), [0]) };
  });
  const session: OrtSessionLike = {
    inputNames: ['x'],
    outputNames: ['y'],
    inputMetadata: [{ name: 'x', isTensor: true, type: 'float32', shape: ['n', 2] }],
    outputMetadata: [{ name: 'y', isTensor: true, type: 'float32', shape: ['n', 2] }],
    run,
    release: vi.fn(async () => {}),
  };
  const ort: OrtModuleLike = {
    InferenceSession: {
      create: vi.fn(async (model: string | Uint8Array, options: Record<string, unknown>) => {
        creates.push(options);
        opened.push(model);
        const first = (options.executionProviders as string[])[0]!;
        const failure = opts.failProviders?.[first];
        if (failure) throw new Error(`${failure}\n\u001b[1;31mnoisy log line\u001b[m`);
        return session;
      }),
    },
    Tensor,
    listSupportedBackends: () => [
      { name: 'cpu', bundled: true },
      { name: 'cuda', bundled: (opts.bundled ?? []).includes('cuda') },
      { name: 'tensorrt', bundled: (opts.bundled ?? []).includes('tensorrt') },
    ],
    env: { versions: { node: '9.9.9' } },
  };
  return { ort, creates, opened, run, session };
}

describe('OnnxRuntimeBackend against a scripted runtime', () => {
  const model = join(FIX, 'add.onnx');

  it('records the provider that started and the reasons of those that did not', async () => {
    const f = fakeOrt({ bundled: ['cuda', 'tensorrt'], failProviders: { tensorrt: 'TensorRT: no engine for sm_87' } });
    const backend = new OnnxRuntimeBackend({ ort: f.ort });
    expect(backend.availableProviders()).toEqual(['cpu', 'cuda', 'tensorrt']);
    expect(backend.runtimeVersion).toBe('9.9.9');
    const s = await backend.load(model, { executionProviders: ['TensorRT', 'cuda', 'cpu'], intraOpThreads: 1 });
    expect(s.executionProvider).toBe('cuda');
    expect(s.fallbackReasons).toEqual(['tensorrt: TensorRT: no engine for sm_87']);
    expect(f.creates.map((o) => o.executionProviders)).toEqual([
      ['tensorrt', 'cpu'],
      ['cuda', 'cpu'],
    ]);
    expect(f.creates[1]).toMatchObject({ intraOpNumThreads: 1 });
    expect(f.creates[1]).not.toHaveProperty('interOpNumThreads');
  });

  it('skips providers missing from the build without asking the runtime, and unknown names', async () => {
    const f = fakeOrt();
    const s = await new OnnxRuntimeBackend({ ort: f.ort }).load(model, {
      executionProviders: ['cuda', 'npu9000'],
      interOpThreads: 2,
    });
    expect(s.executionProvider).toBe('cpu');
    expect(s.fallbackReasons[0]).toMatch(/^cuda: not in this onnxruntime-node build/);
    expect(s.fallbackReasons[1]).toMatch(/^npu9000: not an execution provider/);
    expect(f.creates).toEqual([{ logSeverityLevel: 3, interOpNumThreads: 2, executionProviders: ['cpu'] }]);
  });

  it('never calls the runtime with inputs that do not match the model', async () => {
    const f = fakeOrt();
    const s = await new OnnxRuntimeBackend({ ort: f.ort }).load(model, {});
    const bad = [
      {},
      { x: { type: 'int32', dims: [1, 2], data: new Int32Array(2) } },
      { x: { type: 'float32', dims: [2], data: new Float32Array(2) } },
      { x: { type: 'float32', dims: [1, 3], data: new Float32Array(3) } },
      { x: { type: 'float32', dims: [1, 2], data: new Float32Array(3) } },
      {
        x: { type: 'float32', dims: [1, 2], data: new Float32Array(2) },
        extra: { type: 'float32', dims: [], data: new Float32Array(1) },
      },
    ];
    for (const feeds of bad) {
      const err = await s.run(feeds as never).catch((e: unknown) => e);
      expect(isEdgewardenError(err, 'EW_ENGINE_INPUT')).toBe(true);
    }
    expect(f.run).not.toHaveBeenCalled();
    const ok = await s.run({ x: { type: 'float32', dims: [3, 2], data: new Float32Array(6).fill(2) } });
    expect(f.run).toHaveBeenCalledTimes(1);
    expect(ok.y!.dims).toEqual([3, 2]);
  });

  it('opens the model bytes it is given, or the path when the model has external data', async () => {
    const f = fakeOrt();
    const backend = new OnnxRuntimeBackend({ ort: f.ort });
    const bytes = readFileSync(model);
    await backend.load(model, { modelBytes: bytes });
    expect(f.opened[0]).toBe(bytes);
    const external = join(FIX, 'external.onnx');
    await backend.load(external, { modelBytes: readFileSync(external) });
    expect(f.opened[1]).toBe(external);
    await backend.load(model, {});
    expect(f.opened[2]).toBe(model);
    // Bytes are checked like a file: escaping external data is refused before the runtime is asked.
    const escaping = readFileSync(join(FIX, 'escape.onnx'));
    expect(await codeOf(backend.load(join(FIX, 'escape.onnx'), { modelBytes: escaping }))).toBe(
      'EW_ENGINE_EXTERNAL_DATA',
    );
    expect(await codeOf(backend.load(model, { modelBytes: Uint8Array.of(0xff, 0xff, 0xff) }))).toBe(
      'EW_ENGINE_MODEL_INVALID',
    );
    expect(f.opened).toHaveLength(3);
  });

  it('refuses escaping external data and missing files before asking the runtime', async () => {
    const f = fakeOrt();
    const backend = new OnnxRuntimeBackend({ ort: f.ort });
    expect(await codeOf(backend.load(join(FIX, 'escape.onnx'), {}))).toBe('EW_ENGINE_EXTERNAL_DATA');
    expect(await codeOf(backend.load(join(tmp, 'missing.onnx'), {}))).toBe('EW_ENGINE_MODEL_NOT_FOUND');
    expect(f.ort.InferenceSession.create).not.toHaveBeenCalled();
  });

  it('wraps runtime failures as EW_ENGINE_RUN with the cause kept', async () => {
    const f = fakeOrt({ runError: new Error('Non-zero status code returned while running Conv node') });
    const s = await new OnnxRuntimeBackend({ ort: f.ort }).load(model, {});
    const err = await s.run({ x: { type: 'float32', dims: [1, 2], data: new Float32Array(2) } }).catch((e) => e);
    expect(isEdgewardenError(err, 'EW_ENGINE_RUN')).toBe(true);
    expect((err as Error).message).toContain('Conv node');
    expect(((err as Error).cause as Error).message).toMatch(/^Non-zero status code/);
  });

  it('release waits for a run in flight before disposing the native session', async () => {
    const f = fakeOrt();
    const order: string[] = [];
    f.run.mockImplementationOnce(async () => {
      await new Promise((r) => setImmediate(r));
      order.push('run');
      return {};
    });
    (f.session.release as ReturnType<typeof vi.fn>).mockImplementation(async () => {
      order.push('release');
    });
    const s = await new OnnxRuntimeBackend({ ort: f.ort }).load(model, {});
    const running = s.run({ x: { type: 'float32', dims: [1, 2], data: new Float32Array(2) } });
    await s.release();
    await running;
    expect(order).toEqual(['run', 'release']);
  });
});
