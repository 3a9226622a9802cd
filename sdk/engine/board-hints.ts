/**
 * What a board profile suggests for running models on it. `devices/boards` registers a provider at
 * import time; the SDK never imports `devices/` itself.
 */
export interface BoardHints {
  /** Providers to try in order, e.g. ['tensorrt', 'cuda', 'cpu'] on a Jetson. */
  executionProviders?: string[];
  intraOpThreads?: number;
  interOpThreads?: number;
  /** Who said so, e.g. 'raspberry-pi-5' or 'jetson-orin-nano'; shown by `edgewarden device info`. */
  source: string;
}

const providers: (() => BoardHints | undefined)[] = [];

/**
 * Registers a board-hint provider. The most recently registered provider that returns hints wins;
 * one that throws is skipped (a broken probe must not stop a model from loading).
 * Returns a function that unregisters it (for tests).
 */
export function registerBoardHints(fn: () => BoardHints | undefined): () => void {
  providers.push(fn);
  return () => {
    const i = providers.lastIndexOf(fn);
    if (i >= 0) providers.splice(i, 1);
  };
}

/** The hints of the current board, or undefined when no registered provider knows it. */
export function currentBoardHints(): BoardHints | undefined {
  for (let i = providers.length - 1; i >= 0; i--) {
    try {
      const hints = providers[i]!();
      if (hints !== undefined) return hints;
    } catch {
      // skipped: see registerBoardHints
    }
  }
  return undefined;
}
