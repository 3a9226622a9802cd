import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

function files(dir: string, keep: (f: string) => boolean): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === '__generated__' || name === 'fixtures' || name === 'build') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p, keep));
    else if (keep(p)) out.push(p);
  }
  return out;
}

async function definedCodes(): Promise<Map<string, string>> {
  const codes = new Map<string, string>();
  for (const f of files(join(root, 'sdk'), (p) => p.endsWith('/codes.ts'))) {
    const mod = (await import(f)) as Record<string, Record<string, string>>;
    for (const table of Object.values(mod)) {
      for (const [code, meaning] of Object.entries(table)) codes.set(code, meaning);
    }
  }
  return codes;
}

describe('error codes', () => {
  it('every code has the EW_<AREA>_<WHAT> form and a meaning', async () => {
    const codes = await definedCodes();
    expect(codes.size).toBeGreaterThan(10);
    for (const [code, meaning] of codes) {
      expect(code).toMatch(/^EW_[A-Z0-9]+_[A-Z0-9_]+$/);
      expect(meaning.length).toBeGreaterThan(10);
    }
  });

  it('every code used in the sources is defined in a codes table', async () => {
    const codes = await definedCodes();
    const sources = [
      // Test files and shared test suites may invent codes to exercise error paths.
      ...files(join(root, 'sdk'), (p) => p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('.suite.ts')),
      ...files(join(root, 'devices'), (p) => p.endsWith('.ts') && !p.endsWith('.test.ts')),
    ];
    const undefinedUses: string[] = [];
    for (const f of sources) {
      for (const m of readFileSync(f, 'utf8').matchAll(/['"`](EW_[A-Z0-9_]+)['"`]/g)) {
        if (!codes.has(m[1]!)) undefinedUses.push(`${relative(root, f)}: ${m[1]}`);
      }
    }
    expect(undefinedUses).toEqual([]);
  });

  it('README lists every code with its meaning', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const missing = [...(await definedCodes()).keys()].filter((c) => !readme.includes(`| \`${c}\` |`));
    expect(missing).toEqual([]);
  });
});
