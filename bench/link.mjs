#!/usr/bin/env node
// Serial link benchmarks, printed as JSON: 64-byte request -> Ack round trip over a pty (vs a raw
// 64-byte echo on the same pty), framing overhead and sustained throughput vs the configured line
// rate, and audio window -> signed Silero VAD -> Command out (vs bare onnxruntime).
//
//   node bench/link.mjs [--rtt 2000] [--seconds 3] [--baud 921600] [--windows 1000]
//
// Bundles bench/link-bench.ts with esbuild (a tsup dependency) into node_modules/.cache, so it
// runs from the sources without a build step.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'node_modules', '.cache', 'edgewarden-bench', 'link.mjs');
mkdirSync(dirname(out), { recursive: true });
await build({
  entryPoints: [join(root, 'bench', 'link-bench.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  packages: 'external',
  outfile: out,
  logLevel: 'error',
});
process.chdir(root);
await import(pathToFileURL(out).href);
