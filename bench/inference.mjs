#!/usr/bin/env node
// Inference benchmark: bare onnxruntime-node against edgewarden (batched and per-output) on the same
// model, inputs and process, alternating rounds; plus records/s, verifications/s, audit appends/s
// per durability mode, cold start and resident memory in fresh processes. Prints JSON.
//
//   node bench/inference.mjs [--model MODEL] [--rounds N] [--per-round N] [--threads N] [--cold N]
//
// It runs the built CLI (`edgewarden bench --json`), building first when dist/ is missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli', 'main.js');
if (!existsSync(cli)) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'inherit' });
const r = spawnSync(process.execPath, [cli, 'bench', '--json', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
