import type { BackendSession, InferenceBackend, SessionOptions, TensorMeta } from '../engine/backend';
import type { TensorMap, TensorView } from '../engine/tensor';
import { validateInputs } from '../engine/validate';
import { EdgewardenError } from '../errors';

/** Computes a fake model's outputs from its (validated) inputs. */
export type FakeCompute = (feeds: TensorMap, outputs: readonly TensorMeta[]) => TensorMap;

/** Options of {@link FakeBackend}. */
export interface FakeBackendOptions {
  /** Declared inputs of every model it loads (default: `x`, float32 `['n', 4]`). */
  readonly inputs?: readonly TensorMeta[];
  /** Declared outputs (default: `y`, float32 `['n', 4]`). */
  readonly outputs?: readonly TensorMeta[];
  /** Replaces the default computation (see {@link defaultFakeCompute}). */
  readonly compute?: FakeCompute;
  readonly runtimeVersion?: string;
  /** Return an error to make a load fail (called for every load). */
  readonly failLoad?: (modelPath: string, options: SessionOptions) => Error | undefined;
  /** Return an error to make a run fail; `call` counts runs of this backend from 0. */
  readonly failRun?: (feeds: TensorMap, call: number) => Error | undefined;
}

const toNumber = (v: number | bigint | string): number =>
  typeof v === 'string' ? v.length : typeof v === 'bigint' ? Number(v) : v;

/**
 * The default fake computation: output number k (0-based) is a float32 tensor with the first
 * input's dims whose element i is `(k + 1) × Σ inputs[i]` (each input read at `i mod length`;
 * bigints as numbers, strings as their length). Deterministic, so tests can assert exact values.
 */
export const defaultFakeCompute: FakeCompute = (feeds, outputs) => {
  const ins = Object.values(feeds);
  const dims = ins[0]?.dims ?? [];
  let n = 1;
  for (let i = 0; i < dims.length; i++) n *= dims[i] as number;
  const sum = new Float64Array(n);
  for (const t of ins) {
    const data = t.data as ArrayLike<number | bigint | string>;
    if (data.length === 0) continue;
    for (let i = 0; i < n; i++) sum[i]! += toNumber(data[i % data.length]!);
  }
  const out: TensorMap = {};
  // Plain loops, no iterators: benchmarks run the warden on this backend to measure the warden.
  for (let k = 0; k < outputs.length; k++) {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (k + 1) * (sum[i] as number);
    out[(outputs[k] as TensorMeta).name] = { type: 'float32', dims: dims.slice(), data };
  }
  return out;
};

/**
 * An {@link InferenceBackend} for unit tests: no runtime, no native code. Every model it loads has
 * the configured inputs and outputs; inputs are validated exactly as the ONNX Runtime adapter does
 * (EW_ENGINE_INPUT), outputs are computed deterministically, failures can be injected, and it
 * reports the execution provider 'fake' (with a fallback reason for each other provider asked for).
 */
export class FakeBackend implements InferenceBackend {
  readonly name = 'fake';
  readonly runtimeVersion: string;
  /** Every load call, in order. */
  readonly loads: { path: string; options: SessionOptions }[] = [];
  /** Number of runs that reached the computation (validated inputs, no injected failure). */
  runs = 0;
  private calls = 0;
  private nextLoadError: Error | undefined;
  private nextRunError: Error | undefined;

  constructor(private readonly options: FakeBackendOptions = {}) {
    this.runtimeVersion = options.runtimeVersion ?? 'fake-1.0.0';
  }

  availableProviders(): readonly string[] {
    return ['fake'];
  }

  /** Makes the next load (only) fail with `err`. */
  failNextLoad(err: Error): void {
    this.nextLoadError = err;
  }

  /** Makes the next run (only) fail with `err`. */
  failNextRun(err: Error): void {
    this.nextRunError = err;
  }

  async load(modelPath: string, options: SessionOptions = {}): Promise<BackendSession> {
    this.loads.push({ path: modelPath, options });
    const injected = this.nextLoadError ?? this.options.failLoad?.(modelPath, options);
    this.nextLoadError = undefined;
    if (injected) throw injected;
    const reasons = (options.executionProviders ?? [])
      .filter((p) => p !== 'cpu' && p !== 'fake')
      .map((p) => `${p}: not available in FakeBackend`);
    const inputs = this.options.inputs ?? [{ name: 'x', dtype: 'float32', dims: ['n', 4] }];
    const outputs = this.options.outputs ?? [{ name: 'y', dtype: 'float32', dims: ['n', 4] }];
    const compute = this.options.compute ?? defaultFakeCompute;
    let released = false;
    return {
      inputs,
      outputs,
      executionProvider: 'fake',
      fallbackReasons: reasons,
      run: async (feeds: TensorMap): Promise<TensorMap> => {
        if (released) throw new EdgewardenError('EW_ENGINE_RELEASED', 'this model session was released');
        const views: Record<string, TensorView> = validateInputs(inputs, feeds);
        const call = this.calls++;
        const err = this.nextRunError ?? this.options.failRun?.(views, call);
        this.nextRunError = undefined;
        if (err) throw err;
        this.runs++;
        return compute(views, outputs);
      },
      release: async () => {
        released = true;
      },
    };
  }
}
