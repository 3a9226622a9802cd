import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Reads a text file under `root` (a fixture tree in tests, `/` on a device); undefined when absent. */
export async function readUnder(root: string, path: string): Promise<string | undefined> {
  try {
    return await readFile(join(root, path), 'utf8');
  } catch {
    return undefined;
  }
}

/** Lists a directory under `root`; empty when absent. */
export async function listUnder(root: string, path: string): Promise<string[]> {
  try {
    return (await readdir(join(root, path))).sort();
  } catch {
    return [];
  }
}

/** Device-tree strings end in NUL and lists are NUL-separated. */
export function dtStrings(text: string | undefined): string[] {
  return (text ?? '')
    .split('\0')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
