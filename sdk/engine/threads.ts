import { availableParallelism } from 'node:os';

/**
 * Models below this size get one intra-op thread: their per-inference work is too small for
 * ONNX Runtime's thread pool to pay for its synchronisation (see README: the PaddleOCR classifier,
 * 0.58 MB, runs about 1.8× faster with 1 thread than with the default on 2 cores).
 */
export const SMALL_MODEL_BYTES = 2 * 1024 * 1024;

/** Where a thread count came from. */
export type ThreadSource = 'options' | 'board' | 'rule' | 'runtime-default';

/** The thread counts a model is opened with. undefined: ONNX Runtime's own default. */
export interface ThreadChoice {
  readonly intraOpThreads: number | undefined;
  readonly interOpThreads: number | undefined;
  readonly source: ThreadSource;
}

/**
 * Chooses thread counts: explicit options win, then board hints, then the measured rule — one
 * intra-op thread for small models and on machines with at most 2 cores (where the default was
 * measured slower than 1 thread, and a free core keeps hashing, signing and telemetry off the
 * inference core) — else ONNX Runtime's default.
 */
export function chooseThreads(ctx: {
  readonly intraOpThreads?: number;
  readonly interOpThreads?: number;
  readonly hints?: { readonly intraOpThreads?: number; readonly interOpThreads?: number };
  readonly modelBytes: number;
  readonly cores?: number;
}): ThreadChoice {
  if (ctx.intraOpThreads !== undefined) {
    return {
      intraOpThreads: ctx.intraOpThreads,
      interOpThreads: ctx.interOpThreads ?? ctx.hints?.interOpThreads,
      source: 'options',
    };
  }
  const interOpThreads = ctx.interOpThreads ?? ctx.hints?.interOpThreads;
  if (ctx.hints?.intraOpThreads !== undefined) {
    return { intraOpThreads: ctx.hints.intraOpThreads, interOpThreads, source: 'board' };
  }
  const cores = ctx.cores ?? availableParallelism();
  if (ctx.modelBytes < SMALL_MODEL_BYTES || cores <= 2) return { intraOpThreads: 1, interOpThreads, source: 'rule' };
  return { intraOpThreads: undefined, interOpThreads, source: 'runtime-default' };
}
