import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The project root (this file lives in test/). */
export const ROOT = join(import.meta.dirname, '..');
/** The built CLI. */
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts'))
      newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/ with tsup when it is missing or older than a source file (`npm test` builds first,
 * so this only runs when a test file is run on its own).
 */
export function ensureBuilt(): void {
  const built = existsSync(CLI) && existsSync(join(ROOT, 'dist', 'index.js')) ? statSync(CLI).mtimeMs : 0;
  const sources = Math.max(newestMtime(join(ROOT, 'sdk')), newestMtime(join(ROOT, 'devices')));
  if (built >= sources) return;
  execFileSync('npx', ['tsup'], { cwd: ROOT, stdio: 'pipe', timeout: 180_000 });
}
