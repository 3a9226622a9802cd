import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { tensorsToJson } from '../engine/tensor-json';
import { EdgewardenError } from '../errors';
import { loadPolicyState } from '../policy/manager';
import { bundleToJson } from '../provenance/bundle';
import { createWarden } from '../warden/create';
import type { ProvenanceMode } from '../warden/types';
import { action, EXIT, emit, resolveHome } from './common';
import { readInputs } from './input-file';
import { createProgress, type Progress } from './progress';

interface RunOptions {
  input: string[];
  home?: string;
  out?: string;
  mode?: 'batched' | 'per-output';
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Registers `edgewarden run MODEL --input FILE`: one signed inference, written as a result file. */
export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a model once on the given inputs and write the outputs with their signed provenance')
    .argument('<model>', 'path of an .onnx model')
    .requiredOption(
      '--input <file>',
      'inputs: a JSON file {"name": {"dtype", "dims", "data"}}, or name=path.npy (repeatable)',
      collect,
    )
    .option('--home <dir>', 'device home (default $EDGEWARDEN_HOME, then ~/.edgewarden)')
    .option('--out <file>', 'write the result file here (default: print it to stdout)')
    .option('--mode <mode>', "provenance mode: per-output or batched (default: the home's policy, else batched)")
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      `
The result file holds "outputs" (same JSON form as inputs) and "provenance" (the DSSE envelope(s),
the decoded record, and in batched mode the inclusion proof and signed checkpoint).

Examples:
  $ edgewarden keys init --home ./home
  $ edgewarden run model.onnx --input input.json --home ./home --out result.json
  $ edgewarden run silero_vad.onnx --input input=audio.npy --input state.json --input sr.json --mode per-output
  $ edgewarden verify result.json --trust ./home/keys/device.pub`,
    )
    .action(
      action(async (model: string, opts: RunOptions) => {
        if (opts.mode !== undefined && opts.mode !== 'batched' && opts.mode !== 'per-output') {
          throw new EdgewardenError('EW_CLI_USAGE', `--mode must be per-output or batched, got ${opts.mode}`);
        }
        const inputs = await readInputs(opts.input);
        const home = resolveHome(opts.home);
        // The home's verified policies gate the model and its outputs; a policy that requires
        // per-output provenance wins over --mode batched (the stricter setting applies).
        const policy = await loadPolicyState(home);
        const required = policy.effective.provenance.mode?.value;
        const mode: ProvenanceMode = required === 'per-output' ? 'per-output' : (opts.mode ?? required ?? 'batched');
        // One inference: fsync it before we say it is done.
        const warden = await createWarden({ home, mode, gate: policy.gate, durability: 'always', checkpointEvery: 1 });
        let result: Record<string, unknown>;
        try {
          // Digesting a large model takes a while on a small board: a bar on a terminal.
          let bar: Progress | undefined;
          const m = await warden.load(model, {
            onProgress: (done, total) => {
              bar ??= createProgress({ label: 'digesting model', total, unit: 'bytes', json: opts.json === true });
              bar.update(done);
            },
          });
          bar?.done();
          const { outputs, decision, provenance } = await m.infer(inputs);
          const bundle = await provenance;
          result = {
            model: { name: m.name, path: resolve(model), digest: `sha256:${Buffer.from(m.digest).toString('hex')}` },
            deviceId: warden.deviceId,
            decision,
            outputs: tensorsToJson(outputs),
            provenance: bundleToJson(bundle),
          };
        } finally {
          await warden.close();
        }
        const text = `${JSON.stringify(result, null, 2)}\n`;
        if (opts.out === undefined) {
          process.stdout.write(text);
          return EXIT.ok;
        }
        await writeFile(opts.out, text);
        const prov = result.provenance as { record?: { index?: number } };
        emit(
          opts.json,
          { out: resolve(opts.out), deviceId: warden.deviceId, index: prov.record?.index, decision: result.decision },
          `wrote ${opts.out} (record ${prov.record?.index}, device ${warden.deviceId}); ` +
            `check it with: edgewarden verify ${opts.out} --trust ${home}/keys/device.pub`,
        );
        return EXIT.ok;
      }),
    );
}
