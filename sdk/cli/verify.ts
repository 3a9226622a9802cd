import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { TensorMap } from '../engine/tensor';
import { tensorsFromJson } from '../engine/tensor-json';
import { EdgewardenError, isEdgewardenError } from '../errors';
import { bundleFromJson, type ProvenanceBundle } from '../provenance/bundle';
import { TrustStore } from '../provenance/keys';
import { recordToJson } from '../provenance/record';
import { verifyBundle } from '../provenance/verifier';
import { action, EXIT, emit, paint } from './common';
import { readInputs } from './input-file';

interface VerifyOptions {
  trust: string;
  input?: string[];
  salt?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Reads a result file: bad JSON or missing sections are bad input (exit 2). */
export async function readResultFile(path: string): Promise<{ outputs: TensorMap; provenance: unknown }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new EdgewardenError('EW_CLI_INPUT', `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code}`, {
      cause,
      details: { path },
    });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new EdgewardenError('EW_CLI_INPUT', `${path} is not JSON; give a result file written by 'edgewarden run'`, {
      cause,
      details: { path },
    });
  }
  if (typeof doc !== 'object' || doc === null || !('outputs' in doc) || !('provenance' in doc)) {
    throw new EdgewardenError('EW_CLI_INPUT', `${path} has no "outputs" and "provenance"; is it a result file?`, {
      details: { path },
    });
  }
  const d = doc as { outputs: unknown; provenance: unknown };
  return { outputs: tensorsFromJson(d.outputs, `${path} outputs`), provenance: d.provenance };
}

/** Registers `edgewarden verify RESULT --trust PUBKEY|DIR`. */
export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('verify a result file offline: signature, inclusion in a signed checkpoint, output digest')
    .argument('<result>', "a result file written by 'edgewarden run'")
    .requiredOption('--trust <pubkey-or-dir>', 'a trusted device public key (SPKI PEM) or a directory of *.pub files')
    .option('--input <file>', 'also check the inputs: JSON or name=path.npy (repeatable)', collect)
    .option('--salt <hex>', 'the device salt, for records made with salted digests')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      `
Exit status: 0 valid, 1 invalid (the failure code is printed), 2 bad usage or unreadable files.

Examples:
  $ edgewarden verify result.json --trust ~/.edgewarden/keys/device.pub
  $ edgewarden verify result.json --trust ./enrolled-devices/ --input input.json --json`,
    )
    .action(
      action(async (path: string, opts: VerifyOptions) => {
        const trust = await TrustStore.fromPath(opts.trust);
        const { outputs, provenance } = await readResultFile(path);
        const inputs = opts.input ? await readInputs(opts.input) : undefined;
        if (opts.salt !== undefined && !/^(?:[0-9a-fA-F]{2})+$/.test(opts.salt)) {
          throw new EdgewardenError('EW_CLI_USAGE', '--salt must be hex');
        }
        let bundle: ProvenanceBundle;
        try {
          bundle = bundleFromJson(provenance);
        } catch (err) {
          if (!isEdgewardenError(err)) throw err;
          return report(opts.json, path, { ok: false, code: err.code, message: err.message });
        }
        const verdict = verifyBundle(bundle, outputs, {
          trust,
          ...(inputs ? { inputs } : {}),
          ...(opts.salt ? { salt: new Uint8Array(Buffer.from(opts.salt, 'hex')) } : {}),
        });
        return report(opts.json, path, verdict);
      }),
    );
}

function report(
  json: boolean | undefined,
  path: string,
  v: { ok: boolean; code?: string; message?: string; record?: Parameters<typeof recordToJson>[0] },
): number {
  const record = v.record ? recordToJson(v.record) : undefined;
  if (v.ok) {
    emit(json, { ok: true, result: path, record }, () => {
      const r = record as { index?: number; modelName?: string; deviceKeyid?: string } | undefined;
      return `${paint(process.stdout, 'green', 'valid')}: ${path} (record ${r?.index}, model ${r?.modelName})`;
    });
    return EXIT.ok;
  }
  emit(json, { ok: false, result: path, code: v.code, message: v.message, record }, () => {
    return `${paint(process.stdout, 'red', `invalid ${v.code}`)}: ${v.message}\n${nextStep(v.code)}`;
  });
  return EXIT.failedCheck;
}

function nextStep(code: string | undefined): string {
  switch (code) {
    case 'EW_PROVENANCE_UNTRUSTED_KEY':
      return 'the signing key is not in --trust: pass the device.pub of the device that produced the result';
    case 'EW_PROVENANCE_SALT_REQUIRED':
      return 'the record uses salted digests: pass the device salt with --salt HEX';
    case 'EW_PROVENANCE_INPUT_DIGEST':
      return 'the --input tensors are not the ones this record describes';
    default:
      return 'the result file was altered after it was signed, or it was not produced by a trusted device';
  }
}
