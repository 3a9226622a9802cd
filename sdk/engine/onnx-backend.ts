import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { EdgewardenError } from '../errors';
import type { BackendSession, InferenceBackend, SessionOptions, TensorMeta } from './backend';
import { checkModelFile, scanModelBytes } from './model-digest';
import type { ModelScan } from './onnx-scan';
import type { TensorMap, TensorView } from './tensor';
import { isDType } from './tensor';
import { validateInputs } from './validate';

/** The part of an onnxruntime `InferenceSession` the adapter uses. */
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Present in onnxruntime-node ≥ 1.21: type and shape of each input. */
  readonly inputMetadata?: readonly OrtValueMetadata[];
  readonly outputMetadata?: readonly OrtValueMetadata[];
  run(feeds: Record<string, unknown>): Promise<Record<string, unknown>>;
  release(): Promise<void>;
}

/** One input or output as onnxruntime describes it. */
export interface OrtValueMetadata {
  readonly name: string;
  readonly isTensor: boolean;
  readonly type?: string;
  readonly shape?: readonly (number | string)[];
}

/**
 * The part of the `onnxruntime-node` module the adapter uses. Injectable so tests can prove what the
 * runtime is (and is not) asked to do; by default the real module is loaded on first use.
 */
export interface OrtModuleLike {
  readonly InferenceSession: {
    create(model: string | Uint8Array, options: Record<string, unknown>): Promise<OrtSessionLike>;
  };
  readonly Tensor: new (type: string, data: unknown, dims: readonly number[]) => object;
  readonly listSupportedBackends?: () => readonly { name: string; bundled: boolean }[];
  readonly env?: { readonly versions?: { readonly node?: string; readonly common?: string } };
}

