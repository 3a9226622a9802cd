import { basename, resolve } from 'node:path';
import { EdgewardenError } from '../errors';
import type { BackendSession, InferenceBackend, TensorMeta } from './backend';
import { currentBoardHints } from './board-hints';
import { digestModelFiles, modelFilesChanged } from './model-digest';
import type { TensorInput, TensorMap } from './tensor';
import { chooseThreads, type ThreadChoice } from './threads';
import { validateInputs } from './validate';

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /** Defaults to the file's basename without `.onnx`. */
  readonly name?: string;
  /** Providers to try in order; default: the board hints', else ['cpu']. */
  readonly executionProviders?: string[];
  /** Default: board hints, else the measured rule of {@link chooseThreads}. */
  readonly intraOpThreads?: number;
  readonly interOpThreads?: number;
  /** Progress of hashing the model and its external data (bytes done, bytes total). */
  readonly onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

/** A model opened by {@link loadModel}: its identity (digest), its session and what ran it. */
export interface LoadedModel {
  readonly path: string;
  readonly name: string;
  /** SHA-256 over the model file, then its external-data files in name order. */
  readonly digest: Uint8Array;
  /** The hashed files, model first. */
  readonly files: string[];
  readonly session: BackendSession;
  readonly inputs: readonly TensorMeta[];
  readonly outputs: readonly TensorMeta[];
  /** The provider that actually runs the model ('cpu', 'cuda', 'tensorrt', 'fake'). */
  readonly executionProvider: string;
  /** Why each skipped provider was skipped, in order. */
  readonly fallbackReasons: string[];
  /** The thread counts the session was opened with and where they came from. */
  readonly threads: ThreadChoice;
  /** Validates the inputs against the model (EW_ENGINE_INPUT) and runs it. */
  run(inputs: Record<string, TensorInput>): Promise<TensorMap>;
  release(): Promise<void>;
}

/**
 * Loads a model: computes its digest (refusing external data that escapes the model folder before
 * the runtime reads anything), then opens it with the chosen execution providers and threads. The
 * runtime is given the model bytes that were hashed; a model with external data is opened from its
 * path, and refused if any of its files changed between hashing and opening.
 *
 * @throws EdgewardenError `EW_ENGINE_MODEL_NOT_FOUND`, `EW_ENGINE_MODEL_INVALID`,
 *   `EW_ENGINE_EXTERNAL_DATA`, `EW_ENGINE_MODEL_CHANGED`, `EW_ENGINE_OPTIONS`,
 *   `EW_ENGINE_RUNTIME_UNAVAILABLE`
 */
export async function loadModel(
  backend: InferenceBackend,
  path: string,
  opts: LoadModelOptions = {},
): Promise<LoadedModel> {
  const full = resolve(path);
  const { digest, files, bytes, modelBytes, stamps } = await digestModelFiles(
    full,
    opts.onProgress ? { onProgress: opts.onProgress } : {},
  );
  const hints = currentBoardHints();
  const threads = chooseThreads({
    ...(opts.intraOpThreads !== undefined ? { intraOpThreads: opts.intraOpThreads } : {}),
    ...(opts.interOpThreads !== undefined ? { interOpThreads: opts.interOpThreads } : {}),
    ...(hints ? { hints } : {}),
    modelBytes: bytes,
  });
  const session = await backend.load(full, {
    executionProviders: opts.executionProviders ?? hints?.executionProviders ?? ['cpu'],
    ...(threads.intraOpThreads !== undefined ? { intraOpThreads: threads.intraOpThreads } : {}),
    ...(threads.interOpThreads !== undefined ? { interOpThreads: threads.interOpThreads } : {}),
    // The runtime opens the bytes just hashed, not the file again (a swap in between cannot run).
    modelBytes,
  });
  // External data is read by the runtime from its files: check that none was replaced meanwhile.
  const changed = files.length > 1 ? modelFilesChanged(files, stamps) : undefined;
  if (changed !== undefined) {
    await session.release();
    throw new EdgewardenError(
      'EW_ENGINE_MODEL_CHANGED',
      `${changed} changed while the model loaded, so what runs might not be what was digested: load it again`,
      { details: { file: changed } },
    );
  }
  return {
    path: full,
    name: opts.name ?? basename(full).replace(/\.onnx$/i, ''),
    digest,
    files,
    session,
    inputs: session.inputs,
    outputs: session.outputs,
    executionProvider: session.executionProvider,
    fallbackReasons: [...session.fallbackReasons],
    threads,
    run: async (inputs) => session.run(validateInputs(session.inputs, inputs)),
    release: () => session.release(),
  };
}
