#!/usr/bin/env node
// Runs the HIL suite and writes a JUnit XML report for CI systems to hil-tests/reports/junit.xml.
//
//   node hil-tests/run.mjs                                  # every target this machine can run
//   HIL_PORT=/dev/ttyACM0 HIL_BAUD=921600 node hil-tests/run.mjs --targets hardware
//   node hil-tests/run.mjs --targets sim-ts,sim-c --report out/junit.xml
//
// Exit code: vitest's (0 when every test that ran passed).
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    targets: { type: 'string' },
    report: { type: 'string', default: join(root, 'hil-tests', 'reports', 'junit.xml') },
  },
});
const report = resolve(values.report);
mkdirSync(dirname(report), { recursive: true });
const env = { ...process.env };
if (values.targets) env.HIL_TARGETS = values.targets;
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const r = spawnSync(
  process.execPath,
  [vitest, 'run', 'hil-tests', '--reporter=default', '--reporter=junit', `--outputFile.junit=${report}`],
  { cwd: root, env, stdio: 'inherit' },
);
process.stdout.write(`JUnit report: ${report}\n`);
process.exit(r.status ?? 1);
