#!/usr/bin/env node
// Runs examples/maker-vad/main.ts without a build step: bundles it with esbuild (which tsup
// brings) into node_modules/.cache and runs it with the same arguments.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'node_modules', '.cache', 'edgewarden-examples', 'maker-vad.mjs');
mkdirSync(dirname(out), { recursive: true });
await build({
  entryPoints: [join(root, 'examples', 'maker-vad', 'main.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  packages: 'external',
  outfile: out,
  logLevel: 'error',
});
process.chdir(root);
await import(pathToFileURL(out).href);
