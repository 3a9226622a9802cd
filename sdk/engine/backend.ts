import type { DType, TensorMap, TensorView } from './tensor';

/** One declared input or output of a model. A dimension is a number when fixed, a string or null when symbolic. */
export interface TensorMeta {
  readonly name: string;
  /** Absent when the runtime does not expose it (then the check is skipped for this input). */
  readonly dtype?: DType;
  readonly dims?: readonly (number | string | null)[];
}

/** How to open a model. */
export interface SessionOptions {
  /** Providers to try in order, e.g. ['tensorrt', 'cuda', 'cpu']; 'cpu' is always the last resort. */
  readonly executionProviders?: readonly string[];
  readonly intraOpThreads?: number;
  readonly interOpThreads?: number;
  /**
   * The model file's bytes as they were hashed. A runtime that can open a model from memory opens
   * these rather than reading the file again, so that what runs is what was digested even if the
   * file is replaced meanwhile. Ignored for a model with external data, which the runtime reads
   * beside the file.
   */
  readonly modelBytes?: Uint8Array;
}

/** An opened model that can run. */
export interface BackendSession {
  readonly inputs: readonly TensorMeta[];
  readonly outputs: readonly TensorMeta[];
  /** The provider that actually runs this session ('cpu', 'cuda', 'tensorrt'). */
  readonly executionProvider: string;
  /** Why requested providers were skipped, in order, e.g. ["cuda: libcudart.so.12 not found"]. */
  readonly fallbackReasons: readonly string[];
  run(feeds: TensorMap): Promise<TensorMap>;
  release(): Promise<void>;
}

/**
 * The seam between edgewarden and an inference runtime. The ONNX Runtime adapter is the only file
 * that imports onnxruntime-node; `edgewarden/testing` exports a fake for users' unit tests.
 */
export interface InferenceBackend {
  readonly name: string;
  readonly runtimeVersion: string;
  /** Providers this runtime build has, e.g. ['cpu'] or ['cpu', 'cuda', 'tensorrt']. */
  availableProviders(): readonly string[];
  load(modelPath: string, options: SessionOptions): Promise<BackendSession>;
}

export type { TensorView };