/** Options of {@link OnnxRuntimeBackend}. */
export interface OnnxRuntimeBackendOptions {
  /** Use this module instead of `onnxruntime-node` (tests). */
  readonly ort?: OrtModuleLike;
  /** Folder holding the runtime's provider libraries (default: onnxruntime-node's own binary folder). */
  readonly providerLibraryDir?: string;
  /** ONNX Runtime log severity for sessions: 0 verbose … 4 fatal (default 3: errors only). */
  readonly logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

const requireHere = createRequire(import.meta.url);

function loadOrt(): { ort: OrtModuleLike; libDir: string | undefined } {
  let ort: OrtModuleLike;
  try {
    ort = requireHere('onnxruntime-node') as OrtModuleLike;
  } catch (err) {
    throw new EdgewardenError(
      'EW_ENGINE_RUNTIME_UNAVAILABLE',
      `onnxruntime-node cannot be loaded on ${process.platform}/${process.arch}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  let libDir: string | undefined;
  try {
    const pkgDir = resolve(dirname(requireHere.resolve('onnxruntime-node')), '..');
    libDir = join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    libDir = undefined;
  }
  return { ort, libDir };
}

const LIB_EXT = process.platform === 'win32' ? '.dll' : process.platform === 'darwin' ? '.dylib' : '.so';

const toMeta = (m: OrtValueMetadata): TensorMeta => {
  if (!m.isTensor) return { name: m.name };
  return {
    name: m.name,
    ...(isDType(m.type) ? { dtype: m.type } : {}),
    ...(m.shape !== undefined ? { dims: [...m.shape] } : {}),
  };
};

function checkThreads(name: string, n: number | undefined): void {
  if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > 1024)) {
    throw new EdgewardenError('EW_ENGINE_OPTIONS', `${name} must be an integer from 0 to 1024, got ${n}`, {
      details: { option: name },
    });
  }
}

const ANSI_SGR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

const message = (err: unknown): string =>
  // ORT appends ANSI-coloured log lines to some messages; keep the first line, plain.
  (err instanceof Error ? err.message : String(err)).split('\n')[0]!.replace(ANSI_SGR, '').trim();

/**
 * The ONNX Runtime adapter: the only place edgewarden touches `onnxruntime-node`.
 *
 * Execution providers are tried in the requested order; each one that is missing from this runtime
 * build or fails to start is skipped with its reason kept, and CPU is always the last resort. The
 * session records the provider that actually runs it.
 */
export class OnnxRuntimeBackend implements InferenceBackend {
  readonly name = 'onnxruntime-node';
  private loaded: { ort: OrtModuleLike; libDir: string | undefined } | undefined;
  private readonly options: OnnxRuntimeBackendOptions;

  constructor(options: OnnxRuntimeBackendOptions = {}) {
    this.options = options;
    if (options.ort) this.loaded = { ort: options.ort, libDir: options.providerLibraryDir };
  }

  private get runtime(): { ort: OrtModuleLike; libDir: string | undefined } {
    if (!this.loaded) {
      const l = loadOrt();
      this.loaded = { ort: l.ort, libDir: this.options.providerLibraryDir ?? l.libDir };
    }
    return this.loaded;
  }

  /** The onnxruntime-node package version, e.g. '1.30.0'. */
  get runtimeVersion(): string {
    const v = this.runtime.ort.env?.versions;
    return v?.node ?? v?.common ?? 'unknown';
  }

  /**
   * Providers this runtime build can start: 'cpu' always; others when bundled in the binary or when
   * their provider library sits beside it (as a CUDA/TensorRT build of onnxruntime installs it).
   */
  availableProviders(): readonly string[] {
    const { ort, libDir } = this.runtime;
    const out = ['cpu'];
    for (const b of ort.listSupportedBackends?.() ?? []) {
      if (b.name === 'cpu' || b.name === 'webgpu') continue; // webgpu: no GPU adapter in headless Node
      if (b.bundled || this.providerLibrary(b.name, libDir) !== undefined) out.push(b.name);
    }
    return out;
  }

  private providerLibrary(name: string, libDir: string | undefined): string | undefined {
    if (!libDir) return undefined;
    const lib = join(libDir, `libonnxruntime_providers_${name}${LIB_EXT}`);
    return existsSync(lib) ? lib : undefined;
  }

  /**
   * Opens a model. Providers after 'cpu' in the list are never tried (CPU always succeeds or the model is bad).
   *
   * @throws EdgewardenError `EW_ENGINE_MODEL_NOT_FOUND`, `EW_ENGINE_MODEL_INVALID`, `EW_ENGINE_OPTIONS`,
   *   `EW_ENGINE_RUNTIME_UNAVAILABLE`
   */
  async load(modelPath: string, options: SessionOptions = {}): Promise<BackendSession> {
    checkThreads('intraOpThreads', options.intraOpThreads);
    checkThreads('interOpThreads', options.interOpThreads);
    // The adapter's own guarantee, whoever calls it: ONNX Runtime never opens a model whose external
    // data escapes its folder, nor a file that is not there. Bytes given are what was hashed: the
    // runtime opens them rather than the file, unless the model has external data to read beside it.
    const given = options.modelBytes;
    const givenScan = given ? scanModelBytes(given) : undefined;
    const fromBytes = given !== undefined && givenScan?.externalData.length === 0;
    const { path, scan } = fromBytes
      ? { path: resolve(modelPath), scan: givenScan as ModelScan }
      : await checkModelFile(modelPath);
    const source: string | Uint8Array = fromBytes ? given : path;
    const { ort, libDir } = this.runtime;
    const base: Record<string, unknown> = { logSeverityLevel: this.options.logSeverityLevel ?? 3 };
    if (options.intraOpThreads !== undefined) base.intraOpNumThreads = options.intraOpThreads;
    if (options.interOpThreads !== undefined) base.interOpNumThreads = options.interOpThreads;

    const requested = [...new Set((options.executionProviders ?? ['cpu']).map((p) => p.trim().toLowerCase()))];
    const known = new Map((ort.listSupportedBackends?.() ?? []).map((b) => [b.name, b]));
    const reasons: string[] = [];
    for (const provider of requested) {
      if (provider === 'cpu') break;
      const info = known.get(provider);
      if (info === undefined) {
        reasons.push(`${provider}: not an execution provider of onnxruntime-node ${this.runtimeVersion}`);
        continue;
      }
      if (!info.bundled && this.providerLibrary(provider, libDir) === undefined) {
        reasons.push(
          `${provider}: not in this onnxruntime-node build (libonnxruntime_providers_${provider}${LIB_EXT} not found)`,
        );
        continue;
      }
      try {
        // CPU stays in the list so that nodes the provider lacks still run.
        const session = await ort.InferenceSession.create(source, { ...base, executionProviders: [provider, 'cpu'] });
        return this.wrap(ort, scan, session, provider, reasons);
      } catch (err) {
        reasons.push(`${provider}: ${message(err)}`);
      }
    }
    let session: OrtSessionLike;
    try {
      session = await ort.InferenceSession.create(source, { ...base, executionProviders: ['cpu'] });
    } catch (err) {
      throw new EdgewardenError('EW_ENGINE_MODEL_INVALID', `ONNX Runtime cannot load ${path}: ${message(err)}`, {
        cause: err,
        details: { file: path, fallbackReasons: reasons },
      });
    }
    return this.wrap(ort, scan, session, 'cpu', reasons);
  }

  private wrap(
    ort: OrtModuleLike,
    scan: ModelScan,
    session: OrtSessionLike,
    provider: string,
    reasons: string[],
  ): BackendSession {
    const inMeta: TensorMeta[] = session.inputMetadata?.map(toMeta) ?? session.inputNames.map((name) => ({ name }));
    const outMeta: TensorMeta[] = session.outputMetadata?.map(toMeta) ?? session.outputNames.map((name) => ({ name }));
    // ORT reports both "rank 0" and "shape not declared" as []: ask the model which one it is.
    if (inMeta.some((m) => m.dims?.length === 0)) {
      const declared = new Map(scan.inputs.map((i) => [i.name, i.hasShape]));
      for (let i = 0; i < inMeta.length; i++) {
        const m = inMeta[i]!;
        if (m.dims?.length === 0 && declared.get(m.name) === false) {
          inMeta[i] = m.dtype === undefined ? { name: m.name } : { name: m.name, dtype: m.dtype };
        }
      }
    }
    return new OrtBackendSession(ort, session, inMeta, outMeta, provider, reasons);
  }
}

class OrtBackendSession implements BackendSession {
  private released = false;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly ort: OrtModuleLike,
    private readonly session: OrtSessionLike,
    readonly inputs: readonly TensorMeta[],
    readonly outputs: readonly TensorMeta[],
    readonly executionProvider: string,
    readonly fallbackReasons: readonly string[],
  ) {}

  async run(feeds: TensorMap): Promise<TensorMap> {
    if (this.released) throw new EdgewardenError('EW_ENGINE_RELEASED', 'this model session was released');
    // The adapter's own guarantee: ONNX Runtime never sees an input that does not match the model.
    const views = validateInputs(this.inputs, feeds);
    const ortFeeds: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(views)) {
      ortFeeds[name] = v instanceof this.ort.Tensor ? v : new this.ort.Tensor(v.type, v.data, v.dims);
    }
    const p = this.session.run(ortFeeds);
    this.inFlight.add(p);
    try {
      return (await p) as Record<string, TensorView>;
    } catch (err) {
      throw new EdgewardenError('EW_ENGINE_RUN', `ONNX Runtime failed to run the model: ${message(err)}`, {
        cause: err,
      });
    } finally {
      this.inFlight.delete(p);
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    // A run deferred to the next tick must not hit a disposed native session.
    await Promise.allSettled([...this.inFlight]);
    await this.session.release();
  }
}
