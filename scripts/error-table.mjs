#!/usr/bin/env node
// Prints the README's error-code table from every sdk/**/codes.ts; --write puts it into README.md
// between the error-codes markers (run after adding a code).
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const walk = (d) =>
  readdirSync(d).flatMap((n) => {
    const p = join(d, n);
    if (n === '__generated__' || n === 'fixtures') return [];
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('/codes.ts') ? [p] : [];
  });
const rows = [];
for (const f of walk(join(root, 'sdk'))) {
  for (const m of readFileSync(f, 'utf8').matchAll(/(EW_[A-Z0-9_]+):\s*\n?\s*(['"])((?:\\.|(?!\2).)*)\2/g))
    rows.push([m[1], m[3].replace(/\\'/g, "'")]);
}
rows.sort((a, b) => a[0].localeCompare(b[0]));
const table = [
  '| code | meaning |',
  '| --- | --- |',
  ...rows.map(([code, meaning]) => `| \`${code}\` | ${meaning.replace(/\|/g, '\\|')} |`),
].join('\n');
if (process.argv.includes('--write')) {
  const readme = join(root, 'README.md');
  const text = readFileSync(readme, 'utf8');
  const next = text.replace(/(<!-- error-codes:start -->\n)[\s\S]*?(<!-- error-codes:end -->)/, `$1${table}\n$2`);
  writeFileSync(readme, next);
} else {
  console.log(table);
}
