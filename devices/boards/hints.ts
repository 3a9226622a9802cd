import { registerBoardHints } from '../../sdk/engine/board-hints';
import { detectBoard } from './detect';
import type { BoardProfile } from './profile';

/**
 * Detects the board once and registers its execution-provider and thread suggestions with the
 * engine, which asks for them at model load. Returns the profile and a function that unregisters it.
 */
export async function registerDetectedBoard(root = '/'): Promise<{ profile: BoardProfile; unregister: () => void }> {
  const profile = await detectBoard({ root });
  const hints = {
    executionProviders: [...profile.executionProviders],
    intraOpThreads: profile.intraOpThreads,
    source: `${profile.family}/${profile.variant}`,
  };
  return { profile, unregister: registerBoardHints(() => hints) };
}
